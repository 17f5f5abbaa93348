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


class FakeRun:  # a finished run of lesson 2's full fine-tune, by its folder name
    path = type("P", (), {"name": "lesson2-full-0123456789"})()


def test_pipeline_arms_differ_in_one_thing():
    teacher = L.synth_config(FULL, "teacher", FakeRun())
    base = L.synth_config(FULL, "base-teacher")
    off = L.synth_config(FULL, "persona-off", FakeRun())
    # the teacher and its contrast: same questions (writer, personas, tasks), same critic; only the answerer
    assert teacher.answerer == "run:lesson2-full-0123456789" and base.answerer is None
    assert teacher.writer == base.writer == "smollm2-135m-instruct" and teacher.critic == base.critic == L.CRITIC
    # the answerer, and the prompt format that answerer was trained on
    assert {k for k, v in teacher.to_dict().items() if base.to_dict()[k] != v} == {"name", "answerer", "answer_style"}
    assert teacher.answer_style == "trained" and base.answer_style == "few-shot"
    assert {k for k, v in teacher.to_dict().items() if off.to_dict()[k] != v} == {"name", "personas"}
    assert off.personas == ("neutral",) and len(teacher.personas) == 4
    with pytest.raises(ValueError, match="fine-tuned teacher"):
        L.synth_config(FULL, "teacher")
    with pytest.raises(ValueError, match="arm='gpt5'"):
        L.synth_config(FULL, "gpt5")


def test_students_share_everything_but_their_rows():
    cfgs = {arm: L.student_config(FULL, arm) for arm in (*L.STUDENTS, *L.EXTRA_STUDENTS)}
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


@pytest.mark.parametrize("profile", ["full", "smoke"])
def test_the_teacher_is_lesson2s_full_run(profile):
    from labkit.lessons import lesson2  # the test may import lesson 2; the lesson module must not

    config, train_rows, val_rows = L.teacher_train_config(profile)
    plan2 = lesson2.Plan.for_profile(profile)
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
    assert rows["self-check"].verdict.startswith("did not hold: its drops are no more often wrong")


def test_partial_verdicts():
    # a critic 3 points cleaner; a self-check whose drops (45% wrong) beat its input (40%) by 5 points
    rows = _by_claim(_results(critic_after=0.63, self_check=(50, 30, 20, 9), filtered=0.41, raw=0.40))
    assert rows["critic"].held is None and rows["critic"].verdict.startswith("partly")
    assert rows["self-check"].held is None and "dropped 40% of 50" in rows["self-check"].ours
    assert "40% of its input was wrong, 45% of its drops" in rows["self-check"].ours
    filtered = next(c for c in L.claims(_results(filtered=0.41, raw=0.40)) if c.claim.startswith("training"))
    assert filtered.held is None and filtered.verdict.startswith("partly")


def test_claims_need_only_what_was_measured():
    results = _results()
    del results["evals"], results["grounding"]
    assert [c.claim.split()[1] for c in L.claims(results)] == ["critic", "self-check"]


# ---------------------------------------------------------------------------------------------
# readings: every number and judgement computed, so the wording follows the results


def test_readings_follow_the_numbers():
    from labkit.lessons import lesson5_read as R

    good = [_stage("critic", 40, 30, 20, 8, 0.60), _stage("schema", 30, 30, 12, 0, 0.60),
            _stage("self-check", 30, 26, 12, 4, 0.69), _stage("grounding", 26, 20, 8, 6, 0.90)]
    text = R.read_filters(good, "the teacher")
    assert "right pairs went from 50% of its input to 60% of what it kept, so its cut was cleaner" in text
    assert "dropped 4 of 30 (13%" in text and "40% of its input was wrong and 100% of its drops" in text
    assert "grounding dropped 6 with precision 100% - every pair they dropped was really wrong" in text
    backwards = [_stage("critic", 24, 18, 14, 0, 0.22), _stage("self-check", 17, 15, 13, 1, 0.2)]
    text = R.read_filters(backwards, "the base")
    assert "less* clean than its input" in text and "no better than dropping at random" in text

    ev = lambda x: {"partial_credit": x}
    runs = {a: type("R", (), {"summary": {"train_rows": n}})() for a, n in (("raw", 64), ("filtered", 30), ("gold", 30))}
    text = R.read_students({"base": ev(0.0), "raw": ev(0.40), "filtered": ev(0.45), "gold": ev(0.60)}, runs, 90)
    assert "base 0%, raw 40%, filtered 45%, gold 60%" in text and "filtering paid (+5 points)" in text
    assert "real rows did better still" in text
    text = R.read_students({"raw": ev(0.45), "filtered": ev(0.40), "gold": ev(0.37)}, runs, 90)
    assert "filtering cost 5 points" in text and "beat the same number of real rows" in text

    audits = {"teacher": {"right_raw": 0.6, "stages": [good[-1]]}, "base-teacher": {"right_raw": 0.4, "stages": [backwards[-1]]}}
    assert "clearly more right pairs" in R.read_teachers(audits, {})
    audits["teacher"]["right_raw"] = 0.3
    assert "fine-tuning did not make a better teacher" in R.read_teachers(audits, {})
    audits["teacher"]["right_raw"], audits["base-teacher"]["right_raw"] = 16 / 48, 14 / 48  # two pairs apart
    assert "about as many right pairs" in R.read_teachers(audits, {})
    audits["teacher"]["right_raw"] = 18 / 48
    assert "somewhat more right pairs" in R.read_teachers(audits, {})
