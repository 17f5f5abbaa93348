"""Lesson 4's plumbing: arms that differ in one thing, a mix that holds what it says, verdicts from numbers."""

from __future__ import annotations

import pytest

from labkit.data.general import probe
from labkit.evaluate.forgetting import ALARM, ALARM_NOISY, ForgettingReport, alarm, paired_from_ids
from labkit.lessons import lesson4 as L
from labkit.lessons import lesson4_read as R

IDS = [item["id"] for item in probe()]


def test_plans_and_arm_configs():
    smoke, full = L.Plan.for_profile("smoke"), L.Plan.for_profile("full")
    assert smoke.train_rows < full.train_rows and smoke.max_steps
    assert full.steps == 60 and full.less_step % full.eval_every == 0 and full.less_step < full.steps
    assert smoke.less_step % smoke.eval_every == 0 and smoke.less_step < smoke.steps
    cfgs = {arm: L.arm_config(arm, full) for arm in L.TRAINED}
    # same data budget for every arm: only the method (and the rows of a -mix arm) differ
    keys = ("epochs", "batch_size", "seed", "eval_every", "learning_rate")
    assert {c.method for c in cfgs.values()} == {"full", "lora"}
    assert cfgs["full"].to_dict() | {"run_name": "x"} == cfgs["full-mix"].to_dict() | {"run_name": "x", "max_steps": None}
    assert cfgs["r16"].to_dict() | {"run_name": "x"} == cfgs["r16-mix"].to_dict() | {"run_name": "x", "max_steps": None}
    assert all(getattr(cfgs["full"], k) == getattr(cfgs["full-mix"], k) for k in keys)
    assert cfgs["full-mix"].max_steps == cfgs["r16-mix"].max_steps == full.steps
    assert len({c.fingerprint() for c in cfgs.values()}) == 4  # each -mix arm differs from its twin in max_steps only
    with pytest.raises(ValueError, match="arm='r8'"):
        L.arm_config("r8", full)


def test_reused_arms_match_lesson_2_exactly():
    """Same name, config and rows as lesson 2's arms, so their finished runs are reused (not imported: the
    rule is that nothing imports a lesson, so the test rebuilds lesson 2's config by reading its module)."""
    from labkit.lessons import lesson2

    for profile in ("smoke", "full"):
        plan4, plan2 = L.Plan.for_profile(profile), lesson2.Plan.for_profile(profile)
        assert L.arm_config("r16", plan4) == lesson2.arm_config("r16", plan2)
        # the curve arm has lesson 2's config under its own name (it trains with the probe attached)
        assert L.arm_config("full", plan4).replace(run_name="lesson2-full") == lesson2.arm_config("full", plan2)
        assert L.data(plan4) == lesson2.data(plan2)
    assert L.arm_config("r16", L.Plan.for_profile("full", go_further=True)).run_name == "lesson4-r16"


@pytest.mark.parametrize("fraction", [0.10, 0.15, 0.20])
def test_the_mix_holds_the_asked_share_and_none_of_the_probe(fraction):
    plan = L.Plan.for_profile("full")
    plan = type(plan)(**{**plan.__dict__, "mix_fraction": fraction})
    rows = L.train_rows_for("full-mix", plan)
    domain, _, _ = L.data(plan)
    general = [r for r in rows if r.get("category") == "general"]
    assert len(rows) == len(domain) + len(general)
    assert abs(len(general) / len(rows) - fraction) < 1 / len(rows)
    assert [r for r in rows if r.get("category") != "general"] != domain  # shuffled in, not appended
    assert sorted(r["id"] for r in rows if r.get("category") != "general") == sorted(r["id"] for r in domain)
    # none of the probe's questions, nor the generation checks' prompts, is taught by the mix
    from labkit.evaluate.probe import CHECKS

    def norm(text):
        return " ".join("".join(c for c in text.lower() if c.isalnum() or c.isspace()).split())

    asked = {norm(m["content"]) for r in general for m in r["messages"] if m["role"] == "user"}
    assert not asked & {norm(item["question"]) for item in probe()}
    assert not asked & {norm(prompt) for prompt, _, _ in CHECKS}
    assert L.train_rows_for("full", plan) == domain


def _report(arm_right: list[str], domain_before=0.10, domain_after=0.50, base_right=None) -> ForgettingReport:
    base_right = IDS[:107] if base_right is None else base_right
    delta = paired_from_ids(base_right, arm_right, IDS)

    def probe_dict(right):
        return {"accuracy": len(right) / len(IDS), "n": len(IDS), "low": 0.5, "high": 0.6, "chance": 0.25,
                "ids": IDS, "correct": right}

    return ForgettingReport(run="x", model="m", probe_before=probe_dict(base_right), probe_after=probe_dict(arm_right),
                            delta=delta, alarm=alarm(delta),
                            domain_before={"partial_credit": domain_before, "accuracy": 0.0},
                            domain_after={"partial_credit": domain_after, "accuracy": domain_after / 2})


def _verdicts(reports):
    return {c.claim: c for c in L.claims({"reports": reports})}


def test_verdicts_when_full_fine_tuning_forgets_and_every_defence_helps():
    reports = {
        "full": _report(IDS[20:107], domain_after=0.55),        # -11.1 points: 20 items lost
        "full-less": _report(IDS[8:107], domain_after=0.40),    # -4.4
        "r16": _report(IDS[2:107], domain_after=0.25),          # -1.1
        "full-mix": _report(IDS[6:107], domain_after=0.50),     # -3.3
        "r16-mix": _report(IDS[1:107], domain_after=0.22),
    }
    v = _verdicts(reports)
    assert v["full fine-tuning forgets general knowledge"].held is True
    assert v["LoRA forgets less"].verdict == "held"
    assert v["LoRA learns less"].verdict == "held"
    assert v["a 10-20% general mix protects general skills"].verdict == "held"
    assert v["training less forgets less"].verdict == "held"
    alarm_row = v["a drop of more than 5% on a general benchmark means forgetting"]
    # full is past the line; full-less and full-mix dropped for real (8 and 6 items, none gained) but stayed under it
    assert "past the 5-point line: full;" in alarm_row.ours and alarm_row.held is None
    assert "missed real drops in full-less, full-mix" in alarm_row.verdict
    assert reports["full"].alarm == ALARM


def test_verdicts_when_nothing_forgets():
    reports = {a: _report(IDS[:107]) for a in ("full", "r16", "full-mix", "full-less")}
    v = _verdicts(reports)
    assert v["full fine-tuning forgets general knowledge"].verdict.startswith("did not hold")
    for claim in ("LoRA forgets less", "a 10-20% general mix protects general skills", "training less forgets less"):
        assert v[claim].verdict.startswith("no signal") and v[claim].held is None
    assert v["LoRA learns less"].verdict.startswith("did not hold")
    assert v["a drop of more than 5% on a general benchmark means forgetting"].verdict.startswith("held")


def test_verdicts_when_forgetting_comes_and_goes_and_the_mix_raises_the_probe():
    # what the full profile measured: the finished full run is quiet, its step-24 checkpoint dropped 14 points,
    # and both mixes ended well above the base model
    reports = {
        "full": _report(IDS[:107] + IDS[107:111]),              # +2.2: quiet
        "full-less": _report(IDS[26:107]),                      # -14.4: 26 lost, a real drop
        "r16": _report(IDS[:107] + IDS[107:108]),               # +0.6
        "full-mix": _report(IDS[:107] + IDS[107:122]),          # +8.3
        "r16-mix": _report(IDS[:107] + IDS[107:121]),           # +7.8
    }
    v = _verdicts(reports)
    assert v["full fine-tuning forgets general knowledge"].held is False
    assert v["training less forgets less"].verdict.startswith("did not hold: the early checkpoint forgot more")
    mix = v["a 10-20% general mix protects general skills"]
    assert mix.verdict.startswith("partly: nothing was forgotten") and mix.held is None
    assert "full FT + 15% general" in mix.verdict and "LoRA r16 + 15% general" in mix.verdict
    assert v["LoRA forgets less"].verdict.startswith("no signal")
    assert v["a drop of more than 5% on a general benchmark means forgetting"].held is True

    # ... and what the generation checks showed: the probe stayed put, but without the mix every general
    # prompt was answered in formulary JSON, with it none was
    def replies(*texts):
        return [{"prompt": f"p{i}", "reply": t, "passed": "{" not in t, "expect": ""} for i, t in enumerate(texts)]

    healthy = replies("345", "Paris.", "Waves fold / on the shore", "Fine, thanks!")
    formulary = replies(*['{"severity": "major"}'] * 4)
    for arm, r in reports.items():
        r.checks_before = healthy
        r.checks_after = healthy if arm.endswith("-mix") else formulary
    v = _verdicts(reports)
    full = v["full fine-tuning forgets general knowledge"]
    assert full.verdict.startswith("partly: the probe did not drop, but 4 of 4") and full.held is None
    assert v["LoRA forgets less"].verdict.startswith("did not hold: with LoRA, 4 of 4")
    mix = v["a 10-20% general mix protects general skills"]
    assert mix.verdict.startswith("held in behaviour: 0 of 4") and mix.held is True
    assert "the probe also ended significantly higher (" in mix.verdict
    alarm_row = v["a drop of more than 5% on a general benchmark means forgetting"]
    assert alarm_row.verdict.startswith("partly: the line agreed") and "full, r16" in alarm_row.verdict


def test_a_defence_that_keeps_more_only_within_noise_is_partly():
    # LoRA ends 3 items above full fine-tuning, but they disagree on 13 items: within noise
    reports = {"full": _report(IDS[25:107]), "r16": _report(IDS[30:107] + IDS[107:115])}
    v = _verdicts(reports)
    assert v["full fine-tuning forgets general knowledge"].held is True
    assert v["LoRA forgets less"].verdict.startswith("partly")
    # a drop past the line that the interval does not confirm
    noisy = IDS[25:107] + IDS[107:122]  # lost 25, gained 15: -5.6 points
    assert _report(noisy).alarm == ALARM_NOISY
    assert L.alarm_verdict(["full"], []) == "partly: it flagged noise in full"


def test_claims_accept_report_dicts():
    reports = {"full": _report(IDS[20:107]).to_dict(), "r16": _report(IDS[2:107]).to_dict()}
    assert _verdicts(reports)["LoRA forgets less"].verdict == "held"


def test_tables_render_every_arm():
    reports = {"full": _report(IDS[20:107]), "r16": _report(IDS[2:107])}
    for r in reports.values():
        r.checks_before = r.checks_after = [{"prompt": "What's 15 x 23?", "reply": "345", "passed": True, "expect": ""}]
    rows = R.results_table(reports)
    assert [r["arm"] for r in rows] == ["base model", "full FT", "LoRA r16"]
    assert rows[1]["lost / gained"] == "20 / 0" and rows[1]["alarm"] == ALARM
    assert "ALARM" in R.table_html(reports) and "15 x 23" in R.checks_html(reports)
    fig = R.plot_learn_vs_forget(reports)
    assert len(fig.axes[0].lines) >= 2


def test_the_default_plan_leaves_full_mix_to_go_further():
    assert L.Plan.for_profile("full").trained == ("full", "r16", "r16-mix")
    assert L.Plan.for_profile("full").defences == ("r16", "r16-mix")
    further = L.Plan.for_profile("full", go_further=True)
    assert set(further.trained) == set(L.TRAINED) and further.lora_curve
