"""Lesson 3's plumbing: plans, arms that differ in one thing, equal compute, and verdicts from numbers."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from labkit.config import SEED_LEARNING_RATES
from labkit.lessons import lesson3 as L
from labkit.sft.train import planned_steps

FULL, SMOKE = L.Plan.for_profile("full"), L.Plan.for_profile("smoke")
# fields that make two arms "the same experiment" apart from what an arm is about
SAME = ("method", "rank", "alpha", "epochs", "seed", "warmup_ratio", "weight_decay", "precision", "target_modules")


def _differences(a, b) -> set[str]:
    da, db = a.to_dict(), b.to_dict()
    return {k for k in da if da[k] != db[k]} - {"run_name"}


def test_plans():
    assert SMOKE.clean_rows < FULL.clean_rows and SMOKE.test_rows < FULL.test_rows
    assert not FULL.go_further and L.Plan.for_profile("full", go_further=True).go_further
    assert FULL.sizes[0] < 200 <= FULL.clean_rows <= 500  # one point below the article's first tier, one in it
    assert set(FULL.learning_rates) == {5e-5, 2e-4, 1e-3, 1e-2} and SEED_LEARNING_RATES["lora"] == 5e-5
    assert FULL.val_fractions == (0.2,) and FULL.further_val_fractions == (0.1,)
    assert FULL.sweep_rows in FULL.sizes  # the sweep's 1e-3 / batch-8 arm is a point of the data-size curve
    with pytest.raises(ValueError, match="profile='huge'"):
        L.Plan.for_profile("huge")
    # go-further arms are off by default and on with the flag
    slow = {"noisy-epoch", "full-2e-05", "clean-1000", "epochs-val10"}
    assert not slow & set(L.arm_names(FULL))
    assert slow <= set(L.arm_names(FULL, go_further=True))


@pytest.mark.parametrize("plan", [SMOKE, FULL], ids=["smoke", "full"])
def test_lima_arms_have_equal_compute(plan):
    clean, noisy = L.arm_config(plan.clean_arm, plan), L.arm_config("noisy", plan)
    clean_rows, _ = L.arm_data(plan.clean_arm, plan)
    noisy_rows, _ = L.arm_data("noisy", plan)
    assert len(noisy_rows) > 3 * len(clean_rows)  # small vs large
    assert planned_steps(noisy, len(noisy_rows)) == planned_steps(clean, len(clean_rows))
    assert _differences(clean, noisy) <= {"max_steps"}
    assert L.arm_data("noisy", plan)[1] == L.arm_data(plan.clean_arm, plan)[1]  # the same clean validation rows
    # the go-further arm trains the noisy set for its own full epoch instead
    natural = L.arm_config("noisy-epoch", plan)
    assert planned_steps(natural, len(noisy_rows)) == -(-len(noisy_rows) // plan.batch_size)


def test_data_size_arms_share_epochs_and_lesson2s_run():
    plan = L.Plan.for_profile("full", go_further=True)
    arms = plan.size_arms()
    assert arms == ["clean-96", "clean-256", "lesson2-r16", "clean-1000"]
    configs = [L.arm_config(a, plan) for a in arms]
    assert {c.epochs for c in configs} == {1} and {c.learning_rate for c in configs} == {1e-3}
    assert len({tuple(getattr(c, k) for k in SAME) for c in configs}) == 1
    rows = [len(L.arm_data(a, plan)[0]) for a in arms]
    assert rows == sorted(rows) == [96, 256, 480, 1000]
    # the clean sets are nested: a bigger set holds the smaller one
    small, big = (L.arm_data(a, plan)[0] for a in ("clean-96", "clean-256"))
    assert [r["id"] for r in big[:96]] == [r["id"] for r in small]


@pytest.mark.parametrize("profile", ["smoke", "full"])
def test_lesson2_arms_are_rebuilt_identically(profile):
    from labkit.lessons import lesson2 as L2
    from labkit.sft.train import run_dir

    plan2, plan3 = L2.Plan.for_profile(profile), L.Plan.for_profile(profile)
    train2, val2, test2 = L2.data(plan2)
    for arm2, arm3 in (("r16", "lesson2-r16"), ("full", "lesson2-full")):
        rows3, val3 = L.arm_data(arm3, plan3)
        assert L.arm_config(arm3, plan3) == L2.arm_config(arm2, plan2)
        assert run_dir(L2.arm_config(arm2, plan2), train2, val2) == run_dir(L.arm_config(arm3, plan3), rows3, val3)
    if profile == "full":  # same questions, so lesson 2's evaluations and base-model baselines are reused
        assert [r["id"] for r in L.test_rows(plan3)] == [r["id"] for r in test2]
    only_rate = L.arm_config("full-2e-05", plan3)
    assert _differences(only_rate, L.arm_config("lesson2-full", plan3)) == {"learning_rate"}
    assert only_rate.learning_rate == SEED_LEARNING_RATES["full"]


def test_learning_rate_and_batch_arms_differ_in_one_thing():
    clean = L.arm_config(FULL.sweep_arm, FULL)
    assert L.lr_arm(1e-3, FULL) == FULL.sweep_arm  # lesson 2's rate is the shared data-size arm
    for arm in FULL.lr_arms():
        if arm != FULL.sweep_arm:
            assert _differences(L.arm_config(arm, FULL), clean) == {"learning_rate"}
            assert L.arm_data(arm, FULL) == L.arm_data(FULL.sweep_arm, FULL)
    one = L.arm_config("batch-1", FULL)
    assert _differences(one, clean) == {"batch_size", "eval_every"}
    rows = len(L.arm_data("batch-1", FULL)[0])
    # the same examples: batch 8 x 32 steps = batch 1 x 256 steps, and evaluations after the same examples
    assert planned_steps(one, rows) * 1 == planned_steps(clean, rows) * 8
    assert one.eval_every * one.batch_size == clean.eval_every * clean.batch_size


def test_epoch_arms_evaluate_every_epoch_and_stop_early():
    from labkit.sft.train import split_eval

    plan = L.Plan.for_profile("full", go_further=True)
    assert plan.epoch_arms() == ["epochs-val20", "epochs-val10"]
    for arm, fraction in zip(plan.epoch_arms(), (0.2, 0.1)):
        config = L.arm_config(arm, plan)
        rows, val = L.arm_data(arm, plan)
        assert val is None and config.eval_fraction == fraction  # the split comes out of the pool itself
        assert config.eval_every == L.steps_per_epoch(arm, plan)
        assert config.early_stopping_patience == plan.patience and config.epochs == plan.max_epochs
        train, held = split_eval(rows, fraction, config.seed)
        assert len(held) == round(len(rows) * fraction)
        assert L.steps_per_epoch(arm, plan) == -(-len(train) // config.batch_size)
    a, b = (L.arm_config(arm, plan) for arm in plan.epoch_arms())
    assert _differences(a, b) == {"eval_fraction", "eval_every"}


def test_eval_interval_ends_on_the_last_step():
    for steps in (12, 32, 60, 125, 165):
        every = L._eval_every(steps)
        assert steps % every == 0 and 2 <= steps // every <= 6


def test_unknown_arm():
    with pytest.raises(ValueError, match="arm='r16'"):
        L.arm_config("r16", FULL)


# ---------------------------------------------------------------------------------------------
# verdicts, without training


def _ev(fields, schema=0.9, accuracy=None, n=90):
    return {"partial_credit": fields, "schema_valid": schema, "json_valid": 1.0, "n": n,
            "accuracy": fields / 2 if accuracy is None else accuracy}


def _run(rows, steps, best, batch=8, history=()):
    config = SimpleNamespace(batch_size=batch)
    return SimpleNamespace(summary={"train_rows": rows, "steps": steps, "best_eval_loss": best,
                                    "wall_seconds": 1.0, "eval_rows": 8, "stopped_early": False},
                           config=config, history=list(history), train_loss=[], eval_loss=[])


def test_lima_verdict():
    assert L.lima_verdict(_ev(0.50), _ev(0.40)) == "held"
    assert L.lima_verdict(_ev(0.40), _ev(0.41)).startswith("partly")
    assert L.lima_verdict(_ev(0.30), _ev(0.40)) == "did not hold: the noisy set is ahead by 10 points"
    assert L.lima_verdict(_ev(0.05), _ev(0.02)) == L.NO_SIGNAL


def test_epoch_split_and_size_verdicts():
    assert L.epochs_verdict(2) == "held" and L.epochs_verdict(3.0) == "held"
    assert L.epochs_verdict(5) == "did not hold: best at epoch 5"
    stop = {"a": {"best_epoch": 3, "stop_epoch": 5}, "b": {"best_epoch": 4, "stop_epoch": 6}}
    assert L.split_verdict(stop) == "held"
    assert L.split_verdict({**stop, "b": {"best_epoch": 6, "stop_epoch": 8}}).startswith("partly")
    assert L.split_verdict({**stop, "b": {"best_epoch": 9, "stop_epoch": None}}).startswith("did not hold")
    assert L.size_verdict(_ev(0.4, schema=0.9), _ev(0.2, schema=0.5)) == "held"
    assert L.size_verdict(_ev(0.25, schema=0.9), _ev(0.2, schema=0.5)) == "did not hold"


def test_learning_rate_verdict():
    assert L.lr_verdict({5e-5: 0.30, 1e-3: 0.29}, 5e-5) == "held"
    verdict = L.lr_verdict({5e-5: 1.2, 2e-4: 0.5, 1e-3: 0.3, 1e-2: 2.0}, 5e-5)
    assert verdict == "did not hold at 135M in a short run: 1e-3 did best; 5e-5 ends 4.0x higher"


def test_batch_verdict():
    b8 = {"seconds_per_example": 0.3, "roughness": 0.05}
    b1 = {"seconds_per_example": 0.6, "roughness": 0.20}
    assert L.batch_verdict(b1, b8) == "held"
    assert L.batch_verdict(b1, {**b8, "roughness": 0.3}) == "partly: faster per example but not smoother"
    assert L.batch_verdict(b8, b1).startswith("did not hold")


def test_claims_table_from_numbers():
    plan = FULL
    runs = {plan.clean_arm: _run(256, 32, 0.30), "noisy": _run(1320, 32, 0.45), "clean-96": _run(96, 12, 0.6),
            "lesson2-r16": _run(480, 60, 0.25), "lr-5e-05": _run(256, 32, 1.5), "lr-2e-04": _run(256, 32, 0.5),
            "lr-1e-02": _run(256, 32, float("nan"))}
    evals = {"base-careful": _ev(0.0, schema=0.0), "base-few-shot": _ev(0.2, schema=0.45),
             plan.clean_arm: _ev(0.45), "noisy": _ev(0.35, schema=0.7), "clean-96": _ev(0.2, schema=0.5),
             "lesson2-r16": _ev(0.5)}
    epochs = {"epochs-val20": {"train_rows": 64, "val_rows": 16, "best_epoch": 3, "stop_epoch": 5,
                               "first_train_loss": 2.0, "last_train_loss": 0.1},
              "epochs-val10": {"train_rows": 72, "val_rows": 8, "best_epoch": 3, "stop_epoch": 5,
                               "first_train_loss": 2.0, "last_train_loss": 0.1}}
    batch = {plan.sweep_arm: {"batch": 8, "examples": 256, "seconds_per_example": 0.3, "roughness": 0.05,
                              "best_val_loss": 0.3},
             "batch-1": {"batch": 1, "examples": 256, "seconds_per_example": 0.7, "roughness": 0.3,
                         "best_val_loss": 0.35}}
    rows = {c.claim: c for c in L.claims({"plan": plan, "runs": runs, "evals": evals, "epochs": epochs,
                                          "batch": batch})}
    assert len(rows) == 6
    lima = rows["a small clean set beats a large noisy one (LIMA)"]
    assert lima.held is True and "256 clean vs 1320 noisy rows, 32 steps each" in lima.ours
    assert rows["200-500 examples show whether fine-tuning helps"].held is True
    assert rows["2-3 epochs is the sweet spot; more overfits"].held is True
    assert rows["hold out 10-20% for validation and stop when it turns up"].held is True
    lr = rows["learning-rate baselines (LoRA 5e-5)"]
    assert lr.held is False and "1e-2 inf" in lr.ours  # a blown-up run counts as infinitely bad
    assert rows["batch 4-8 is the usual choice"].held is True
    table = L.results_table({"plan": plan, "runs": runs, "evals": evals, "epochs": epochs})
    assert [r["arm"] for r in table][:2] == ["base-careful", "base-few-shot"]
    assert {"arm", "rows", "steps", "accuracy", "fields right", "schema valid", "best val loss", "stop epoch"} <= set(table[0])
