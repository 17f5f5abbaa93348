"""Lesson 5's plumbing: plans, pipeline and student configs that differ in one thing, the stronger
teacher rebuilt exactly as lesson 2 trains it, and verdicts computed from numbers (no training)."""

from __future__ import annotations

import pytest

from labkit.lessons import lesson5 as L

FULL, SMOKE = L.Plan.for_profile("full"), L.Plan.for_profile("smoke")


def test_plans():
    assert SMOKE.n_tasks < FULL.n_tasks and SMOKE.student_steps < FULL.student_steps
    assert not FULL.go_further and L.Plan.for_profile("full", go_further=True).go_further
    assert "go further" in L.Plan.for_profile("smoke", go_further=True).describe()
    with pytest.raises(ValueError, match="profile='huge'"):
        L.Plan.for_profile("huge")


def test_pipeline_arms_differ_in_one_thing():
    base = L.synth_config(FULL, "teacher")
    off = L.synth_config(FULL, "persona-off")
    assert {k for k, v in base.to_dict().items() if off.to_dict()[k] != v} == {"name", "personas"}
    assert off.personas == ("neutral",) and len(base.personas) == 4

    class FakeRun:  # the stronger arm names lesson 2's run folder
        path = type("P", (), {"name": "lesson2-full-0123456789"})()

    strong = L.synth_config(FULL, "stronger", stronger=FakeRun())
    assert strong.answerer == "run:lesson2-full-0123456789" and strong.writer == base.writer
    assert {k for k, v in base.to_dict().items() if strong.to_dict()[k] != v} == {"name", "answerer"}
    with pytest.raises(ValueError, match="stronger teacher|stronger_teacher"):
        L.synth_config(FULL, "stronger")
    with pytest.raises(ValueError, match="arm='gpt5'"):
        L.synth_config(FULL, "gpt5")


def test_students_share_everything_but_their_rows():
    cfgs = {arm: L.student_config(FULL, arm) for arm in (*L.STUDENTS, "stronger", "persona-off")}
    keys = ("method", "rank", "learning_rate", "max_steps", "batch_size", "seed", "eval_every")
    assert len({tuple(getattr(c, k) for k in keys) for c in cfgs.values()}) == 1
    assert cfgs["raw"].max_steps == FULL.student_steps and cfgs["raw"].learning_rate == L.STUDENT_LR
    assert len({c.run_name for c in cfgs.values()}) == len(cfgs)


def test_gold_student_gets_as_many_real_rows_as_the_filtered_set():
    class FakeSynth:
        def rows(self, which):
            return [{"messages": []}] * (7 if which == "clean" else 20)

    synth = {"teacher": FakeSynth()}
    assert len(L.student_rows(FULL, "raw", synth)) == 20 and len(L.student_rows(FULL, "filtered", synth)) == 7
    gold = L.student_rows(FULL, "gold", synth)
    assert len(gold) == 7 and all(r["id"].startswith("fx-train-") for r in gold)
    with pytest.raises(ValueError, match="student 'teacher'"):
        L.student_rows(FULL, "teacher", synth)


def test_the_stronger_teacher_is_lesson2s_full_run():
    from labkit.lessons import lesson2  # the test may import lesson 2; the lesson module must not

    config, train_rows, val_rows = L.stronger_teacher_config()
    plan2 = lesson2.Plan.for_profile("full")
    assert config == lesson2.arm_config("full", plan2)
    train2, val2, _ = lesson2.data(plan2)
    assert [r["id"] for r in train_rows] == [r["id"] for r in train2]
    assert [r["id"] for r in val_rows] == [r["id"] for r in val2]


def test_lesson_module_does_not_import_another_lesson():
    import re

    source = open(L.__file__, encoding="utf-8").read()
    assert not re.search(r"^\s*(from\s+labkit\.lessons|import\s+labkit\.lessons)", source, re.M)
    assert "import_module" not in source


# ---------------------------------------------------------------------------------------------
# verdicts


def _stage(stage, n_in, kept, wrong_in, caught, right_after):
    dropped = n_in - kept
    return {"stage": stage, "in": n_in, "kept": kept, "wrong_in": wrong_in, "caught": caught,
            "right_dropped": dropped - caught, "precision": caught / dropped if dropped else None,
            "recall": caught / wrong_in if wrong_in else None, "right_after": right_after}


def _results(critic_after=0.70, self_check=(60, 54, 24, 5), filtered=0.5, raw=0.4, grounded=0.2, ungrounded=0.6):
    n_in, kept, wrong_in, caught = self_check
    stages = [_stage("generate", 100, 100, 40, 0, 0.6), _stage("critic", 100, 75, 40, 20, critic_after),
              _stage("self-check", n_in, kept, wrong_in, caught, (kept - (wrong_in - caught)) / kept)]
    ev = lambda x: {"partial_credit": x, "schema_valid": 0.9, "accuracy": x / 2}
    return {"audit": {"teacher": {"stages": stages}},
            "evals": {"raw": ev(raw), "filtered": ev(filtered), "gold": ev(0.7)},
            "grounding": {"n": 32, "grounded": {"invented_rate": grounded}, "ungrounded": {"invented_rate": ungrounded}}}


def _by_claim(results):
    return {c.claim.split()[1]: c for c in L.claims(results)}


def test_verdicts_hold_when_the_numbers_do():
    rows = _by_claim(_results())
    assert [c.held for c in rows.values()] == [True] * 4, [c.verdict for c in rows.values()]
    assert "critic kept 75%" in rows["critic"].ours and "right pairs 60% before, 70% after" in rows["critic"].ours


def test_verdicts_fail_when_the_numbers_do():
    rows = _by_claim(_results(critic_after=0.60, self_check=(60, 50, 30, 5), filtered=0.38, raw=0.45,
                              grounded=0.5, ungrounded=0.52))
    assert all(c.held is False for c in rows.values()), [c.verdict for c in rows.values()]
    assert rows["critic"].verdict.startswith("did not hold: the 135M critic")
    assert rows["self-check"].verdict.startswith("did not hold: a 135M teacher cannot judge")


def test_partial_verdicts():
    # a critic 3 points cleaner; a self-check better than chance that flags 40%; filtered = raw
    rows = _by_claim(_results(critic_after=0.63, self_check=(50, 30, 20, 16), filtered=0.41, raw=0.40))
    assert rows["critic"].held is None and rows["critic"].verdict.startswith("partly")
    assert rows["self-check"].held is None and "flagged 40%" in rows["self-check"].ours
    filtered = next(c for c in L.claims(_results(filtered=0.41, raw=0.40)) if c.claim.startswith("training"))
    assert filtered.held is None and filtered.verdict.startswith("partly")


def test_claims_need_only_what_was_measured():
    results = _results()
    del results["evals"], results["grounding"]
    assert [c.claim.split()[1] for c in L.claims(results)] == ["critic", "self-check"]
