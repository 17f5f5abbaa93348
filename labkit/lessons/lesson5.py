"""Lesson 5, synthetic data (E8): a teacher writes, filters judge, students learn from what survives.

The teacher is the embedded SmolLM2-135M: it writes questions about the Northwind formulary in
four personas' voices and answers them from a source passage in the formulary's JSON format. A
critic, a JSON-Schema check, a self-check, an exact grounding check and de-duplication filter the
pairs (:mod:`labkit.synth`). Because the formulary knows every right answer, each filter's
precision and recall is measured, not guessed. Then students (LoRA r16, same steps and seed) learn
from the raw pairs, from the filtered pairs and from as many gold rows, and are tested on the
formulary's held-out questions beside the untouched base model.

Everything is cached: pipeline runs and training runs by config, evaluations beside their runs.

>>> plan = Plan.for_profile("smoke")                      # doctest: +SKIP
>>> results = run(plan, board)                             # doctest: +SKIP
>>> claims(results)                                        # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from labkit import paths
from labkit.config import TrainConfig
from labkit.errors import UsageError
from labkit.evaluate.claims import Claim
from labkit.runs import cached_json
from labkit.sft import Run
from labkit.synth import SynthConfig, SynthRun, run_pipeline

TITLE = "Synthetic data: E8 teacher, critic, schema, self-check and the students they feed"
NOTEBOOK = "05_synthetic_data.ipynb"
SYNTH_ARMS = ("teacher", "persona-off", "stronger")
STUDENTS = ("raw", "filtered", "gold")
#: the lesson's LoRA rate, as in lesson 2 (a 135M model in a few dozen steps needs a high rate)
STUDENT_LR = 1e-3


@dataclass(frozen=True)
class Plan:
    """How big the lesson's experiments are. ``smoke`` keeps CI fast; ``full`` gives real results.

    ``go_further`` adds the two slower arms (off by default: each costs another generation pass
    and another student): the stronger teacher (lesson 2's fine-tuned model answers the same
    questions) and persona variation off (one plain voice), each with its own student.
    """

    profile: str
    n_tasks: int           # synthetic pairs the teacher writes
    student_steps: int     # optimizer steps per student (same for every student)
    val_rows: int          # gold validation rows every student is scored on while training
    test_rows: int         # held-out formulary questions each student answers
    contrast_rows: int     # pairs used for the grounded/ungrounded and persona on/off contrasts
    batch_size: int = 8
    seed: int = 0
    go_further: bool = False

    @classmethod
    def for_profile(cls, profile: str | None = None, go_further: bool = False) -> "Plan":
        profile = profile or paths.profile()
        if profile == "smoke":
            return cls("smoke", n_tasks=8, student_steps=3, val_rows=8, test_rows=9, contrast_rows=4,
                       go_further=go_further)
        if profile != "full":
            raise UsageError(f"profile={profile!r}: expected 'smoke' or 'full'")
        # sized for 15 minutes on 2 quiet cores: a pair costs ~7 CPU-seconds end to end (question,
        # answer, critic, self-check; measured single-threaded on 24 pairs), so 64 pairs take ~5 min
        return cls("full", n_tasks=64, student_steps=20, val_rows=24, test_rows=90, contrast_rows=24,
                   go_further=go_further)

    def describe(self) -> str:
        return (f"{self.profile} profile: {self.n_tasks} synthetic pairs, students of {self.student_steps} steps of "
                f"{self.batch_size}, {self.test_rows} test questions"
                + ("; go further: stronger teacher and persona-off arms" if self.go_further else ""))


# ---------------------------------------------------------------------------------------------
# the teacher arms


def stronger_teacher_config() -> tuple[TrainConfig, list[dict], list[dict]]:
    """Lesson 2's full fine-tuning run, rebuilt here (this module must not import lesson 2): the
    same TrainConfig and the same rows, so its cached run (``runs/lesson2-full-<hash>``) is reused."""
    from labkit.data import formulary
    from labkit.evaluate.domain import balanced

    # matches labkit.lessons.lesson2.arm_config("full", Plan.for_profile("full")) and lesson2.data()
    config = TrainConfig(run_name="lesson2-full", method="full", learning_rate=2.5e-4, epochs=1, max_steps=None,
                         batch_size=8, seed=0, early_stopping_patience=None, eval_every=12)
    return config, balanced(formulary.load_split("train"), 480), balanced(formulary.load_split("val"), 48)


def stronger_teacher(board=None) -> Run:
    """The fine-tuned teacher (trained here only if lesson 2's run is not cached yet)."""
    from labkit.sft import train_isolated

    config, train_rows, val_rows = stronger_teacher_config()
    return train_isolated(config, train_rows, val_rows, board=board, label="lesson2-full")


def synth_config(plan: Plan, arm: str = "teacher", stronger: Run | None = None) -> SynthConfig:
    """``teacher``: SmolLM2 writes, answers, criticises. ``persona-off``: the same with one plain
    voice. ``stronger``: the same questions, answered and self-checked by the fine-tuned teacher."""
    base = SynthConfig(name=f"lesson5-{arm}", n_tasks=plan.n_tasks, seed=plan.seed)
    if arm == "teacher":
        return base
    if arm == "persona-off":
        return base.replace(personas=("neutral",))
    if arm == "stronger":
        if stronger is None:
            raise UsageError("the stronger arm needs the fine-tuned teacher's run (stronger_teacher())")
        return base.replace(answerer=f"run:{stronger.path.name}")
    raise UsageError(f"arm={arm!r}: expected one of {', '.join(SYNTH_ARMS)}")


def generate(plan: Plan, arm: str = "teacher", stronger: Run | None = None, log=print) -> SynthRun:
    """Run (or reuse) one arm's pipeline."""
    run = run_pipeline(synth_config(plan, arm, stronger), log=log)
    s = run.summary
    log(f"  {arm}: {'reused' if run.reused else 'generated'} {s['generated']} pairs, kept {s['kept']}; "
        f"generation {s['generation_seconds']:.0f} s ({s['pairs_per_minute']:.1f} pairs/min)")
    return run


# ---------------------------------------------------------------------------------------------
# measured against the truth (cached beside each pipeline run)


def audit(run: SynthRun) -> dict:
    """Every pair judged against the formulary; per stage: in, kept, precision, recall."""
    from labkit.synth import truth as T

    def compute():
        pairs = run.pairs
        judged = T.judge_all(pairs)
        return {"truth": judged, "stages": T.stage_table(run.stages, judged), "why_wrong": T.why_wrong(judged),
                "right_raw": sum(t["right"] for t in judged.values()) / max(1, len(judged)),
                "grounded": T.invented_fields(pairs)}

    return cached_json(run.path / "evals" / "truth.json", compute)


def grounding_contrast(plan: Plan, run: SynthRun) -> dict:
    """The same questions answered without the passage: how many answer fields are invented?"""
    from labkit.synth import stages as S
    from labkit.synth import truth as T
    from labkit.synth.pipeline import make_teachers

    pairs = [p for p in run.pairs if p["question"]][: plan.contrast_rows]

    def compute():
        answerer = make_teachers(run.config)["answerer"]
        bare = S.write_answers([{k: v for k, v in p.items() if k != "answer"} for p in pairs], answerer,
                               grounded=False, max_tokens=run.config.max_answer_tokens)
        return {"n": len(pairs), "grounded": T.invented_fields(pairs), "ungrounded": T.invented_fields(bare),
                "examples": [{"question": p["question"], "grounded": p["answer"], "ungrounded": b["answer"],
                              "truth": _truth(p)} for p, b in zip(pairs[:4], bare[:4])]}

    return cached_json(run.path / "evals" / f"ungrounded-{len(pairs)}.json", compute)


def persona_contrast(plan: Plan, run: SynthRun) -> dict:
    """Diversity of the questions with personas (this run) and without (one plain voice)."""
    from labkit.synth import card as C
    from labkit.synth import stages as S
    from labkit.synth.pipeline import make_teachers

    tasks = [{k: p[k] for k in ("id", "category", "topic", "subjects", "passage", "passage_id")}
             for p in run.pairs][: plan.contrast_rows]
    with_personas = [p["question"] for p in run.pairs][: plan.contrast_rows]

    def compute():
        writer = make_teachers(run.config)["writer"]
        plain = [p["question"] for p in S.write_questions(tasks, writer, ["neutral"], run.config.max_question_tokens)]
        return {"n": len(tasks), "on": C.diversity(with_personas), "off": C.diversity(plain),
                "examples": [{"topic": t["topic"], "persona": p["persona"], "on": q, "off": o}
                             for t, p, q, o in zip(tasks[:4], run.pairs[:4], with_personas[:4], plain[:4])]}

    return cached_json(run.path / "evals" / f"personas-{len(tasks)}.json", compute)


def _truth(pair: dict) -> str:
    from labkit.data import formulary

    return json.dumps(formulary.build(0).answer(pair["category"], list(pair["subjects"])))


# ---------------------------------------------------------------------------------------------
# the students


def data(plan: Plan) -> tuple[list[dict], list[dict]]:
    """Gold validation rows (scored during every student's training) and the held-out test rows."""
    from labkit.data import formulary
    from labkit.evaluate.domain import balanced

    return balanced(formulary.load_split("val"), plan.val_rows), balanced(formulary.load_split("test"), plan.test_rows)


def student_rows(plan: Plan, arm: str, synth: dict[str, SynthRun]) -> list[dict]:
    """Training rows of a student: ``raw`` (every generated pair), ``filtered`` (what survived),
    ``gold`` (as many real formulary rows as ``filtered`` has), or ``stronger`` / ``persona-off``
    (the filtered set of that pipeline arm)."""
    from labkit.data import formulary
    from labkit.evaluate.domain import balanced

    if arm == "raw":
        return synth["teacher"].rows("raw")
    if arm == "filtered":
        return synth["teacher"].rows("clean")
    if arm == "gold":
        return balanced(formulary.load_split("train"), len(synth["teacher"].rows("clean")))
    if arm in ("stronger", "persona-off"):
        return synth[arm].rows("clean")
    raise UsageError(f"student {arm!r}: expected raw, filtered, gold, stronger or persona-off")


def student_config(plan: Plan, arm: str) -> TrainConfig:
    """Every student: LoRA r16, the same steps, batch, rate and seed; only the rows differ."""
    return TrainConfig(run_name=f"lesson5-{arm}", method="lora", rank=16, learning_rate=STUDENT_LR, epochs=1,
                       max_steps=plan.student_steps, batch_size=plan.batch_size, seed=plan.seed,
                       early_stopping_patience=None, eval_every=max(2, plan.student_steps // 5))


def train_students(plan: Plan, synth: dict[str, SynthRun], arms, board=None) -> dict[str, Run]:
    """Train (or reuse) each student, every curve on one board. They train in this process: no
    memory is compared here, and a second process per student would cost its start-up time. A
    student whose set came out empty is skipped (it is then missing from the returned dict)."""
    from labkit.sft.train import train

    val_rows, _ = data(plan)
    out = {}
    for arm in arms:
        rows = student_rows(plan, arm, synth)
        if rows:
            out[arm] = train(student_config(plan, arm), rows, val_rows, board=board, label=arm)
    return out


def _test_key(plan: Plan) -> str:
    _, test_rows = data(plan)
    return hashlib.sha256(json.dumps([r["id"] for r in test_rows]).encode()).hexdigest()[:10]



def evaluate_student(run: Run, plan: Plan) -> dict:
    """A student's answers to the held-out test questions, cached beside its run."""
    from labkit.evaluate.domain import evaluate_domain

    _, test_rows = data(plan)
    return cached_json(run.path / "evals" / f"domain-{_test_key(plan)}.json",
                       lambda: evaluate_domain(run.load(), test_rows, limit=len(test_rows)).to_dict())


def evaluate_base(plan: Plan, model: str = "smollm2-135m-instruct") -> dict:
    """The untouched base model on the same questions with the rows' own prompt. The cache key is
    built as lesson 2 builds it, so the same test questions share one file."""
    from labkit import models
    from labkit.evaluate.domain import evaluate_domain

    _, test_rows = data(plan)
    key = hashlib.sha256(json.dumps([model, "dataset", None, [r["id"] for r in test_rows]]).encode()).hexdigest()[:10]
    return cached_json(paths.runs_dir() / "base-evals" / f"dataset-{key}.json",
                       lambda: evaluate_domain(models.load(model), test_rows, limit=len(test_rows)).to_dict())


# ---------------------------------------------------------------------------------------------
# everything, headless


def run(plan: Plan, board=None, log=print) -> dict:
    """Every pipeline arm, its audit and contrasts, every student trained and evaluated.

    Returns ``{"plan", "synth": {arm: SynthRun}, "audit": {arm: dict}, "grounding", "personas",
    "students": {arm: Run}, "evals": {arm or "base": metrics}}``.
    """
    synth = {"teacher": generate(plan, "teacher", log=log)}
    if plan.go_further:
        synth["stronger"] = generate(plan, "stronger", stronger=stronger_teacher(), log=log)
        synth["persona-off"] = generate(plan, "persona-off", log=log)
    audits = {arm: audit(r) for arm, r in synth.items()}
    grounding = grounding_contrast(plan, synth["teacher"])
    personas = persona_contrast(plan, synth["teacher"])
    arms = [*STUDENTS, *(a for a in ("stronger", "persona-off") if a in synth)]
    students = train_students(plan, synth, arms, board)
    evals = {"base": evaluate_base(plan)}
    for arm, student in students.items():
        evals[arm] = e = evaluate_student(student, plan)
        log(f"  student {arm:<11} {'reused' if student.reused else 'trained'} on {student.summary['train_rows']} "
            f"rows: fields right {e['partial_credit']:.1%}, schema-valid {e['schema_valid']:.1%}")
    return {"plan": plan, "synth": synth, "audit": audits, "grounding": grounding, "personas": personas,
            "students": students, "evals": evals}


def stage_rows(audit_result: dict) -> list[dict]:
    """The per-stage table for display: in, kept, wrong pairs caught, right pairs lost, precision, recall."""
    return [{"stage": r["stage"], "in": r["in"], "kept": r["kept"], "wrong in": r["wrong_in"],
             "caught": r["caught"], "right dropped": r["right_dropped"], "precision": r["precision"],
             "recall": r["recall"], "right after": r["right_after"]} for r in audit_result["stages"]]


def students_table(results: dict) -> dict[str, dict]:
    """One row per student (and the base model): rows trained on, test quality, validation loss."""
    out = {}
    for arm in ("base", *STUDENTS, "stronger", "persona-off"):
        e = results["evals"].get(arm)
        if e is None:
            continue
        run = results["students"].get(arm)
        out[arm] = {"train rows": run.summary["train_rows"] if run else 0, "fields right": e["partial_credit"],
                    "accuracy": e["accuracy"], "schema valid": e["schema_valid"],
                    "best val loss": run.summary["best_eval_loss"] if run else None}
    return out


def show_drops(run: SynthRun, audit_result: dict, width: int = 110) -> None:
    """Per filter stage, a wrong pair it caught and a right pair it lost (real pairs, with reasons)."""
    from labkit.synth.truth import show_drops as show

    show(run.pairs, [s["stage"] for s in run.stages][1:], audit_result["truth"], width)


def show_replies(evals: dict[str, dict], arms, n: int = 2, width: int = 100) -> None:
    """The first ``n`` test questions with each arm's real reply beside the reference."""
    arms = list(arms)
    first = evals[arms[0]]["examples"]
    for i in range(min(n, len(first))):
        print(f"Q: {first[i]['question']}\n   reference: {first[i]['reference']}")
        for arm in arms:
            ex = evals[arm]["examples"][i]
            print(f"   {arm:>9} {'ok' if ex['correct'] else 'no'}: {ex['reply'][:width]}")


# ---------------------------------------------------------------------------------------------
# the article's claims, next to ours


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"


def claims(results: dict) -> list[Claim]:
    """Article figure | paper figure | our figure | verdict, each verdict one threshold on our numbers.

    ``results`` needs ``audit["teacher"]`` (the stage table), and optionally ``evals`` (students)
    and ``grounding`` (the contrast); the notebook builds the same dict step by step.
    """
    rows = []
    stages = {r["stage"]: r for r in results["audit"]["teacher"]["stages"]}
    if "critic" in stages:
        c = stages["critic"]
        kept, right_in = c["kept"] / c["in"], 1 - c["wrong_in"] / c["in"]
        gain = (c["right_after"] or 0) - right_in
        rows.append({
            "claim": "a critic keeps the best 70-80% and cleans the set",
            "article": "keep the top 70-80% by a critic's score",
            "paper": "Self-Instruct filtered GPT-3's own output by heuristics and ROUGE-L < 0.7, no model critic",
            "ours": f"critic kept {_pct(kept)}; right pairs {_pct(right_in)} before, {_pct(c['right_after'])} after; "
                    f"precision {_pct(c['precision'])}, recall {_pct(c['recall'])}",
            "verdict": "held" if gain >= 0.05 else
            "did not hold: the 135M critic's cut is no cleaner than its input" if gain <= 0.01 else
            f"partly: the cut is only {100 * gain:.0f} points cleaner"})
    if "self-check" in stages:
        s = stages["self-check"]
        flagged = (s["in"] - s["kept"]) / s["in"] if s["in"] else 0.0
        base_rate = s["wrong_in"] / s["in"] if s["in"] else 0.0
        better = s["precision"] is not None and s["precision"] > base_rate + 0.05
        rows.append({
            "claim": "a self-check catches the ~10-15% the teacher gets wrong",
            "article": "discards ~10-15% of outputs, even GPT-4's",
            "paper": "(no paper figure; the seed's rule of thumb)",
            "ours": f"flagged {_pct(flagged)} of {s['in']}; {_pct(base_rate)} of them were wrong; "
                    f"precision {_pct(s['precision'])}, recall {_pct(s['recall'])}",
            "verdict": "held" if better and 0.05 <= flagged <= 0.25 else
            "partly: better than chance, but it flags a different share" if better else
            "did not hold: a 135M teacher cannot judge its own answers (no better than chance)"})
    evals = results.get("evals", {})
    if "filtered" in evals and "raw" in evals:
        f, r = evals["filtered"]["partial_credit"], evals["raw"]["partial_credit"]
        rows.append({
            "claim": "training on the filtered set beats the raw set",
            "article": "one malformed example can teach bad habits: filter first",
            "paper": "LIMA: 1,000 curated examples were enough for a 65B model",
            "ours": f"fields right: filtered {_pct(f)} vs raw {_pct(r)} (schema-valid "
                    f"{_pct(evals['filtered']['schema_valid'])} vs {_pct(evals['raw']['schema_valid'])})"
                    + (f"; gold {_pct(evals['gold']['partial_credit'])}" if "gold" in evals else ""),
            "verdict": "held" if f - r >= 0.02 else
            "did not hold: filtered is not ahead of raw" if f - r <= -0.02 else
            "partly: within 2 points (no clear difference)"})
    g = results.get("grounding")
    if g and g["grounded"]["invented_rate"] is not None and g["ungrounded"]["invented_rate"] is not None:
        a, b = g["grounded"]["invented_rate"], g["ungrounded"]["invented_rate"]
        rows.append({
            "claim": "grounding in a source passage reduces invented facts",
            "article": "give the teacher real source documents",
            "paper": "(no paper figure; RAFT in lesson 6 trains the student to use passages)",
            "ours": f"wrong answer fields: {_pct(a)} with the passage vs {_pct(b)} without ({g['n']} questions)",
            "verdict": "held" if b - a >= 0.10 else "did not hold: the passage did not cut invented facts"})
    return [_claim(**row) for row in rows]


def _claim(claim: str, article: str, paper: str, ours: str, verdict: str) -> Claim:
    held = True if verdict == "held" else False if verdict.startswith("did not hold") else None
    return Claim(claim, article, paper, ours, verdict, held)
