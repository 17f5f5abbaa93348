"""Lesson 3, the training recipe: baseline first, LIMA (E6), data size, epochs and early stopping
(E5), learning rate and batch size, each measured on SmolLM2-135M with LoRA r16.

Every arm fine-tunes the same model on the Northwind formulary's JSON task and differs from its
comparison arm in one thing (the data's cleanliness, its size, the learning rate, the batch size,
the validation split). Runs are cached by config and data hash (``runs/lesson3-<arm>-<hash>/``)
and evaluations beside them, so a second pass, or ``labkit run lesson3`` beforehand, costs nothing.
This module holds the plan, the arms, training and evaluation; :mod:`labkit.lessons.lesson3_claims`
holds the tables, summaries and claims, :mod:`labkit.lessons.lesson3_read` the readings (the
notebook's prose, computed from the numbers).

Budget (the full profile must run cold in about 15 minutes on two cores), so arms are shared
wherever two experiments need the same thing:

* ``clean-256`` (256 clean rows, one epoch, 32 steps of 8, LoRA at 1e-3) is LIMA's small clean
  set and the 256 point of the data-size curve;
* ``clean-96`` (96 rows, 12 steps) is the 96 point of the data-size curve, the 1e-3 arm of the
  learning-rate sweep (all four rates train on those 96 rows) and the batch-8 arm of the
  batch-size comparison (batch 1 sees the same 96 rows);
* the 480-row point of the data-size curve is lesson 2's LoRA r16 run, rebuilt here with the
  identical config and rows, so a course that ran lesson 2 reuses it (and its evaluation);
* the base model's scores are lesson 2's cached baselines (same questions, same prompts, same key);
* the secondary arms (learning rate, batch size) are judged on validation loss and on 30 of the 90
  test questions; the epoch arms on validation loss alone.

Cold cost of the default full plan, measured (``labkit run lesson3 --profile full`` with lesson 2's
r16 run and baselines cached, on a quiet 2-core host with AVX2 only, its fp32 matmul peak measured
at 158-177 GFLOP/s that day): 1,012 s with batch 1 in the plan and four validation passes per
short arm. Training was most of the wait (851 s for eight arms, 256 s of it validation passes: a
12-step arm spent half its time on four passes over 48 rows); the answers took 155 s. So batch 1
(121 s) moved to go further, which still measured 932 s, and the short arms now validate twice
(mid-run and end): **848 s (14.1 minutes)**, the same best validation losses and answers as with
four passes, 682 s of it training seven arms and 142 s answering. On the same host's slow days (a
third of that matmul speed) expect about twice as long.

The slowest experiments are "go further" (``Plan.for_profile(go_further=True)``): batch 1 against
batch 8 over the same 96 rows, the noisy set at its natural length (one full epoch, 165 steps), the 1,000-row point of the data-size curve, the
epoch experiment again with 10% held out instead of 20%, and full fine-tuning at the article's
2e-5 against lesson 2's full fine-tune at 2.5e-4.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from dataclasses import dataclass, replace

from labkit import paths
from labkit.config import SEED_LEARNING_RATES, TrainConfig
from labkit.errors import UsageError
from labkit.lessons.lesson3_claims import (  # noqa: F401 - claims and the tables, under the lesson's name too
    NO_SIGNAL, TIERS, batch_summary, batch_verdict, best_base, claims, epochs_summary, epochs_verdict, lima_verdict,
    lr_verdict, quality_row, replies, results_table, size_figure, size_verdict, split_verdict, subset)
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


LESSON2 = {"smoke": Lesson2Arm(32, 4, 3, 4), "full": Lesson2Arm(480, 48, 90, None)}
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
        lesson2_point: put lesson 2's r16 run on the data-size curve (reused when lesson 2 has run).
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
    lesson2_point: bool = True

    @classmethod
    def for_profile(cls, profile: str | None = None, go_further: bool = False) -> "Plan":
        profile = profile or paths.profile()
        if profile == "smoke":
            # a check that every cell runs, within CI's 3 minutes: few rows and questions, and lesson 2's
            # arm only in the full profile (its smoke run would be the slowest arm here)
            return cls("smoke", clean_rows=16, noisy_source_rows=64, sizes=(8, 16), further_sizes=(32,),
                       val_rows=6, test_rows=6, secondary_test_rows=3, learning_rates=(LORA_LR, 1e-2), sweep_rows=8,
                       pool_rows=20, val_fractions=(0.2,), further_val_fractions=(0.1,), max_epochs=3, patience=1,
                       prompts=("dataset",), go_further=go_further, lesson2_point=False)
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
        arms = [(n, f"clean-{n}") for n in sizes] + ([(self.lesson2.train_rows, "lesson2-r16")] if self.lesson2_point else [])
        return [arm for _, arm in sorted(arms)]

    def lr_arms(self) -> list[str]:
        return [lr_arm(lr, self) for lr in self.learning_rates]

    def epoch_arms(self) -> list[str]:
        fractions = self.val_fractions + (self.further_val_fractions if self.go_further else ())
        return [f"epochs-val{round(100 * f)}" for f in fractions]

    def describe(self) -> str:
        steps = math.ceil(self.clean_rows / self.batch_size)
        extra = (f"; go further: batch 1 vs {self.batch_size}, the noisy set for a full epoch, "
                 + ", ".join(f"{n} clean rows" for n in self.further_sizes)
                 + ", " + " and ".join(f"{f:.0%}" for f in self.further_val_fractions) + " held out, full fine-tuning "
                 "at 2e-5") if self.go_further else " (go-further experiments off)"
        return (f"{self.profile} profile: LIMA {self.clean_rows} clean rows vs {self.noisy_source_rows} rows with planted "
                f"noise, {steps} steps of {self.batch_size} each; data sizes "
                f"{', '.join(str(n) for n in sorted([*self.sizes] + [self.lesson2.train_rows] * self.lesson2_point))} at one epoch; "
                f"{len(self.learning_rates)} learning rates on {self.sweep_rows} rows; "
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


def _eval_every(steps: int, evals: int = 2) -> int:
    """An evaluation interval that divides the run into about ``evals`` parts, ending on the last step.

    Two by default (mid-run and the end): a validation pass over 48 rows costs about as much as two
    and a half training steps, so four passes were half of a 12-step arm's time; the training curve,
    logged every step, is where these arms' shapes show."""
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
    names += [a for a in plan.lr_arms() if a not in names]
    names += replace(plan, go_further=further).epoch_arms()
    if further:
        names += ["batch-1", "noisy-epoch", "lesson2-full", "full-2e-05"]
    return list(dict.fromkeys(names))


def train_arm(arm: str, plan: Plan, board=None, label: str | None = None, retrain: bool = False) -> Run:
    """Train one arm in this process (or reuse its finished run), drawing on ``board``."""
    # (not "from labkit.sft import train": once labkit.sft.train is imported, that name is the module)
    from labkit.sft.data import DuplicateRowsWarning
    from labkit.sft.train import train

    rows, val = arm_data(arm, plan)
    with warnings.catch_warnings():
        if arm in ("noisy", "noisy-epoch"):
            # the duplicates are planted on purpose; the linter's found/planted table shows them
            warnings.simplefilter("ignore", DuplicateRowsWarning)
        return train(arm_config(arm, plan), rows, val, board=board, label=label or arm, retrain=retrain)


def train_batch_pair(plan: Plan, runs: dict[str, Run]) -> None:
    """Batch 1 against batch 8 over the same rows (go further), both drawn on one board by examples seen."""
    from labkit.evaluate.curves import Rescaled
    from labkit.live import LiveBoard

    board = LiveBoard(title=f"Batch size: 1 vs {plan.batch_size} over the same {plan.sweep_rows} examples",
                      xlabel="examples seen", every_s=3)
    runs[plan.sweep_arm] = train_arm(plan.sweep_arm, plan, Rescaled(board, plan.batch_size), label=f"batch {plan.batch_size}")
    runs["batch-1"] = train_arm("batch-1", plan, Rescaled(board, 1), label="batch 1")
    board.finish()


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


def secondary_eval(arm: str, runs: dict[str, Run], evals: dict[str, dict], plan: Plan) -> dict:
    """An arm's score on the secondary questions, read from its full evaluation where it has one."""
    if arm in evals:
        part = subset(evals[arm], test_rows(plan, secondary=True))
        if part is not None:
            return part
    return evaluate_run(runs[arm], plan, secondary=True)


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


def lint_noisy(plan: Plan) -> dict:
    """Lint the noisy set; found / planted per kind of noise, and one flagged example per quality."""
    from labkit.data.audit import audit_noise

    return audit_noise(noisy_set(plan), _train_rows()[: plan.noisy_source_rows])


# ---------------------------------------------------------------------------------------------
# the whole lesson, headless


def evaluated_arms(plan: Plan) -> list[str]:
    """Arms scored on every test question: LIMA's and the data-size curve's."""
    arms = [plan.clean_arm, "noisy"] + plan.size_arms() + (["noisy-epoch", "lesson2-full", "full-2e-05"]
                                                          if plan.go_further else [])
    return list(dict.fromkeys(arms))


def secondary_arms(plan: Plan) -> list[str]:
    return list(dict.fromkeys(plan.lr_arms() + (["batch-1"] if plan.go_further else [])))


def run(plan: Plan, board=None, log=print) -> dict:
    """Every arm trained (or reused) and evaluated, the baselines, and the linter's audit.

    Returns ``{"plan", "runs": {arm: Run}, "evals": {arm or "base-<prompt>": metrics},
    "secondary": {arm: metrics on the secondary questions}, "lint", "epochs", "batch"}``, the
    shape every reading in :mod:`labkit.lessons.lesson3_read` takes.
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
            "batch": batch_summary({a: runs[a] for a in (plan.sweep_arm, "batch-1")}, plan) if "batch-1" in runs else {}}


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
