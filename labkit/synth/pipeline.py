"""The whole pipeline as one cached run: tasks -> generate -> critic -> schema -> self-check ->
grounding -> dedup, with a dataset card.

A pipeline run is a run like any training run (:mod:`labkit.runs`): it is built in
``runs/<name>-<hash>.partial/``, renamed when ``summary.json`` is written, and reused whenever the
same :class:`SynthConfig` asks again. Its folder holds:

* ``config.yaml`` - the config (model names, sizes, thresholds; never a key or a server address);
* ``pairs.jsonl`` - every generated pair, with its scores and where and why it was dropped;
* ``stages.json`` - what each stage kept and dropped (counts, reasons, ids, seconds);
* ``raw.jsonl`` / ``clean.jsonl`` - chat rows for a student: everything generated, and what survived;
* ``card.json`` / ``card.md`` - the dataset card; ``summary.json`` - counts, timings, speed.

Teachers are local by default (``via="local"``). ``via="endpoint"`` sends every call to an
OpenAI-compatible server instead: the base URL and key are arguments of :func:`run_pipeline` (or
``LABKIT_TEACHER_BASE_URL`` / ``LABKIT_TEACHER_API_KEY``), never part of the config.

>>> run = run_pipeline(SynthConfig(name="demo", n_tasks=24))             # doctest: +SKIP
>>> run.card                                                             # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from labkit import paths, runs
from labkit.config import ConfigBase, ConfigError, _is_int, _is_number
from labkit.files import write_atomic
from labkit.runs import RunRecord, cached_json
from labkit.synth import personas as P
from labkit.synth import stages as S
from labkit.synth.card import DatasetCard, build_card
from labkit.synth.tasks import formulary_tasks

VIAS = ("local", "endpoint")
STAGES = ("generate", "critic", "schema", "self-check", "grounding", "dedup")


@dataclass(frozen=True)
class SynthConfig(ConfigBase):
    """Everything that decides a generated set. Identical configs share one run folder.

    Attributes:
        name: run-folder prefix; the folder is ``runs/<name>-<config hash>``.
        writer: the model that writes the questions: an embedded name, a local folder, a hub
            id, ``run:<run folder>`` (a finished full fine-tune under ``runs/``), or with
            ``via="endpoint"`` the model name the server knows.
        answerer: the model that answers them (and self-checks its answers); ``None``: the writer.
            Changing only this is how two teachers are compared on the very same questions.
        critic: the model that scores pairs; ``None``: the writer.
        via: ``local`` (loaded here, batched) or ``endpoint`` (an OpenAI-compatible server).
        n_tasks: how many pairs to generate (one per task).
        personas: who asks (names from :data:`labkit.synth.personas.PERSONAS`); ``()`` or
            ``("neutral",)`` is persona variation off.
        grounded: give the answerer the source passage (the second rule); ``False`` lets it
            answer from what it knows, to measure invented facts.
        answer_style: how the answerer is prompted: ``few-shot`` (a general model: format and a
            worked example) or ``trained`` (a model fine-tuned on the task: the chat format it
            learnt); see :func:`labkit.synth.stages.answer_messages`.
        critic_keep: share of each answer category's pairs the critic keeps (the article: the
            top 70-80%).
        self_check_drop: share of each category's pairs the self-check drops: those whose
            answerer is least sure of its own answer (the article: it catches ~10-15%).
        self_check_threshold: instead of a share, drop P(yes) below this threshold, calibrated on
            a separate labelled slice (:func:`labkit.synth.stages.calibrate_threshold`); ``None``
            (default) uses ``self_check_drop``.
        same_line: the grounding check wants every answer value on one line of the passage.
        dedup_threshold: cosine between question embeddings above which a pair with the same
            answer is a near repeat; ``None`` keeps near repeats (exact repeats always go).
        max_question_tokens, max_answer_tokens: generation lengths.
        seed: picks the tasks.
        batch_size: local teachers' batch (does not change what greedy decoding writes).
    """

    name: str = "synth"
    writer: str = "smollm2-135m-instruct"
    answerer: str | None = None
    critic: str | None = None
    via: str = "local"
    n_tasks: int = 96
    personas: tuple[str, ...] = tuple(p.name for p in P.PERSONAS)
    grounded: bool = True
    answer_style: str = "few-shot"
    critic_keep: float = 0.75
    self_check_drop: float = 0.15
    self_check_threshold: float | None = None
    same_line: bool = True
    dedup_threshold: float | None = 0.95
    max_question_tokens: int = 32
    max_answer_tokens: int = 40
    seed: int = 0
    batch_size: int = 16

    _unhashed: ClassVar[tuple[str, ...]] = ("name", "batch_size")

    def __post_init__(self) -> None:
        if isinstance(self.personas, list):
            object.__setattr__(self, "personas", tuple(self.personas))

        def bad(name: str, why: str) -> ConfigError:
            return ConfigError(f"{name}={getattr(self, name)!r}: {why}")

        if not isinstance(self.name, str) or not self.name or any(c in self.name for c in "/\\ "):
            raise bad("name", "must be a non-empty name without spaces or slashes")
        for key in ("writer",):
            if not isinstance(getattr(self, key), str) or not getattr(self, key):
                raise bad(key, "name a model (embedded name, folder, hub id, run:<folder>, or a server's model)")
        for key in ("answerer", "critic"):
            if getattr(self, key) is not None and (not isinstance(getattr(self, key), str) or not getattr(self, key)):
                raise bad(key, "name a model, or None to use the writer")
        if self.answer_style not in S.ANSWER_STYLES:
            raise bad("answer_style", f"expected one of {', '.join(S.ANSWER_STYLES)}")
        if self.via not in VIAS:
            raise bad("via", f"expected one of {', '.join(VIAS)}")
        if not _is_int(self.n_tasks) or not 1 <= self.n_tasks <= 5000:
            raise bad("n_tasks", "must be an integer in [1, 5000]")
        for p in self.personas:
            try:
                P.get(p)
            except KeyError as exc:
                raise bad("personas", str(exc).strip('"')) from None
        for key in ("grounded", "same_line"):
            if not isinstance(getattr(self, key), bool):
                raise bad(key, "must be true or false")
        if not _is_number(self.critic_keep) or not 0 < self.critic_keep <= 1:
            raise bad("critic_keep", "is the share of pairs the critic keeps, in (0, 1] (the article: 0.7-0.8)")
        if not _is_number(self.self_check_drop) or not 0 <= self.self_check_drop < 1:
            raise bad("self_check_drop", "is the share of pairs the self-check drops, in [0, 1) (the article: 0.10-0.15)")
        if self.self_check_threshold is not None and (not _is_number(self.self_check_threshold)
                                                      or not 0 <= self.self_check_threshold <= 1):
            raise bad("self_check_threshold", "is a probability in [0, 1] (calibrated on a labelled slice), or None")
        if self.dedup_threshold is not None and (not _is_number(self.dedup_threshold)
                                                 or not 0 < self.dedup_threshold <= 1):
            raise bad("dedup_threshold", "is a cosine similarity in (0, 1], or None")
        for key in ("max_question_tokens", "max_answer_tokens", "batch_size"):
            if not _is_int(getattr(self, key)) or getattr(self, key) < 1:
                raise bad(key, "must be a positive integer")
        if not _is_int(self.seed):
            raise bad("seed", "must be an integer")

    @property
    def roles(self) -> dict[str, str]:
        """Which model plays each role."""
        return {"writer": self.writer, "answerer": self.answerer or self.writer, "critic": self.critic or self.writer}

    def fingerprint(self, extra: str = "") -> str:
        """The config's hash, with the prompts' own fingerprint in it: editing a prompt (or a
        persona's voice) makes a new run folder instead of reusing one written by the old prompt."""
        return super().fingerprint(prompt_fingerprint() + extra)

    def folder(self) -> Path:
        return paths.runs_dir() / f"{self.name}-{self.fingerprint()}"


def prompt_fingerprint() -> str:
    """Twelve hex digits of every prompt the pipeline sends, rendered for one example task of each
    category and every persona: the prompt constants, the worked examples, the personas' voices
    and example questions, and the code that assembles them all count."""
    from labkit.synth.personas import EXAMPLE_TOPICS

    rendered = []
    for category, topic in sorted(EXAMPLE_TOPICS.items()):
        shot = S.SHOTS[category][0]
        pair = {"id": "x", "category": category, "subjects": ["HuxaLipex"], "topic": topic, "passage": shot,
                "passage_id": "x", "persona": "x", "question": "<question>", "answer": S.SHOTS[category][1]}
        for persona in (*P.PERSONAS, P.NEUTRAL):
            rendered.append(S.question_messages(pair, persona))
        rendered += [S.answer_messages(pair, g, style) for g in (True, False) for style in S.ANSWER_STYLES]
        rendered += [S.critic_messages(pair), S.self_check_messages(pair)]
    return hashlib.sha256(json.dumps(rendered, sort_keys=True).encode()).hexdigest()[:12]


# ---------------------------------------------------------------------------------------------
# a finished pipeline run


class SynthRun(RunRecord):
    """A finished (or reused) pipeline run, read back from ``runs/<name>-<hash>/``."""

    config_class: ClassVar[type] = SynthConfig
    summary_keys: ClassVar[tuple[str, ...]] = ("generated", "kept", "generation_seconds", "pairs_per_minute",
                                               "wall_seconds")

    @property
    def pairs(self) -> list[dict]:
        """Every generated pair with its scores and ``dropped_at`` / ``why`` (``None`` when kept)."""
        return _read_jsonl(self.path / "pairs.jsonl")

    @property
    def stages(self) -> list[dict]:
        return json.loads((self.path / "stages.json").read_text(encoding="utf-8"))

    @property
    def card(self) -> DatasetCard:
        return DatasetCard(**json.loads((self.path / "card.json").read_text(encoding="utf-8")))

    def rows(self, which: str = "clean") -> list[dict]:
        """Chat rows for a student: ``clean`` (what survived every stage) or ``raw`` (everything generated)."""
        if which not in ("clean", "raw"):
            raise ValueError(f"which={which!r}: expected 'clean' or 'raw'")
        return _read_jsonl(self.path / f"{which}.jsonl")

    def kept(self) -> list[dict]:
        return [p for p in self.pairs if p["dropped_at"] is None]


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    write_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


# ---------------------------------------------------------------------------------------------
# teachers for a config


def resolve_model(name: str) -> str:
    """``run:<folder>`` -> that finished run's full model folder; anything else unchanged."""
    if not name.startswith("run:"):
        return name
    folder = paths.runs_dir() / name[4:]
    model = folder / "model"
    if not runs.is_finished(folder) or not (model / "config.json").is_file():
        raise ConfigError(f"{name}: no finished full fine-tuning run with a model/ folder at {paths.shown(folder)}")
    return str(model)


def make_teachers(config: SynthConfig, base_url: str | None = None, api_key: str | None = None,
                  teachers: dict[str, Any] | None = None) -> dict[str, Any]:
    """One teacher object per role; the same model name shares one object (loaded once)."""
    from labkit.synth.teachers import EndpointTeacher, LocalTeacher

    given = dict(teachers or {})
    built: dict[str, Any] = {}
    out = {}
    for role, name in config.roles.items():
        if role in given:
            out[role] = given[role]
            continue
        if name not in built:
            if config.via == "local":
                built[name] = LocalTeacher(resolve_model(name), batch_size=config.batch_size,
                                           label=name[4:] if name.startswith("run:") else None)
            else:
                built[name] = EndpointTeacher(base_url=base_url, model=name, api_key=api_key)
        out[role] = built[name]
    return out


def chat_row(pair: dict) -> dict:
    """A pair as a training row in the formulary's own chat format."""
    from labkit.data.formulary import SYSTEM_PROMPT

    return {"id": pair["id"], "category": pair["category"], "drugs": list(pair["subjects"]), "source": "synthetic",
            "persona": pair.get("persona"),
            "messages": [{"role": "system", "content": SYSTEM_PROMPT},
                         {"role": "user", "content": pair["question"]},
                         {"role": "assistant", "content": pair["answer"]}]}


def questions_for(config: SynthConfig, tasks: list[dict], writer, log=print) -> tuple[list[dict], float]:
    """The writer's questions for these tasks, cached under ``runs/synth-questions/``: two
    configs that differ only after the questions (another answerer, critic or threshold) share them."""
    voices = [[v.name, v.voice, v.examples] for v in P.resolve(config.personas)]
    blob = json.dumps([config.writer, config.via, voices, config.max_question_tokens,
                       S.QUESTION_SYSTEM, S.QUESTION_PROMPT, [(t["id"], t["topic"]) for t in tasks]])
    key = hashlib.sha256(blob.encode()).hexdigest()[:12]

    def compute():
        log(f"  writing {len(tasks)} questions with {writer.name} ...")
        start = time.perf_counter()
        asked = S.write_questions(tasks, writer, config.personas or ("neutral",), config.max_question_tokens)
        return {"questions": [{"id": p["id"], "persona": p["persona"], "question": p["question"]} for p in asked],
                "seconds": time.perf_counter() - start}

    cached = cached_json(paths.runs_dir() / "synth-questions" / f"{key}.json", compute)
    by_id = {q["id"]: q for q in cached["questions"]}
    return [{**t, "persona": by_id[t["id"]]["persona"], "question": by_id[t["id"]]["question"]} for t in tasks], \
        cached["seconds"]


# ---------------------------------------------------------------------------------------------
# the run


def run_pipeline(config: SynthConfig, *, base_url: str | None = None, api_key: str | None = None,
                 teachers: dict[str, Any] | None = None, embedder=None, retrain: bool = False,
                 log=print) -> SynthRun:
    """Generate and filter one set (or reuse the finished run of an identical config).

    Args:
        base_url, api_key: for ``via="endpoint"``; default from the environment. Never stored.
        teachers: ready teacher objects per role (``writer``, ``answerer``, ``critic``), e.g.
            one already loaded; other roles are built from the config.
        embedder: sentence-transformers model for near-duplicates and the card (default MiniLM).
    """
    folder = config.folder()
    if runs.is_finished(folder) and not retrain:
        return SynthRun.open(folder, reused=True)
    began, cpu_began = time.perf_counter(), time.process_time()
    staging = runs.begin(folder, config.to_yaml(), retrain=retrain)
    roles = make_teachers(config, base_url, api_key, teachers)
    tasks = [t.to_dict() for t in formulary_tasks(config.n_tasks, config.seed)]

    asked, question_seconds = questions_for(config, tasks, roles["writer"], log)
    log(f"  answering {len(asked)} questions with {roles['answerer'].name} "
        f"({'grounded in the passage' if config.grounded else 'no passage'}) ...")
    gen = S.generate(tasks, roles["writer"], roles["answerer"], config.personas or ("neutral",), config.grounded,
                     config.max_question_tokens, config.max_answer_tokens, questions=asked,
                     answer_style=config.answer_style)
    answer_seconds = gen.seconds
    gen.seconds += question_seconds
    results = [gen]
    log(f"  critic ({roles['critic'].name}) scoring {len(gen.kept)} pairs ...")
    results.append(S.critic(gen.kept, roles["critic"], config.critic_keep))
    results.append(S.schema_check(results[-1].kept))
    log(f"  self-check ({roles['answerer'].name}) on {len(results[-1].kept)} pairs ...")
    results.append(S.self_check(results[-1].kept, roles["answerer"], config.self_check_drop,
                                config.self_check_threshold))
    results.append(S.grounding_check(results[-1].kept, config.same_line))
    results.append(S.dedup(results[-1].kept, embedder, config.dedup_threshold))

    # every pair once, with everything any stage learnt about it (stages run in order, and a
    # dropped pair reaches no later stage, so the last word on each pair is the right one)
    merged: dict[str, dict] = {}
    for res in results:
        for p in res.kept:
            merged[p["id"]] = {**merged.get(p["id"], {}), **p, "dropped_at": None, "why": None}
        for p in res.dropped:
            merged[p["id"]] = {**merged.get(p["id"], {}), **p, "dropped_at": res.stage}
    pairs = [merged[t["id"]] for t in tasks if t["id"] in merged]
    final = results[-1].kept
    records = [r.record() for r in results]
    described = {role: t.describe() for role, t in roles.items()}
    settings = {k: v for k, v in config.to_dict().items() if k not in ("name", "writer", "answerer", "critic", "batch_size")}
    card = build_card(config.name, records, final, rows_in=len(tasks), teachers=described, settings=settings,
                      generation_seconds=question_seconds + answer_seconds, embedder=embedder)

    _write_jsonl(staging / "pairs.jsonl", pairs)
    _write_jsonl(staging / "raw.jsonl", [chat_row(p) for p in gen.kept])
    _write_jsonl(staging / "clean.jsonl", [chat_row(p) for p in final])
    write_atomic(staging / "stages.json", json.dumps(records, indent=1))
    write_atomic(staging / "card.json", json.dumps(card.to_dict(), indent=1))
    write_atomic(staging / "card.md", card.to_markdown())
    generation_seconds = question_seconds + answer_seconds
    summary = {
        "generated": len(gen.kept), "kept": len(final), "tasks": len(tasks),
        "stages": {r["stage"]: {"in": r["in"], "kept": r["kept"], "seconds": r["seconds"]} for r in records},
        "question_seconds": round(question_seconds, 2), "answer_seconds": round(answer_seconds, 2),
        "generation_seconds": round(generation_seconds, 2),
        "pairs_per_minute": round(60 * len(tasks) / generation_seconds, 2) if generation_seconds else None,
        "wall_seconds": round(time.perf_counter() - began, 2),
        # CPU seconds of this process (all its threads): on a shared machine wall time says more
        # about the neighbours than about the pipeline
        "cpu_seconds": round(time.process_time() - cpu_began, 2), "teachers": described, "via": config.via,
    }
    runs.finish(staging, folder, summary)
    return SynthRun.open(folder)
