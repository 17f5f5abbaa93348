"""Forgetting over time: the general probe measured at checkpoints *while* a model trains.

A finished run keeps only its best weights, so "how much had it forgotten at step 24?" cannot be
asked afterwards. :class:`ProbeCallback` asks it during training: pass it to
:func:`labkit.sft.train` (``callbacks=[ProbeCallback(...)]``) and at every evaluation step it
scores the probe on the model as it is at that moment, then writes one line per checkpoint to
``probe_curve.jsonl`` in the run folder (so the curve is cached with the run, like its loss
curves). :func:`read_curve` reads it back.

The probe runs in the training process between optimizer steps, with gradients off and the model
in eval mode, then training resumes where it was: the weights are only read, and greedy scoring
draws no random numbers. Its time is counted in the run's wall time (``seconds`` on each line
says how much of it was probing).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from labkit.models import LoadedModel

try:  # the callback base class; labkit's light modules stay importable without transformers
    from transformers import TrainerCallback
except ImportError:  # pragma: no cover
    TrainerCallback = object  # type: ignore[misc,assignment]

CURVE = "probe_curve.jsonl"


class ProbeCallback(TrainerCallback):
    """Score the general probe at every evaluation step (or at ``steps``) and log it with the run.

    Args:
        items: the probe items (default: the whole :func:`labkit.data.general.probe`).
        steps: probe at these optimizer steps instead of at every evaluation.
        at_start: also probe before the first step (the base model; step 0).
        board: a :class:`labkit.live.LiveBoard` to draw the accuracy on as it arrives.
        label: the series name on ``board``.
        snapshot_steps: at these steps also answer ``domain_rows`` and the generation checks, so
            a checkpoint can stand in the results table as "the same run, stopped earlier".
        domain_rows: the domain test questions for ``snapshot_steps``.

    Each line of ``probe_curve.jsonl``: ``step``, ``accuracy``, ``n``, ``low``/``high`` (Wilson
    interval), ``correct`` (the ids it got right), ``seconds`` and, at a snapshot, ``domain`` and
    ``checks`` (the same dicts :mod:`labkit.evaluate.forgetting` caches for a finished run).
    """

    def __init__(self, items: list[dict] | None = None, steps=None, at_start: bool = False,
                 board=None, label: str = "probe", snapshot_steps=(), domain_rows: list[dict] | None = None):
        if items is None:
            from labkit.data.general import probe

            items = probe()
        self.items = list(items)
        self.steps = set(steps) if steps is not None else None
        self.at_start = at_start
        self.board, self.label = board, label
        self.snapshot_steps = set(snapshot_steps)
        self.domain_rows = list(domain_rows) if domain_rows is not None else None
        self.points: list[dict] = []
        self._done: set[int] = set()

    def _folder(self, args) -> Path:
        # labkit.sft.train puts checkpoints in <run folder>/checkpoints
        return Path(args.output_dir).parent

    def _probe(self, args, state, model, tokenizer) -> None:
        import torch

        from labkit.evaluate.forgetting import checks_list, domain_dict, probe_dict

        step = state.global_step
        if step in self._done or tokenizer is None or model is None:
            return
        self._done.add(step)
        loaded = LoadedModel(model, tokenizer, "training", "as trained", "", 0.0, False)
        was_training = model.training
        model.eval()
        start = time.perf_counter()
        try:
            with torch.inference_mode():
                point = {"step": step, **probe_dict(loaded, self.items)}
                point.pop("ids")  # the same items at every point: kept once, in the base model's probe
                if step in self.snapshot_steps:
                    # a fuller look at this checkpoint: domain questions and the generation checks
                    if self.domain_rows:
                        point["domain"] = domain_dict(loaded, self.domain_rows)
                    point["checks"] = checks_list(loaded)
        finally:
            if was_training:
                model.train()
        point["seconds"] = round(time.perf_counter() - start, 2)
        self.points.append(point)
        if state.is_world_process_zero:
            with open(self._folder(args) / CURVE, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(point) + "\n")
        if self.board is not None:
            self.board.add(self.label, step, point["accuracy"])

    def on_train_begin(self, args, state, control, model=None, processing_class=None, **kwargs):
        if self.at_start and state.global_step == 0:
            self._probe(args, state, model, processing_class)

    def on_evaluate(self, args, state, control, model=None, processing_class=None, **kwargs):
        if self.steps is None:
            self._probe(args, state, model, processing_class)

    def on_step_end(self, args, state, control, model=None, processing_class=None, **kwargs):
        if self.steps is not None and state.global_step in self.steps:
            self._probe(args, state, model, processing_class)


def read_curve(run_path: str | Path) -> list[dict]:
    """The probe points a :class:`ProbeCallback` logged in a run folder, by step ([] if none)."""
    file = Path(run_path) / CURVE
    if not file.is_file():
        return []
    points = {}
    for line in file.read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                break  # a line cut by a kill: keep what came before
            points[row["step"]] = row
    return [points[s] for s in sorted(points)]
