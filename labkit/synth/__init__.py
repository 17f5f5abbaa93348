"""Synthetic training data: a teacher writes, filters judge, a student learns from what survives.

One idea per module:

* :mod:`labkit.synth.teachers` - ``LocalTeacher`` (any model labkit loads, batched) and
  ``EndpointTeacher`` (any OpenAI-compatible server via the ``openai`` client), one interface;
* :mod:`labkit.synth.server`   - start and stop ``transformers serve`` on this machine (tests, demos);
* :mod:`labkit.synth.tasks`    - topics seeded from source passages (the formulary's monographs);
* :mod:`labkit.synth.personas` - who asks: pharmacist, nurse, patient, new resident (extensible);
* :mod:`labkit.synth.schema`   - the answer format as JSON Schema, validated with ``jsonschema``;
* :mod:`labkit.synth.stages`   - generate, critic, schema, self-check, grounding, dedup;
* :mod:`labkit.synth.pipeline` - ``SynthConfig`` + ``run_pipeline``: all stages as one cached run;
* :mod:`labkit.synth.card`     - the dataset card (counts per stage, spread, diversity, teachers);
* :mod:`labkit.synth.truth`    - grading pairs against the formulary; precision/recall per stage.

>>> from labkit.synth import SynthConfig, run_pipeline
>>> run = run_pipeline(SynthConfig(name="my-set", n_tasks=48))        # doctest: +SKIP
>>> run.card, run.rows("clean")[:2]                                    # doctest: +SKIP
"""

from labkit.synth.pipeline import SynthConfig, SynthRun, run_pipeline

__all__ = ["SynthConfig", "SynthRun", "run_pipeline"]
