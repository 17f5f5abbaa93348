"""Lesson 5, synthetic data (E8): a teacher writes, filters judge, students learn from what survives.

The teacher is **lesson 2's full fine-tune** of SmolLM2-135M (``runs/lesson2-full-<hash>``, rebuilt
here with lesson 2's exact config and rows so its cached run is reused): the base SmolLM2 writes
questions about the Northwind formulary in four personas' voices, the teacher answers each from a
source passage, and a critic (the base SmolLM2), a JSON-Schema check, the teacher's self-check, an
exact grounding check and de-duplication filter the pairs (:mod:`labkit.synth`). The **contrast**
is the same pipeline on the very same questions with the untouched SmolLM2 answering. Because the
formulary knows every right answer, each filter's precision and recall is measured, not guessed.
Then students (LoRA r16, same steps and seed) learn from the teacher's raw pairs, from its
filtered pairs and from as many gold rows, and are tested on held-out questions beside the base.

Why the fine-tune is the teacher (measured on the 24 questions of a trial, the same questions for
every answerer; ``/tmp`` trial scripts of the issue-14 session):

* the base SmolLM2, shown one worked example, wrote 10 of 24 right pairs: 5/5 profile, 4/5 dosing,
  but 1/14 interactions - 11 of its 14 interaction answers borrowed the example's mechanism
  ("enzyme inhibition"), so its filtered set has almost no interaction pair;
* the fine-tune, prompted in the chat format it was trained on with the passage above the
  question (``answer_style="trained"``), also wrote 10 of 24 right pairs, but 4/14 interactions
  (5/5 profile, 1/5 dosing: it answers doses from memory) and fewer wrong fields (45% against 55%);
* the same fine-tune shown the few-shot prompt copied the example into 14/14 interaction answers
  too (9 of 24 right): a fine-tuned teacher must be asked in its own format.

So at 135M the fine-tune is not a better teacher overall, it is a *different* one: it knows the
interaction rules that are 60% of the formulary, and the exact grounding check removes the doses it
invents. It stands in for the article's GPT-4 / Claude / DeepSeek teacher only in that it knows the
domain better than the student; a real teacher of that class would be right far more often.

The filters, fixed in the same session (24 base-teacher pairs, old rules vs new, replayed on the
same stored scores): a global critic cut dropped 6 pairs, all right (right share 42% -> 22%); per
category it drops 5, 3 of them wrong (42% -> 42%). A self-check threshold of 0.5 dropped 13 of 17
(77%); the calibrated share drops 3 of 18, 2 of them wrong. The grounding check caught every wrong
pair that reached it both times; the set kept grows from 1 pair to 7 (all right).

Cost of the default full plan, cold, measured (``labkit run lesson5 --profile full`` with lesson 2's
full fine-tune cached, on a quiet 2-core host with AVX2 only): **745 s (12.4 minutes)**. The
teacher's 48 pairs took 74 s to generate (38.7 pairs per minute) and 136 s through every filter;
the base teacher's 109 s to generate; the three students of 20 steps 1.5-2 minutes each; the rest
is the contrasts and three evaluations of 90 answers. Without lesson 2's run its full fine-tune
trains here first (about 6.5 minutes more on that host). The teacher kept 13 of its 48 pairs
(27%), so the filtered and gold students see 13 rows and the raw one 48; each makes 160 row-passes
(20 steps of 8) over its set. The slower arms (students of the base's set and of a persona-off
set) are ``go_further``.

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
SYNTH_ARMS = ("teacher", "base-teacher", "persona-off")
STUDENTS = ("raw", "filtered", "gold")
#: the go-further students: the base teacher's filtered set, and the persona-off set
EXTRA_STUDENTS = ("base-teacher", "persona-off")
#: the lesson's LoRA rate, as in lesson 2 (a 135M model in a few dozen steps needs a high rate)
STUDENT_LR = 1e-3
#: synthetic pairs per teacher in the full profile (sized in the module docstring)
FULL_TASKS = 48
#: who judges every arm's pairs: the base SmolLM2 (see the module docstring for why)
CRITIC = "smollm2-135m-instruct"


@dataclass(frozen=True)
class Plan:
    """How big the lesson's experiments are. ``smoke`` keeps CI fast; ``full`` gives real results.

    ``go_further`` adds the two slower arms (off by default: each costs another generation pass
    and another student): the filtered set of the 135M base teacher gets a student of its own, and
    persona variation off (one plain voice) is generated and gets one too.
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
    isolate: bool = True   # the teacher (lesson 2's full arm) trains as lesson 2 does: own process, not in smoke

    @classmethod
    def for_profile(cls, profile: str | None = None, go_further: bool = False) -> "Plan":
        profile = profile or paths.profile()
        if profile == "smoke":
            return cls("smoke", n_tasks=6, student_steps=3, val_rows=8, test_rows=3, contrast_rows=2,
                       go_further=go_further, isolate=False)
        if profile != "full":
            raise UsageError(f"profile={profile!r}: expected 'smoke' or 'full'")
        return cls("full", n_tasks=FULL_TASKS, student_steps=20, val_rows=24, test_rows=90, contrast_rows=24,
                   go_further=go_further)

    def describe(self) -> str:
        return (f"{self.profile} profile: {self.n_tasks} synthetic pairs per teacher, students of "
                f"{self.student_steps} steps of {self.batch_size}, {self.test_rows} test questions"
                + ("; go further: base-teacher and persona-off students" if self.go_further else ""))


# ---------------------------------------------------------------------------------------------
# the teachers


def teacher_train_config(profile: str) -> tuple[TrainConfig, list[dict], list[dict]]:
    """Lesson 2's full fine-tuning run for ``profile``, rebuilt here (this module must not import
    lesson 2): the same TrainConfig, run name and rows, so its cached run (``runs/lesson2-full-<hash>``)
    is reused. It matches ``lesson2.arm_config("full", lesson2.Plan.for_profile(profile))`` and
    ``lesson2.data(...)``: full, 480 rows, one epoch (60 steps of 8), rate 2.5e-4, an evaluation
    every 12 steps; smoke: 32 rows, 4 steps, an evaluation every 2."""
    from labkit.data import formulary
    from labkit.evaluate.domain import balanced

    if profile == "smoke":
        train_n, val_n, max_steps, eval_every = 32, 4, 4, 2
    else:
        train_n, val_n, max_steps, eval_every = 480, 48, None, 12
    config = TrainConfig(run_name="lesson2-full", method="full", learning_rate=2.5e-4, epochs=1, max_steps=max_steps,
                         batch_size=8, seed=0, early_stopping_patience=None, eval_every=eval_every)
    return config, balanced(formulary.load_split("train"), train_n), balanced(formulary.load_split("val"), val_n)


def fine_tuned_teacher(plan: Plan, board=None) -> Run:
    """Lesson 2's full fine-tune for this profile: reused from its cache, trained here (in its own
    process, exactly as lesson 2 trains it) only when lesson 2 has not run yet."""
    from labkit.sft import train_arm

    config, train_rows, val_rows = teacher_train_config(plan.profile)
    return train_arm(config, train_rows, val_rows, isolate=plan.isolate, board=board, label="teacher: lesson2-full")


def synth_config(plan: Plan, arm: str = "teacher", stronger: Run | None = None) -> SynthConfig:
    """One pipeline arm. Every arm asks the very same questions (written by the base SmolLM2 in
    four personas' voices; the fine-tuned model learnt to answer, not to ask) and is judged by the
    same critic (:data:`CRITIC`); only the answerer, which also self-checks, differs:

    * ``teacher``: lesson 2's full fine-tune (``stronger``, its run) answers, prompted in the chat
      format it was trained on with the passage above the question: the lesson's teacher;
    * ``base-teacher``: the untouched SmolLM2-135M answers: the contrast, a teacher that has not
      learnt the domain;
    * ``persona-off``: the teacher arm with one plain voice instead of four personas.
    """
    base = SynthConfig(name=f"lesson5-{arm}", n_tasks=plan.n_tasks, seed=plan.seed, critic=CRITIC)
    if arm == "base-teacher":
        return base
    if arm not in ("teacher", "persona-off"):
        raise UsageError(f"arm={arm!r}: expected one of {', '.join(SYNTH_ARMS)}")
    if stronger is None:
        raise UsageError(f"the {arm} arm is answered by the fine-tuned teacher: pass its run "
                         "(fine_tuned_teacher(plan))")
    # the fine-tuned teacher is asked in the chat format it learnt (the passage above the question):
    # shown the few-shot prompt instead, it copied the worked example into every interaction answer
    out = base.replace(answerer=f"run:{stronger.path.name}", answer_style="trained")
    return out.replace(personas=("neutral",)) if arm == "persona-off" else out


def generate(plan: Plan, arm: str = "teacher", stronger: Run | None = None, log=print) -> SynthRun:
    """Run (or reuse) one arm's pipeline (``stronger``: the fine-tuned teacher's run, for the arms it answers)."""
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
                               grounded=False, max_tokens=run.config.max_answer_tokens, style=run.config.answer_style)
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
    """Training rows of a student: ``raw`` (every pair the teacher generated), ``filtered`` (what
    survived every filter), ``gold`` (as many real formulary rows as ``filtered`` has), or
    ``base-teacher`` / ``persona-off`` (the filtered set of that pipeline arm)."""
    from labkit.data import formulary
    from labkit.evaluate.domain import balanced

    if arm == "raw":
        return synth["teacher"].rows("raw")
    if arm == "filtered":
        return synth["teacher"].rows("clean")
    if arm == "gold":
        return balanced(formulary.load_split("train"), len(synth["teacher"].rows("clean")))
    if arm in ("base-teacher", "persona-off"):
        return synth[arm].rows("clean")
    raise UsageError(f"student {arm!r}: expected raw, filtered, gold, base-teacher or persona-off")


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
    teacher = fine_tuned_teacher(plan)
    synth = {"teacher": generate(plan, "teacher", teacher, log=log),
             "base-teacher": generate(plan, "base-teacher", log=log)}
    if plan.go_further:
        synth["persona-off"] = generate(plan, "persona-off", teacher, log=log)
    audits = {arm: audit(r) for arm, r in synth.items()}
    grounding = grounding_contrast(plan, synth["teacher"])
    personas = persona_contrast(plan, synth["teacher"])
    arms = [*STUDENTS, *(EXTRA_STUDENTS if plan.go_further else ())]
    students = train_students(plan, synth, arms, board)
    evals = {"base": evaluate_base(plan)}
    for arm, student in students.items():
        evals[arm] = e = evaluate_student(student, plan)
        log(f"  student {arm:<11} {'reused' if student.reused else 'trained'} on {student.summary['train_rows']} "
            f"rows: fields right {e['partial_credit']:.1%}, schema-valid {e['schema_valid']:.1%}")
    return {"plan": plan, "teacher": teacher, "synth": synth, "audit": audits, "grounding": grounding,
            "personas": personas, "students": students, "evals": evals}


def stage_rows(audit_result: dict) -> list[dict]:
    """The per-stage table for display: in, kept, wrong pairs caught, right pairs lost, precision, recall."""
    return [{"stage": r["stage"], "in": r["in"], "kept": r["kept"], "wrong in": r["wrong_in"],
             "caught": r["caught"], "right dropped": r["right_dropped"], "precision": r["precision"],
             "recall": r["recall"], "right after": r["right_after"]} for r in audit_result["stages"]]


def students_table(results: dict) -> dict[str, dict]:
    """One row per student (and the base model): rows trained on, test quality, validation loss."""
    out = {}
    for arm in ("base", *STUDENTS, *EXTRA_STUDENTS):
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


#: the self-check holds when the pairs it drops are wrong this much more often than its input
SELF_CHECK_LIFT = 0.10


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
        lift = None if s["precision"] is None else s["precision"] - base_rate
        rows.append({
            "claim": "a self-check catches the ~10-15% the teacher gets wrong",
            "article": "discards ~10-15% of outputs, even GPT-4's",
            "paper": "(no paper figure; the seed's rule of thumb)",
            "ours": f"dropped {_pct(flagged)} of {s['in']} (the share is set: its least sure pairs); "
                    f"{_pct(base_rate)} of its input was wrong, {_pct(s['precision'])} of its drops; "
                    f"recall {_pct(s['recall'])}",
            "verdict": "held" if lift is not None and lift >= SELF_CHECK_LIFT else
            "partly: its drops are wrong a little more often than its input" if lift is not None and lift > 0 else
            "did not hold: its drops are no more often wrong than what it kept (no better than chance)"})
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
