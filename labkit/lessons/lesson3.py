"""Lesson 3, the training recipe: baseline first, LIMA (E6), data size, epochs and early stopping
(E5), learning rate and batch size, each measured on SmolLM2-135M with LoRA r16.

Every arm fine-tunes the same model on the Northwind formulary's JSON task and differs from its
comparison arm in one thing (the data's cleanliness, its size, the learning rate, the batch size,
the validation split). Runs are cached by config and data hash (``runs/lesson3-<arm>-<hash>/``)
and evaluations beside them, so a second pass, or ``labkit run lesson3`` beforehand, costs nothing.

Budget (the full profile must run cold in about 15 minutes on two cores), so arms are shared
wherever two experiments need the same thing:

* ``clean-256`` (256 clean rows, one epoch, 32 steps of 8, LoRA at 1e-3) is LIMA's small clean
  set and the 256 point of the data-size curve;
* ``clean-96`` (96 rows, 12 steps) is the 96 point of the data-size curve, the 1e-3 arm of the
  learning-rate sweep (all four rates train on those 96 rows) and the batch-8 arm of the
  batch-size comparison (batch 1 sees the same 96 rows);
* the 480-row point of the data-size curve is lesson 2's LoRA r16 run, rebuilt here with the
  identical config and rows, so a course that ran lesson 2 reuses it (and its evaluation);
* the base model's scores are lesson 2's cached baselines (same questions, same prompts, same
  cache key);
* the secondary arms (learning rate, batch size) are judged on validation loss and on 30 of the 90
  test questions; the epoch arms on validation loss alone.

The slowest experiments are "go further" (``Plan.for_profile(go_further=True)``): the noisy set at
its natural length (one full epoch, 165 steps), the 1,000-row point of the data-size curve, the
epoch experiment again with 10% held out instead of 20%, and full fine-tuning at the article's
2e-5 against lesson 2's full fine-tune at 2.5e-4.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, replace

from labkit import paths
from labkit.config import SEED_LEARNING_RATES, TrainConfig
from labkit.errors import UsageError
from labkit.evaluate.claims import Claim
from labkit.evaluate.curves import early_stop, roughness, training_seconds
from labkit.runs import cached_json
from labkit.sft import Run

TITLE = "The training recipe: baseline first, LIMA (E6), data size, epochs and early stopping (E5), learning rate, batch size"
NOTEBOOK = "03_training_recipe.ipynb"
PROMPTS = ("dataset", "careful", "few-shot")

#: LoRA's rate for every arm that is not about the rate: lesson 2's measured choice for 135M over
#: a few dozen steps (the seed's 5e-5 barely moves a model this small in that time).
LORA_LR = 1e-3
#: The rates of the learning-rate sweep: the article's LoRA baseline, the QLoRA paper's rate for
#: its 7B and 13B models, lesson 2's measured rate, and one that is clearly too high.
SWEEP_LRS = (SEED_LEARNING_RATES["lora"], 2e-4, LORA_LR, 1e-2)
#: Planted noise for the large set: about half of the 1,200 rows damaged, plus 10% duplicates.
NOISE = (("wrong", 0.20), ("broken_format", 0.15), ("truncated", 0.15), ("duplicates", 0.10))


@dataclass(frozen=True)
class Lesson2Arm:
    """What lesson 2 trains for one profile (``labkit.lessons.lesson2.Plan`` and ``data``), mirrored
    here because a lesson never imports another lesson; ``tests/test_lesson3.py`` checks the match."""

    train_rows: int
    val_rows: int
    test_rows: int
    max_steps: int | None


LESSON2 = {"smoke": Lesson2Arm(48, 12, 18, 6), "full": Lesson2Arm(480, 48, 90, None)}
LESSON2_LRS = {"lora": 1e-3, "full": 2.5e-4}


@dataclass(frozen=True)
class Plan:
    """How big the lesson's experiments are; ``smoke`` keeps CI fast, ``full`` gives real results.

    Attributes:
        clean_rows: the small clean set (LIMA), also the data of the learning-rate and batch arms.
        noisy_source_rows: training rows noise is planted into (the large noisy set).
        sizes: clean set sizes of the data-size curve (plus lesson 2's 480-row run); all one epoch.
        further_sizes: the larger sizes, run only with ``go_further``.
        val_rows, test_rows: validation rows of every arm but the epoch arms; test questions.
        secondary_test_rows: test questions for the learning-rate and batch arms (a subset).
        learning_rates: the LoRA sweep.
        sweep_rows: the clean set of the learning-rate and batch arms (one of ``sizes``, so its
            arm at lesson 2's rate and batch 8 is shared with the data-size curve).
        pool_rows: the epoch experiment's small set, split into train and validation.
        val_fractions: the share of that pool held out for validation, one arm each;
            ``further_val_fractions`` are added with ``go_further``.
        max_epochs, patience: the epoch arms' ceiling and early-stopping patience (in epochs).
        go_further: also run the slow experiments (see the module docstring).
    """

    profile: str
    clean_rows: int
    noisy_source_rows: int
    sizes: tuple[int, ...]
    further_sizes: tuple[int, ...]
    val_rows: int
    test_rows: int
    secondary_test_rows: int
    learning_rates: tuple[float, ...]
    sweep_rows: int
    pool_rows: int
    val_fractions: tuple[float, ...]
    further_val_fractions: tuple[float, ...]
    max_epochs: int
    patience: int
    prompts: tuple[str, ...] = PROMPTS
    go_further: bool = False
    batch_size: int = 8
    seed: int = 0
    noise: tuple[tuple[str, float], ...] = NOISE

    @classmethod
    def for_profile(cls, profile: str | None = None, go_further: bool = False) -> "Plan":
        profile = profile or paths.profile()
        if profile == "smoke":
            return cls("smoke", clean_rows=16, noisy_source_rows=64, sizes=(8, 16), further_sizes=(32,),
                       val_rows=LESSON2["smoke"].val_rows, test_rows=LESSON2["smoke"].test_rows, secondary_test_rows=6,
                       learning_rates=(LORA_LR, 1e-2), sweep_rows=8, pool_rows=20, val_fractions=(0.2,),
                       further_val_fractions=(0.1,), max_epochs=3, patience=1, prompts=("dataset",),
                       go_further=go_further)
        if profile != "full":
            raise UsageError(f"profile={profile!r}: expected 'smoke' or 'full'")
        return cls("full", clean_rows=256, noisy_source_rows=1200, sizes=(96, 256), further_sizes=(1000,),
                   val_rows=LESSON2["full"].val_rows, test_rows=LESSON2["full"].test_rows, secondary_test_rows=30,
                   learning_rates=SWEEP_LRS, sweep_rows=96, pool_rows=80, val_fractions=(0.2,),
                   further_val_fractions=(0.1,), max_epochs=10, patience=2, go_further=go_further)

    @property
    def lesson2(self) -> Lesson2Arm:
        return LESSON2[self.profile]

    @property
    def clean_arm(self) -> str:
        return f"clean-{self.clean_rows}"

    @property
    def sweep_arm(self) -> str:
        """The learning-rate sweep's arm at lesson 2's rate, and the batch comparison's batch-8 arm."""
        return f"clean-{self.sweep_rows}"

    def size_arms(self) -> list[str]:
        """The data-size curve, smallest first: clean arms and lesson 2's r16 run."""
        sizes = list(self.sizes) + (list(self.further_sizes) if self.go_further else [])
        arms = [(n, f"clean-{n}") for n in sizes] + [(self.lesson2.train_rows, "lesson2-r16")]
        return [arm for _, arm in sorted(arms)]

    def lr_arms(self) -> list[str]:
        return [lr_arm(lr, self) for lr in self.learning_rates]

    def epoch_arms(self) -> list[str]:
        fractions = self.val_fractions + (self.further_val_fractions if self.go_further else ())
        return [f"epochs-val{round(100 * f)}" for f in fractions]

    def describe(self) -> str:
        steps = math.ceil(self.clean_rows / self.batch_size)
        extra = ("; go further: the noisy set for a full epoch, " + ", ".join(f"{n} clean rows" for n in self.further_sizes)
                 + ", " + " and ".join(f"{f:.0%}" for f in self.further_val_fractions) + " held out, full fine-tuning "
                 "at 2e-5") if self.go_further else " (go-further experiments off)"
        return (f"{self.profile} profile: LIMA {self.clean_rows} clean rows vs {self.noisy_source_rows} rows with planted "
                f"noise, {steps} steps of {self.batch_size} each; data sizes "
                f"{', '.join(str(n) for n in sorted([*self.sizes, self.lesson2.train_rows]))} at one epoch; "
                f"{len(self.learning_rates)} learning rates and batch 1 vs {self.batch_size} on {self.sweep_rows} rows; "
                f"epochs on {self.pool_rows} rows with {' and '.join(f'{f:.0%}' for f in self.val_fractions)} held out; "
                f"{self.test_rows} test questions "
                f"({self.secondary_test_rows} for the secondary arms){extra}")


def lr_arm(lr: float, plan: Plan) -> str:
    """The arm name of one rate in the sweep; lesson 2's rate is the shared clean arm itself."""
    return plan.sweep_arm if lr == LORA_LR else f"lr-{lr:.0e}"


# ---------------------------------------------------------------------------------------------
# data


def _train_rows() -> list[dict]:
    from labkit.data import formulary

    return formulary.load_split("train")


def clean_rows(n: int) -> list[dict]:
    """``n`` clean training rows, balanced over the three question kinds."""
    from labkit.evaluate.domain import balanced

    return balanced(_train_rows(), n)


def noisy_set(plan: Plan):
    """The large set with planted noise (a :class:`labkit.data.noise.NoiseResult`: rows and labels)."""
    from labkit.data.noise import inject

    return inject(_train_rows()[: plan.noisy_source_rows], seed=plan.seed, **dict(plan.noise))


def val_rows(plan: Plan) -> list[dict]:
    from labkit.data import formulary
    from labkit.evaluate.domain import balanced

    return balanced(formulary.load_split("val"), plan.val_rows)


def test_rows(plan: Plan, secondary: bool = False) -> list[dict]:
    from labkit.data import formulary
    from labkit.evaluate.domain import balanced

    return balanced(formulary.load_split("test"), plan.secondary_test_rows if secondary else plan.test_rows)


# ---------------------------------------------------------------------------------------------
# arms


def _steps(rows: int, batch: int, epochs: float = 1) -> int:
    return math.ceil(epochs * math.ceil(rows / batch))


def _eval_every(steps: int, evals: int = 4) -> int:
    """An evaluation interval that divides the run into about ``evals`` parts, ending on the last step."""
    divisors = [d for d in range(1, steps + 1) if steps % d == 0]
    return min(divisors, key=lambda d: (abs(d - steps / evals), -d))


def _held_out(n: int, fraction: float) -> int:
    # the rule of labkit.sft.train.split_eval: at least one row, never all of them
    return min(n - 1, max(1, round(n * fraction)))


def steps_per_epoch(arm: str, plan: Plan) -> int:
    """Optimizer steps in one pass over an arm's training rows (after any validation hold-out)."""
    config = arm_config(arm, plan)
    rows, val = arm_data(arm, plan)
    n = len(rows) if val is not None else len(rows) - _held_out(len(rows), config.eval_fraction)
    return _steps(n, config.batch_size)


def arm_config(arm: str, plan: Plan) -> TrainConfig:
    """The TrainConfig of one arm (see :func:`arm_names`)."""
    lesson2 = plan.lesson2
    if arm in ("lesson2-r16", "lesson2-full", "full-2e-05"):
        # Identical to labkit.lessons.lesson2.arm_config("r16" / "full", plan) (checked by a test), so the
        # run folder, and lesson 2's evaluation beside it, are reused when lesson 2 has run.
        steps = lesson2.max_steps or _steps(lesson2.train_rows, plan.batch_size)
        common = dict(epochs=1, max_steps=lesson2.max_steps, batch_size=plan.batch_size, seed=plan.seed,
                      early_stopping_patience=None, eval_every=max(2, steps // 5))
        if arm == "lesson2-r16":
            return TrainConfig(run_name="lesson2-r16", method="lora", rank=16, learning_rate=LESSON2_LRS["lora"], **common)
        if arm == "lesson2-full":
            return TrainConfig(run_name="lesson2-full", method="full", learning_rate=LESSON2_LRS["full"], **common)
        return TrainConfig(run_name="lesson3-full-2e-05", method="full", learning_rate=SEED_LEARNING_RATES["full"],
                           **common)
    base = dict(method="lora", rank=16, learning_rate=LORA_LR, batch_size=plan.batch_size, seed=plan.seed,
                early_stopping_patience=None, log_every=1)
    if arm.startswith("clean-") and arm[6:].isdigit():
        steps = _steps(int(arm[6:]), plan.batch_size)
        return TrainConfig(run_name=f"lesson3-{arm}", epochs=1, eval_every=_eval_every(steps), **base)
    clean = arm_config(plan.clean_arm, plan)
    if arm == "noisy":  # equal compute: exactly the clean arm's steps, on the large noisy set
        return clean.replace(run_name="lesson3-noisy", max_steps=_steps(plan.clean_rows, plan.batch_size))
    if arm == "noisy-epoch":  # the noisy set at its own natural length: one full pass
        steps = _steps(len(noisy_set(plan).rows), plan.batch_size)
        return clean.replace(run_name="lesson3-noisy-epoch", eval_every=_eval_every(steps, 5))
    sweep = arm_config(plan.sweep_arm, plan)
    if arm.startswith("lr-"):
        return sweep.replace(run_name=f"lesson3-{arm}", learning_rate=float(arm[3:]))
    if arm == "batch-1":  # the same examples one at a time; evaluated after the same examples as batch 8
        return sweep.replace(run_name="lesson3-batch-1", batch_size=1, eval_every=sweep.eval_every * plan.batch_size)
    if arm.startswith("epochs-val") and arm[10:].isdigit():
        fraction = int(arm[10:]) / 100
        per_epoch = _steps(plan.pool_rows - _held_out(plan.pool_rows, fraction), plan.batch_size)
        # one evaluation (and checkpoint) per epoch; early stopping counts epochs without a new best
        return TrainConfig(run_name=f"lesson3-{arm}", epochs=plan.max_epochs, eval_fraction=fraction,
                           eval_every=per_epoch, **{**base, "early_stopping_patience": plan.patience,
                                                    "log_every": max(1, per_epoch // 4)})
    raise UsageError(f"arm={arm!r}: expected one of {', '.join(arm_names(plan, go_further=True))}")


def arm_data(arm: str, plan: Plan) -> tuple[list[dict], list[dict] | None]:
    """(training rows, validation rows) of one arm; ``None`` = hold out ``eval_fraction`` of the rows."""
    lesson2 = plan.lesson2
    if arm.startswith("lesson2-") or arm == "full-2e-05":
        from labkit.data import formulary
        from labkit.evaluate.domain import balanced

        return balanced(_train_rows(), lesson2.train_rows), balanced(formulary.load_split("val"), lesson2.val_rows)
    if arm.startswith("clean-"):
        return clean_rows(int(arm[6:])), val_rows(plan)
    if arm in ("noisy", "noisy-epoch"):
        return noisy_set(plan).rows, val_rows(plan)
    if arm.startswith("lr-") or arm == "batch-1":
        return clean_rows(plan.sweep_rows), val_rows(plan)
    if arm.startswith("epochs-val"):
        return clean_rows(plan.pool_rows), None
    raise UsageError(f"arm={arm!r}: unknown")


def arm_names(plan: Plan, go_further: bool | None = None) -> list[str]:
    """Every arm the plan trains, in the order :func:`run` trains them."""
    further = plan.go_further if go_further is None else go_further
    names = [plan.clean_arm, "noisy"] + [a for a in replace(plan, go_further=further).size_arms() if a != plan.clean_arm]
    names += [a for a in plan.lr_arms() if a not in names] + ["batch-1"]
    names += replace(plan, go_further=further).epoch_arms()
    if further:
        names += ["noisy-epoch", "lesson2-full", "full-2e-05"]
    return list(dict.fromkeys(names))


def train_arm(arm: str, plan: Plan, board=None, label: str | None = None, retrain: bool = False) -> Run:
    """Train one arm in this process (or reuse its finished run), drawing on ``board``."""
    # (not "from labkit.sft import train": once labkit.sft.train is imported, that name is the module)
    from labkit.sft.train import train

    rows, val = arm_data(arm, plan)
    return train(arm_config(arm, plan), rows, val, board=board, label=label or arm, retrain=retrain)


def train_arms(arms, plan: Plan, board=None, labels: dict[str, str] | None = None) -> dict[str, Run]:
    return {arm: train_arm(arm, plan, board, (labels or {}).get(arm)) for arm in arms}


# ---------------------------------------------------------------------------------------------
# evaluation, cached (the same files and keys as lesson 2, so either lesson reuses the other's)



def _ids_key(rows: list[dict]) -> str:
    return hashlib.sha256(json.dumps([r["id"] for r in rows]).encode()).hexdigest()[:10]


def evaluate_run(run: Run, plan: Plan, secondary: bool = False) -> dict:
    """Accuracy, fields right and JSON/schema validity of a trained arm on the test questions."""
    from labkit.evaluate.domain import evaluate_domain

    rows = test_rows(plan, secondary)

    def compute():
        return evaluate_domain(run.load(), rows, limit=len(rows)).to_dict()

    return cached_json(run.path / "evals" / f"domain-{_ids_key(rows)}.json", compute)


def subset(evaluation: dict, rows: list[dict]) -> dict | None:
    """An evaluation's scores on a subset of its questions (None if it kept no per-answer scores)."""
    wanted = {r["id"] for r in rows}
    scores = [s for s in evaluation.get("scores", []) if s["id"] in wanted]
    if len(scores) != len(wanted):
        return None
    n = len(scores)
    return {"accuracy": sum(s["correct"] for s in scores) / n, "partial_credit": sum(s["field_score"] for s in scores) / n,
            "json_valid": sum(bool(s["json_valid"]) for s in scores) / n,
            "schema_valid": sum(bool(s["schema_valid"]) for s in scores) / n, "n": n, "scores": scores}


def evaluate_base(plan: Plan, prompt: str = "dataset", model: str = "smollm2-135m-instruct") -> dict:
    """The untouched base model on the test questions (lesson 2's baselines: same rows, prompts, key)."""
    from labkit import models
    from labkit.data import formulary
    from labkit.evaluate.domain import balanced, evaluate_domain, format_prompt

    if prompt not in PROMPTS:
        raise UsageError(f"prompt={prompt!r}: expected 'dataset', 'careful' or 'few-shot'")
    rows = test_rows(plan)
    system = None if prompt == "dataset" else format_prompt()
    shots = balanced(formulary.load_split("train"), 3) if prompt == "few-shot" else None
    key = hashlib.sha256(json.dumps([model, prompt, system, [r["id"] for r in rows]]).encode()).hexdigest()[:10]

    def compute():
        return evaluate_domain(models.load(model), rows, system=system, shots=shots, limit=len(rows)).to_dict()

    return cached_json(paths.runs_dir() / "base-evals" / f"{prompt}-{key}.json", compute)


def baselines(plan: Plan, log=print) -> dict[str, dict]:
    out = {}
    for prompt in plan.prompts:
        out[f"base-{prompt}"] = result = evaluate_base(plan, prompt)
        log(f"  base model, {prompt} prompt: fields right {result['partial_credit']:.1%}, "
            f"schema-valid {result['schema_valid']:.1%}")
    return out


# ---------------------------------------------------------------------------------------------
# the four qualities: the linter against the planted noise


def lint_noisy(plan: Plan) -> dict:
    """Lint the noisy set; found / planted per kind of noise, and one flagged example per quality."""
    from labkit.data.audit import found_vs_planted, quality_examples
    from labkit.data.lint import lint

    noisy = noisy_set(plan)
    report = lint(noisy.rows)
    return {"noise": noisy, "report": report, "found": found_vs_planted(report, noisy.labels),
            "examples": quality_examples(noisy.rows, noisy.labels, report, _train_rows()[: plan.noisy_source_rows])}


# ---------------------------------------------------------------------------------------------
# reading the runs


def stop_point(run: Run, per_epoch: int, patience: int):
    """Best and stop epoch of a run, replayed from its validation history under ``patience``."""
    return early_stop([(step / per_epoch, loss) for step, loss in run.eval_loss], patience)


def epochs_summary(runs: dict[str, Run], plan: Plan) -> dict[str, dict]:
    """Per epoch arm: rows, best epoch, stop epoch, and whether the trainer stopped where the rule says."""
    out = {}
    for arm, run in runs.items():
        per_epoch = steps_per_epoch(arm, plan)
        point = stop_point(run, per_epoch, plan.patience)
        s = run.summary
        out[arm] = {"train_rows": s["train_rows"], "val_rows": s["eval_rows"], "steps": s["steps"],
                    "best_epoch": point.best_x, "best_val_loss": point.best_loss,
                    "stop_epoch": point.stop_x, "trainer_stopped_at": s["steps"] / per_epoch if s["stopped_early"] else None,
                    "last_train_loss": run.train_loss[-1][1] if run.train_loss else None,
                    "first_train_loss": run.train_loss[0][1] if run.train_loss else None}
    return out


def batch_summary(runs: dict[str, Run], plan: Plan) -> dict[str, dict]:
    """Per batch arm: examples, updates, training seconds per example, curve roughness, best val loss."""
    out = {}
    for arm, run in runs.items():
        s = run.summary
        batch = run.config.batch_size
        examples = s["steps"] * batch
        seconds = training_seconds(run.history)
        # per-update losses over the second half of the examples, where both curves have flattened
        losses = [loss for step, loss in run.train_loss if step * batch > examples / 2]
        out[arm] = {"batch": batch, "updates": s["steps"], "examples": examples,
                    "train_seconds": seconds, "seconds_per_example": seconds / examples if seconds else None,
                    "roughness": roughness(losses, window=3) if len(losses) >= 3 else None,
                    "best_val_loss": s["best_eval_loss"]}
    return out


# ---------------------------------------------------------------------------------------------
# the whole lesson, headless


def run(plan: Plan, board=None, log=print) -> dict:
    """Every arm trained (or reused) and evaluated, the baselines, and the linter's audit.

    Returns ``{"plan", "runs": {arm: Run}, "evals": {arm or "base-<prompt>": metrics},
    "secondary": {arm: metrics on the secondary questions}, "lint", "epochs", "batch"}``.
    """
    evals = baselines(plan, log)
    runs, secondary = {}, {}
    for arm in arm_names(plan):
        runs[arm] = train_arm(arm, plan, board)
        s = runs[arm].summary
        log(f"  {arm:<14} {'reused' if runs[arm].reused else 'trained'}: {s['train_rows']} rows, {s['steps']} steps, "
            f"best val loss {s['best_eval_loss']:.3f}, {s['wall_seconds']:.0f} s")
    for arm in evaluated_arms(plan):
        evals[arm] = result = evaluate_run(runs[arm], plan)
        log(f"  {arm:<14} fields right {result['partial_credit']:.1%}, schema-valid {result['schema_valid']:.1%}")
    for arm in secondary_arms(plan):
        secondary[arm] = secondary_eval(arm, runs, evals, plan)
    return {"plan": plan, "runs": runs, "evals": evals, "secondary": secondary, "lint": lint_noisy(plan),
            "epochs": epochs_summary({a: runs[a] for a in plan.epoch_arms()}, plan),
            "batch": batch_summary({a: runs[a] for a in (plan.sweep_arm, "batch-1")}, plan)}


def evaluated_arms(plan: Plan) -> list[str]:
    """Arms scored on every test question: LIMA's and the data-size curve's."""
    arms = [plan.clean_arm, "noisy"] + plan.size_arms() + (["noisy-epoch", "lesson2-full", "full-2e-05"]
                                                          if plan.go_further else [])
    return list(dict.fromkeys(arms))


def secondary_arms(plan: Plan) -> list[str]:
    return list(dict.fromkeys(plan.lr_arms() + ["batch-1"]))


def secondary_eval(arm: str, runs: dict[str, Run], evals: dict[str, dict], plan: Plan) -> dict:
    """An arm's score on the secondary questions, read from its full evaluation where it has one."""
    if arm in evals:
        part = subset(evals[arm], test_rows(plan, secondary=True))
        if part is not None:
            return part
    return evaluate_run(runs[arm], plan, secondary=True)


# ---------------------------------------------------------------------------------------------
# what the notebook shows


def quality_row(evaluation: dict | None, run: Run | None = None) -> dict:
    """One row of a comparison table: rows, steps, exact accuracy, field accuracy, schema validity, loss."""
    e = evaluation or {}
    row = {}
    if run is not None:
        row |= {"rows": run.summary["train_rows"], "steps": run.summary["steps"]}
    row |= {"exact accuracy": e.get("accuracy"), "field accuracy": e.get("partial_credit"),
            "schema valid": e.get("schema_valid")}
    if run is not None:
        row["best val loss"] = run.summary["best_eval_loss"]
    return row


def best_base(evals: dict[str, dict]) -> str:
    """The strongest baseline prompt: the most schema-valid answers, then the most fields right."""
    keys = [k for k in evals if k.startswith("base-")]
    return max(keys, key=lambda k: (evals[k]["schema_valid"], evals[k]["partial_credit"]))


def replies(evals: dict[str, dict], arms: list[str], n: int = 3, disagree: bool = True) -> list[dict]:
    """The same questions answered by several arms (from their stored scores): where they disagree first."""
    scored = {arm: {s["id"]: s for s in evals[arm].get("scores", [])} for arm in arms}
    ids = [i for i in scored[arms[0]] if all(i in scored[a] for a in arms)]
    if disagree:  # questions where the arms' validity or score differ make the point best
        ids.sort(key=lambda i: len({(scored[a][i]["schema_valid"], scored[a][i]["field_score"]) for a in arms}) == 1)
    from labkit.data import formulary

    by_id = {r["id"]: r for r in formulary.load_split("test")}
    out = []
    for i in ids[:n]:
        row = by_id[i]
        out.append({"question": next(t["content"] for t in row["messages"] if t["role"] == "user"),
                    "reference": next(t["content"] for t in reversed(row["messages"]) if t["role"] == "assistant"),
                    **{arm: scored[arm][i]["reply"] for arm in arms}})
    return out


TIERS = (("proof of concept", 200, 500), ("production", 1000, 3000), ("enterprise", 5000, 50000))


def size_figure(points: list[tuple[int, dict]], baseline: dict, title: str = ""):
    """Test quality against training rows (log scale), with the article's three data tiers shaded."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.0))
    xs = [n for n, _ in points]
    for key, label, colour in (("partial_credit", "field accuracy", "tab:blue"),
                               ("schema_valid", "schema valid", "tab:orange")):
        ax.plot(xs, [e[key] for _, e in points], "o-", color=colour, label=label)
        ax.axhline(baseline[key], color=colour, linestyle=":", linewidth=1.2, label=f"{label}, best base prompt")
    for (name, lo, hi), shade in zip(TIERS, ("#e8f1fb", "#eaf6ea", "#fbf0e6")):
        ax.axvspan(lo, hi, color=shade, zorder=0)
        ax.annotate(f"article: {name}\n{lo:,}-{hi:,}", ((lo * hi) ** 0.5, 1.02), xycoords=("data", "axes fraction"),
                    ha="center", va="bottom", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlim(50, 60000)
    ax.set_ylim(0, 1.0)
    ax.set_xlabel("clean training rows (one epoch each, log scale)")
    ax.set_ylabel("share of test questions")
    ax.set_title(title, pad=24)
    ax.legend(fontsize=8, loc="center right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def go_further(plan: Plan, runs: dict[str, Run], evals: dict[str, dict], log=print) -> None:
    """The slow experiments, each on its own board: the noisy set for a full epoch, the larger
    clean sets, and full fine-tuning at the article's 2e-5 against lesson 2's 2.5e-4."""
    from labkit.live import LiveBoard

    groups = [("E6 go further: the noisy set for a whole epoch vs the clean arm",
               [plan.clean_arm, "noisy", "noisy-epoch"]),
              ("Data size go further: the larger clean sets", [f"clean-{n}" for n in plan.further_sizes]),
              ("Full fine-tuning: the article's 2e-5 vs lesson 2's 2.5e-4", ["full-2e-05", "lesson2-full"])]
    for title, arms in groups:
        board = LiveBoard(title=title, every_s=3)
        for arm in arms:
            runs[arm] = train_arm(arm, plan, board)
        board.finish()
        for arm in arms:
            evals[arm] = evaluate_run(runs[arm], plan)
            log(f"  {arm:<12} {runs[arm].summary['train_rows']} rows, {runs[arm].summary['steps']} steps: "
                f"field accuracy {evals[arm]['partial_credit']:.1%}, schema valid {evals[arm]['schema_valid']:.1%}, "
                f"best val loss {runs[arm].summary['best_eval_loss']:.3f}")


# ---------------------------------------------------------------------------------------------
# one table for every arm


def results_table(results: dict) -> list[dict]:
    """Arm, rows, steps, accuracy, fields right, schema valid, best val loss, stop epoch (and time)."""
    rows = []
    for name, e in results["evals"].items():
        if name.startswith("base-"):
            rows.append({"arm": name, "rows": 0, "steps": 0, "questions": e["n"], "accuracy": e["accuracy"],
                         "fields right": e["partial_credit"], "schema valid": e["schema_valid"],
                         "best val loss": None, "stop epoch": None, "train s": None})
    epochs = results.get("epochs", {})
    for arm, run in results["runs"].items():
        s = run.summary
        e = results["evals"].get(arm) or results.get("secondary", {}).get(arm) or {}
        rows.append({"arm": arm, "rows": s["train_rows"], "steps": s["steps"], "questions": e.get("n"),
                     "accuracy": e.get("accuracy"), "fields right": e.get("partial_credit"),
                     "schema valid": e.get("schema_valid"), "best val loss": s["best_eval_loss"],
                     "stop epoch": epochs.get(arm, {}).get("stop_epoch"), "train s": s["wall_seconds"]})
    return rows


# ---------------------------------------------------------------------------------------------
# the seed's claims, next to the paper's and ours


NO_SIGNAL = "no signal: the arms learned too little to compare (more steps needed)"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"


def _lr(x: float) -> str:
    return f"{x:.0e}".replace("e-0", "e-")


def lima_verdict(clean: dict, noisy: dict) -> str:
    """Held when the clean small set is ahead on fields right by at least 2 points."""
    if max(clean["partial_credit"], noisy["partial_credit"]) < 0.10:
        return NO_SIGNAL
    gap = clean["partial_credit"] - noisy["partial_credit"]
    return "held" if gap >= 0.02 else \
        f"did not hold: the noisy set is ahead by {-100 * gap:.0f} points" if gap <= -0.02 else \
        "partly: a tie within 2 points of fields right"


def epochs_verdict(best_epoch: float | None) -> str:
    """Held when the lowest validation loss falls in epochs 2-3."""
    if best_epoch is None:
        return NO_SIGNAL
    return "held" if 2 <= best_epoch <= 3 else f"did not hold: best at epoch {best_epoch:g}"


def lr_verdict(best_loss: dict[float, float], article_lr: float) -> str:
    """Held when the article's rate ends within 10% of the best rate's validation loss."""
    best_lr = min(best_loss, key=best_loss.get)
    ratio = best_loss[article_lr] / best_loss[best_lr]
    return "held" if ratio <= 1.10 else \
        f"did not hold at 135M in a short run: {_lr(best_lr)} did best; {_lr(article_lr)} ends {ratio:.1f}x higher"


def batch_verdict(b1: dict, b8: dict) -> str:
    """Held when batch 8 is both faster per example and smoother than batch 1."""
    faster = b8["seconds_per_example"] < b1["seconds_per_example"]
    smoother = b8["roughness"] < b1["roughness"]
    return "held" if faster and smoother else \
        "did not hold: batch 1 was faster and smoother" if not (faster or smoother) else \
        "partly: " + ("faster per example but not smoother" if faster else "smoother but not faster per example")


def split_verdict(stops: dict[str, dict]) -> str:
    """Held when every split's early stopping fires and their best epochs agree within one epoch."""
    points = list(stops.values())
    if not points or any(p["stop_epoch"] is None for p in points):
        return "did not hold: validation loss never turned up enough to stop"
    best = [p["best_epoch"] for p in points]
    return "held" if max(best) - min(best) <= 1 else \
        f"partly: both stop, but the best epochs differ ({', '.join(f'{b:g}' for b in best)})"


def size_verdict(small: dict, baseline: dict) -> str:
    """Held when a few hundred rows beat the best prompt by 10+ points of fields right and of schema validity."""
    return "held" if (small["partial_credit"] - baseline["partial_credit"] >= 0.10
                      and small["schema_valid"] - baseline["schema_valid"] >= 0.10) else "did not hold"


def claims(results: dict) -> list[Claim]:
    """Article figure | paper figure | our figure | verdict, each verdict computed from our numbers."""
    plan, evals, runs = results["plan"], results["evals"], results["runs"]
    rows = []
    clean, noisy = plan.clean_arm, "noisy"
    if clean in evals and noisy in evals:
        c, n = evals[clean], evals[noisy]
        steps = runs[clean].summary["steps"] if clean in runs else "?"
        rows.append(_claim(
            "a small clean set beats a large noisy one (LIMA)",
            "1,000 curated examples competed with models trained on 52,000",
            "LIMA: LLaMa 65B tuned on 1,000 curated examples; answers equal to or preferred over GPT-4's in 43% "
            "of cases, and preferred over Alpaca 65B (tuned on 52,000)",
            f"{plan.clean_rows} clean vs {len(noisy_set(plan).rows)} noisy rows, {steps} steps each: fields right "
            f"{_pct(c['partial_credit'])} vs {_pct(n['partial_credit'])}, schema-valid {_pct(c['schema_valid'])} vs "
            f"{_pct(n['schema_valid'])}",
            lima_verdict(c, n)))
    sizes = [a for a in plan.size_arms() if a in evals]
    base_keys = [k for k in evals if k.startswith("base-")]
    if sizes and base_keys:
        best_base = max((evals[k] for k in base_keys), key=lambda e: (e["schema_valid"], e["partial_credit"]))
        small = next((a for a in sizes if 200 <= runs[a].summary["train_rows"] <= 500), sizes[-1]) if runs else sizes[-1]
        rows.append(_claim(
            "200-500 examples show whether fine-tuning helps",
            "200-500 proof of concept; 1,000-3,000 production; 5,000-50,000 enterprise",
            "LIMA's ablations: sharply diminishing returns from more data of the same kind",
            "fields right / schema-valid: best base prompt " + f"{_pct(best_base['partial_credit'])} / "
            f"{_pct(best_base['schema_valid'])}; " + ", ".join(
                f"{runs[a].summary['train_rows']} rows {_pct(evals[a]['partial_credit'])} / {_pct(evals[a]['schema_valid'])}"
                for a in sizes),
            size_verdict(evals[small], best_base)))
    epochs = results.get("epochs", {})
    if epochs:
        first = epochs[plan.epoch_arms()[0]]
        rows.append(_claim(
            "2-3 epochs is the sweet spot; more overfits",
            "2-3 epochs for most tasks; more than 4 almost always overfits small sets",
            "-",
            f"{first['train_rows']} rows: validation loss lowest at epoch {first['best_epoch']:g}"
            + (f", early stopping (patience {plan.patience}) stops at epoch {first['stop_epoch']:g}"
               if first["stop_epoch"] is not None else ", never turned up")
            + f"; training loss {first['first_train_loss']:.2f} -> {first['last_train_loss']:.2f}",
            epochs_verdict(first["best_epoch"])))
        rows.append(_claim(
            "hold out 10-20% for validation and stop when it turns up",
            "10-20% of the data held out; stop when validation loss rises while training loss falls",
            "LIMA kept a separate 50-example development set beside its 300 test prompts",
            "; ".join(f"{v['val_rows']} of {v['train_rows'] + v['val_rows']} rows held out: best epoch "
                      f"{v['best_epoch']:g}, stop at {'-' if v['stop_epoch'] is None else format(v['stop_epoch'], 'g')}"
                      for v in epochs.values()),
            split_verdict(epochs)))
    lr_runs = {lr: runs[lr_arm(lr, plan)] for lr in plan.learning_rates if lr_arm(lr, plan) in runs}
    article = SEED_LEARNING_RATES["lora"]
    if article in lr_runs and len(lr_runs) >= 2:
        # a run that blew up to nan/inf has no usable best loss: count it as infinitely bad
        best = {lr: (r.summary["best_eval_loss"] if r.summary["best_eval_loss"] == r.summary["best_eval_loss"]
                     else math.inf) for lr, r in lr_runs.items()}
        rows.append(_claim(
            "learning-rate baselines (LoRA 5e-5)",
            "full fine-tuning 2e-5, LoRA 5e-5, QLoRA 1e-5 to 2e-5",
            "QLoRA (Guanaco): 2e-4 for 7B, 1e-4 for 65B, effective batch 16, 1,875 steps",
            "best val loss: " + ", ".join(f"{_lr(lr)} {best[lr]:.3f}" for lr in sorted(best)),
            lr_verdict(best, article)))
    batch = results.get("batch", {})
    if len(batch) == 2 and all(v["seconds_per_example"] and v["roughness"] is not None for v in batch.values()):
        b8, b1 = sorted(batch.values(), key=lambda v: -v["batch"])
        rows.append(_claim(
            "batch 4-8 is the usual choice",
            "4-8 typical; 1-2 when memory is tight; 16-32 may need a different rate",
            "QLoRA (Guanaco): batch 4 x 4 accumulation steps = 16",
            f"batch {b1['batch']} vs {b8['batch']} over the same {b8['examples']} examples: "
            f"{b1['seconds_per_example']:.2f} vs {b8['seconds_per_example']:.2f} s per example, roughness "
            f"{b1['roughness']:.3f} vs {b8['roughness']:.3f}, best val loss {b1['best_val_loss']:.3f} vs "
            f"{b8['best_val_loss']:.3f}",
            batch_verdict(b1, b8)))
    return rows


def _claim(claim: str, article: str, paper: str, ours: str, verdict: str) -> Claim:
    held = True if verdict == "held" else False if verdict.startswith("did not hold") else None
    return Claim(claim, article, paper, ours, verdict, held)
