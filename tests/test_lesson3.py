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
    slow = {"batch-1", "noisy-epoch", "full-2e-05", "clean-1000", "epochs-val10"}
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
    from labkit.lessons.lesson3_claims import tier_verdict
    base = _ev(0.11, schema=0.47)
    assert tier_verdict([(256, _ev(0.14, schema=0.56)), (480, _ev(0.22, schema=0.92))], base) == \
        "partly: 480 rows beat the best prompt by 10+ points on both, 256 did not"
    assert tier_verdict([(256, _ev(0.25, schema=0.9)), (480, _ev(0.3, schema=0.9))], base) == "held"
    assert tier_verdict([(256, _ev(0.12, schema=0.5))], base) == "did not hold"


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


def test_run_folders_are_pinned():
    """Refactors must not change what the arms train: lesson 2's cached r16 run and lesson 3's own folders."""
    from labkit.sft.train import run_dir, split_eval

    expected = {"lesson2-r16": "lesson2-r16-d0ddf1dd9b", "lesson2-full": "lesson2-full-d3c682b262",
                "clean-256": "lesson3-clean-256-f363a0a84b", "noisy": "lesson3-noisy-0c7976dd95",
                "clean-96": "lesson3-clean-96-19d3cb6e9b", "batch-1": "lesson3-batch-1-2715a11868",
                "epochs-val20": "lesson3-epochs-val20-e9ab8ee271"}
    plan = L.Plan.for_profile("full", go_further=True)
    for arm, folder in expected.items():
        config = L.arm_config(arm, plan)
        rows, val = L.arm_data(arm, plan)
        if val is None:
            rows, val = split_eval(rows, config.eval_fraction, config.seed)
        assert run_dir(config, rows, val).name == folder, arm


def test_noisy_arm_hides_the_planted_duplicates_warning(monkeypatch):
    import warnings

    import labkit.sft.train as T
    from labkit.sft.data import DuplicateRowsWarning

    def fake_train(config, rows, val, **kw):
        warnings.warn("rows repeat", DuplicateRowsWarning)
        return config.run_name

    monkeypatch.setattr(T, "train", fake_train)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert L.train_arm("noisy", SMOKE) == "lesson3-noisy"
        assert not caught
        L.train_arm(SMOKE.clean_arm, SMOKE)  # a clean arm would still warn: the filter is only for the planted set
        assert [w.category for w in caught] == [DuplicateRowsWarning]


def test_epoch_and_batch_summaries_from_synthetic_histories():
    history = [(8, 1.0), (16, 0.8), (24, 0.7), (32, 0.75), (40, 0.9)]  # best at epoch 3, patience 2 -> stop 5
    run = SimpleNamespace(summary={"train_rows": 64, "eval_rows": 16, "steps": 40, "stopped_early": True,
                                   "best_eval_loss": 0.7}, config=SimpleNamespace(eval_every=8, batch_size=8),
                          eval_loss=history, train_loss=[(1, 2.0), (40, 0.1)])
    e = L.epochs_summary({"epochs-val20": run}, FULL)["epochs-val20"]
    assert (e["best_epoch"], e["stop_epoch"], e["trainer_stopped_at"], e["steps_per_epoch"]) == (3, 5, 5, 8)
    wobbly = [(s, 1.0 + (0.3 if s % 2 else -0.3)) for s in range(1, 97)]
    b1 = SimpleNamespace(summary={"steps": 96, "best_eval_loss": 0.5}, config=SimpleNamespace(batch_size=1),
                         history=[{"eval_runtime": 10.0}, {"train_runtime": 58.0}], train_loss=wobbly)
    b = L.batch_summary({"batch-1": b1}, FULL)["batch-1"]
    assert b["examples"] == 96 and b["seconds_per_example"] == pytest.approx(0.5) and b["roughness"] > 0.2


# ---------------------------------------------------------------------------------------------
# readings: hand-made results, the wording follows the numbers

from labkit.lessons import lesson3_read as R  # noqa: E402


def _scored(fields, json_ok=None, schema=None):
    n = len(fields)
    json_ok = [True] * n if json_ok is None else json_ok
    schema = json_ok if schema is None else schema
    scores = [{"id": f"q{i}", "reply": "{}", "field_score": f, "correct": f == 1, "json_valid": j, "schema_valid": s}
              for i, (f, j, s) in enumerate(zip(fields, json_ok, schema))]
    return {"partial_credit": sum(fields) / n, "schema_valid": sum(schema) / n, "accuracy": sum(f == 1 for f in fields) / n,
            "json_valid": sum(json_ok) / n, "n": n, "scores": scores}


def _lima_results(clean, noisy, lint=None):
    runs = {FULL.clean_arm: _run(256, 32, 0.3), "noisy": _run(1320, 32, 0.4)}
    evals = {"base-few-shot": _scored([0.1] * 40, [False] * 40), FULL.clean_arm: clean, "noisy": noisy}
    return {"plan": FULL, "runs": runs, "evals": evals, **({"lint": lint} if lint else {})}


def test_read_lima_follows_the_numbers():
    good, bad = _scored([1.0, 0.75] * 20), _scored([0.5, 0.25] * 20, [True, False] * 20)
    text = R.read_lima(_lima_results(good, bad))
    assert "**The small clean set wins.**" in text and "a real gap" in text and "same 32 steps" in text
    assert "format damage came out" in text and "20 of the noisy arm's 40 replies" in text
    assert "+77.5 points against it, the noisy arm +27.5" in text
    flipped = R.read_lima(_lima_results(bad, good))
    assert "**The large noisy set wins here.**" in flipped and "Unexpectedly, the clean arm" in flipped
    tie = R.read_lima(_lima_results(_scored([0.5, 0.6] * 20), _scored([0.6, 0.5] * 20)))
    assert "**A tie on fields right.**" in tie and "within noise" in tie and "did not show" in tie
    lint = {"noise": SimpleNamespace(labels=[None] * 60 + ["wrong"] * 40),
            "found": [{"kind": "duplicate", "found": 9, "planted": 10}]}
    text = R.read_lima(_lima_results(good, bad, lint))
    assert "Only 60% of the noisy set's 100 rows are undamaged" in text and "it sees 100 of them, about 60" in text
    assert "The linter found 9 of the 10 planted duplicates" in text and "1,000 curated" in text


def test_read_size_follows_the_numbers():
    runs = {"clean-96": _run(96, 12, 0.6), "clean-256": _run(256, 32, 0.4), "lesson2-r16": _run(480, 60, 0.3)}

    def results(f96, f256, f480, base=0.1):
        evals = {"base-careful": _scored([base] * 40, [False] * 40), "clean-96": _scored([f96] * 20 + [f96 - 0.1] * 20),
                 "clean-256": _scored([f256] * 20 + [f256 - 0.1] * 20),
                 "lesson2-r16": _scored([f480] * 20 + [f480 - 0.1] * 20)}
        return {"plan": FULL, "runs": runs, "evals": evals}

    rising = R.read_size(results(0.3, 0.6, 0.9))
    assert "**The curve rises at every step.**" in rising and "the answer is yes, fine-tuning clearly helps" in rising
    assert "96 rows (below the article's proof of concept tier, which starts at 200)" in rising
    assert "256 rows (inside the article's proof of concept tier)" in rising and "(12, 32, 60)" in rising
    flat = R.read_size(results(0.5, 0.5, 0.5, base=0.5))
    assert "**The curve never moves beyond noise.**" in flat and "not clearly" in flat
    assert "falls somewhere" in R.read_size(results(0.9, 0.3, 0.9))


def _epochs(best, stop, last_val=0.9, val_rows=16, trainer=None):
    return {"train_rows": 80 - val_rows, "val_rows": val_rows, "steps": 40, "steps_per_epoch": 8, "best_epoch": best,
            "best_val_loss": 0.7, "stop_epoch": stop, "trainer_stopped_at": trainer, "last_val_loss": last_val,
            "first_train_loss": 2.0, "last_train_loss": 0.1}


def test_read_epochs_follows_the_numbers():
    text = R.read_epochs({"plan": FULL, "epochs": {"epochs-val20": _epochs(3, 5, trainer=5)}})
    assert "cut at epoch 5 and kept epoch 3's weights" in text and "risen 29% above its best" in text
    assert "the two curves parted" in text and "inside the article's 2-3 epochs" in text and "same epoch" in text
    never = R.read_epochs({"plan": FULL, "epochs": {"epochs-val20": _epochs(10, None, last_val=0.7)}})
    assert "never went 2 epochs without" in never and "ran all 10 epochs" in never and "later than the article's 2-3 epochs" in never and "8 steps of 8" in never
    early = R.read_epochs({"plan": FULL, "epochs": {"epochs-val20": _epochs(1, 3, last_val=0.71)}})
    assert "earlier than the article's" in early and "flattened rather than climbed" in early
    two = {"epochs-val20": _epochs(3, 5), "epochs-val10": _epochs(4, 6, val_rows=8)}
    assert "moves the best epoch from 3 to 4" in R.read_epochs({"plan": FULL, "epochs": two})
    two["epochs-val10"] = _epochs(3, 5, val_rows=8)
    assert "the same best epoch and the same stop" in R.read_epochs({"plan": FULL, "epochs": two})


def _lr_run(evals, first_train=2.0):
    return SimpleNamespace(summary={"train_rows": 96, "steps": 12, "best_eval_loss": min(evals),
                                    "wall_seconds": 1.0},
                           eval_loss=[(3 * (i + 1), v) for i, v in enumerate(evals)], train_loss=[(1, first_train)])


def test_read_lr_follows_the_numbers():
    nan = float("nan")
    runs = {"lr-5e-05": _lr_run([1.9, 1.85, 1.8, 1.8]), "lr-2e-04": _lr_run([1.5, 1.0, 0.8, 0.7]),
            "clean-96": _lr_run([0.8, 0.5, 0.4, 0.35]), "lr-1e-02": _lr_run([0.9, nan, nan, nan])}
    runs["lr-1e-02"].summary["best_eval_loss"] = nan
    text = R.read_lr({"plan": FULL, "runs": runs, "secondary": {"clean-96": _scored([0.5] * 30)}})
    assert "**1e-3 did best.**" in text and "5.1x the winner's" in text
    assert "- **5e-5**: best validation loss 1.800, moved little" in text and "blew up" in text
    assert "50% fields right, 100% schema-valid on 30 questions" in text and "Why a small model" in text
    assert "6.0e-04" in text and "625 times more" in text
    runs["clean-96"] = _lr_run([0.8, 0.5, 0.4, 0.6])
    assert "overshot: validation loss bottomed out at step 9 and ended 50% higher" in R.read_lr(
        {"plan": FULL, "runs": runs})
    runs["clean-96"] = _lr_run([2.1, 2.05], first_train=2.0)
    assert "did not move" in R.read_lr({"plan": FULL, "runs": runs})
    tie = {"lr-5e-05": _lr_run([0.5, 0.3]), "clean-96": _lr_run([0.5, 0.301])}
    assert "**No rate stands out:**" in R.read_lr({"plan": FULL, "runs": tie})
    runs = {"lr-5e-05": _lr_run([0.5, 0.3]), "clean-96": _lr_run([0.9, 0.8], first_train=1.0)}
    article_best = R.read_lr({"plan": FULL, "runs": runs})
    assert "**5e-5 did best**, the article's LoRA baseline" in article_best and "no higher than" in article_best


def _batch(b, spe, rough, best, updates):
    return {"batch": b, "updates": updates, "examples": 96, "train_seconds": spe * 96, "seconds_per_example": spe,
            "roughness": rough, "best_val_loss": best}


def test_read_batch_follows_the_numbers():
    usual = {"clean-96": _batch(8, 0.3, 0.05, 0.40, 12), "batch-1": _batch(1, 0.9, 0.20, 0.30, 96)}
    text = R.read_batch({"plan": FULL, "batch": usual})
    assert "3.0x slower per example" in text and "visibly noisier" in text
    assert "a lower validation loss at batch 1" in text and "96 updates instead of 12" in text
    odd = {"clean-96": _batch(8, 0.3, 0.20, 0.30, 12), "batch-1": _batch(1, 0.29, 0.05, 0.31, 96)}
    text = R.read_batch({"plan": FULL, "batch": odd})
    assert "about as fast per example" in text and "unexpectedly, the smoother" in text and "about the same place" in text
    # off by default: the reading says how to run it, the claims table says it was not run (and no "why")
    assert "set `GO_FURTHER = True`" in R.read_batch({"plan": FULL, "batch": {}})
    row = [c for c in L.claims({"plan": FULL, "runs": {}, "evals": {}}) if c.claim == "batch 4-8 is the usual choice"]
    assert row and row[0].held is None and row[0].verdict == "not run (go further)"
    assert "batch 4-8" not in R.read_claims({"plan": FULL, "runs": {}, "evals": {}})


def test_read_claims_explains_only_what_did_not_hold():
    runs = {FULL.clean_arm: _run(256, 32, 0.3), "noisy": _run(1320, 32, 0.4)}
    held = {"plan": FULL, "runs": runs, "evals": {FULL.clean_arm: _ev(0.5), "noisy": _ev(0.3)}}
    assert R.read_claims(held).startswith("Every claim held")
    lost = {**held, "evals": {FULL.clean_arm: _ev(0.3), "noisy": _ev(0.5)},
            "epochs": {"epochs-val20": _epochs(6, 8)}}
    text = R.read_claims(lost)
    assert "- *a small clean set beats a large noisy one (LIMA)* (did not hold: the noisy set is ahead by 20" in text
    assert "65B model judged by people" in text and "for only 32 steps" in text
    assert "*2-3 epochs is the sweet spot; more overfits*" in text and "An epoch here is 8 steps on 80 rows" in text
    assert "hold out 10-20%" not in text  # that claim held (one split that stopped)
