"""The forgetting report: its statistics by hand, the alarm, a zeroed adapter that changes nothing, the CLI."""

from __future__ import annotations

import argparse
import json

import pytest

from labkit.evaluate import forgetting as F
from labkit.evaluate.forgetting_curve import CURVE, read_curve


def test_wilson_interval_known_values():
    low, high = F.wilson_interval(5, 10)
    assert (round(low, 4), round(high, 4)) == (0.2366, 0.7634)
    low, high = F.wilson_interval(0, 10)
    assert low == 0.0 and round(high, 4) == 0.2775
    # the base model's measured probe score: 107 of 180 is 59.4%, give or take 7 points
    low, high = F.wilson_interval(107, 180)
    assert 0.51 < low < 0.53 and 0.66 < high < 0.67
    with pytest.raises(ValueError):
        F.wilson_interval(11, 10)


def test_mcnemar_matches_the_binomial_test():
    stats = pytest.importorskip("scipy.stats")
    for lost, gained in ((12, 0), (12, 8), (3, 4), (20, 6), (0, 0)):
        expected = stats.binomtest(min(lost, gained), lost + gained, 0.5).pvalue if lost + gained else 1.0
        assert F.mcnemar_exact(lost, gained) == pytest.approx(expected)


def test_paired_delta_counts_flips_and_its_interval_behaves():
    same = [True] * 107 + [False] * 73
    d = F.paired_delta(same, same)
    assert d.delta == 0 and d.lost == d.gained == 0 and not d.significant and d.low <= 0 <= d.high
    # twelve items lost, none gained: a real drop of 6.7 points
    before, after = [True] * 100 + [False] * 80, [True] * 88 + [False] * 92
    d = F.paired_delta(before, after)
    assert (d.lost, d.gained) == (12, 0) and d.delta == pytest.approx(-12 / 180)
    assert d.high < 0 and d.significant and d.p_value < 0.001
    # swapping before and after mirrors the interval
    r = F.paired_delta(after, before)
    assert r.low == pytest.approx(-d.high) and r.high == pytest.approx(-d.low)
    # the same net change with many flips both ways is noise, not forgetting
    churn = [True] * 40 + [False] * 40 + [True] * 60 + [False] * 40
    churned = [False] * 40 + [True] * 28 + [False] * 12 + [True] * 60 + [False] * 40
    c = F.paired_delta(churn, churned)
    assert c.delta == pytest.approx(d.delta) and not c.significant and c.low < d.low
    with pytest.raises(ValueError):
        F.paired_delta([True], [True, False])


def test_alarm_uses_the_line_and_the_interval():
    def delta(before_right, lost, gained, n=180):
        before = [True] * before_right + [False] * (n - before_right)
        after = list(before)
        for i in range(lost):
            after[i] = False
        for i in range(gained):
            after[n - 1 - i] = True
        return F.paired_delta(before, after)

    assert F.alarm(delta(107, 15, 0)) == F.ALARM                  # -8.3 points, clearly real
    assert F.alarm(delta(107, 25, 14)) == F.ALARM_NOISY           # -6.1 points, but lots of churn
    assert F.alarm(delta(107, 7, 0)) == F.DROP                    # -3.9 points, real but small
    assert F.alarm(delta(107, 5, 4)) == F.QUIET
    assert F.alarm(delta(107, 0, 12)) == F.QUIET                  # getting better is not forgetting
    assert F.alarm(delta(107, 7, 0), line=0.03) == F.ALARM


def _zero_adapter_run(folder, model: str = "smollm2-135m-instruct"):
    """A finished LoRA run folder whose adapter is all zeros: the model it loads *is* the base."""
    from peft import LoraConfig, get_peft_model

    from labkit import models
    from labkit.config import TrainConfig

    config = TrainConfig(run_name="zeroed", method="lora", rank=4, model=model)
    loaded = models.load(model, precision="fp32")
    peft_model = get_peft_model(loaded.model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"))
    for name, param in peft_model.named_parameters():
        if "lora_" in name:
            param.data.zero_()
    folder.mkdir(parents=True)
    peft_model.save_pretrained(str(folder / "adapter"))
    (folder / "config.yaml").write_text(config.to_yaml())
    (folder / "summary.json").write_text(json.dumps({"method": "lora", "steps": 0}))
    return folder


@pytest.mark.slow
def test_report_on_a_zeroed_adapter_shows_no_change(isolated_runs):
    from labkit.data import formulary
    from labkit.data.general import probe
    from labkit.evaluate.domain import balanced

    run_dir = _zero_adapter_run(isolated_runs / "zeroed-0000000000")
    items = balanced(probe(), 12, key="subject")
    rows = balanced(formulary.load_split("test"), 3)
    report = F.forgetting_report(run_dir, rows, items)
    assert report.probe_after["correct"] == report.probe_before["correct"]
    assert report.delta.delta == 0 and report.delta.lost == report.delta.gained == 0
    assert report.alarm == F.QUIET and "no forgetting" in report.verdict()
    assert report.domain_after["partial_credit"] == report.domain_before["partial_credit"]
    assert [c["reply"] for c in report.checks_after] == [c["reply"] for c in report.checks_before]
    assert report.domain_gain == 0
    # cached beside the run and under base-evals: a second report reads them back
    assert list((run_dir / "evals").glob("probe-*.json")) and list((isolated_runs / "base-evals").glob("probe-*.json"))
    again = F.forgetting_report(run_dir, rows, items)
    assert again.to_dict() == report.to_dict()
    assert F.ForgettingReport.from_dict(report.to_dict()).to_dict() == report.to_dict()
    assert "general probe (12 items)" in str(report) and "<table>" in report._repr_html_()


def _fake_probe(ids, right):
    return {"accuracy": len(right) / len(ids), "n": len(ids), "low": 0.0, "high": 1.0, "chance": 0.25,
            "per_subject": {}, "seconds": 0.0, "ids": ids, "correct": right}


def test_cli_reads_cached_evaluations_and_can_fail_on_alarm(isolated_runs, capsys):
    from labkit.config import TrainConfig
    from labkit.data.general import probe

    run_dir = isolated_runs / "mine-0123456789"
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(TrainConfig(run_name="mine", method="full").to_yaml())
    (run_dir / "summary.json").write_text("{}")
    items = probe()
    ids = [i["id"] for i in items]
    model = "smollm2-135m-instruct"
    # fabricated, cached probe results: 110 right before, 20 of them lost after
    for folder, right in ((None, ids[:110]), (run_dir, ids[20:110])):
        path = F.probe_file(folder, items, model)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(_fake_probe(ids, right)))
    parser = argparse.ArgumentParser()
    F.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["forgetting", str(run_dir), "--no-domain", "--no-checks"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "-11.1 points" in out and "ALARM" in out and "20 items lost, 0 gained" in out
    args = parser.parse_args(["forgetting", str(run_dir), "--no-domain", "--no-checks", "--fail-on-alarm", "--json"])
    assert args.func(args) == 1
    assert json.loads(capsys.readouterr().out)["alarm"] == F.ALARM
    args = parser.parse_args(["forgetting", str(run_dir), "--no-domain", "--no-checks", "--line", "15"])
    assert args.func(args) == 0 and "under the 15-point line" in capsys.readouterr().out


def test_read_curve_keeps_the_last_point_per_step_and_survives_a_cut_line(tmp_path):
    (tmp_path / CURVE).write_text('{"step": 24, "accuracy": 0.5}\n{"step": 12, "accuracy": 0.6}\n'
                                  '{"step": 24, "accuracy": 0.55}\n{"step": 36, "acc')
    assert [(p["step"], p["accuracy"]) for p in read_curve(tmp_path)] == [(12, 0.6), (24, 0.55)]
    assert read_curve(tmp_path / "nowhere") == []
