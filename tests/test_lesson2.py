"""Lesson 2's plumbing: plans per profile, arm configs, and verdicts computed from numbers."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from labkit.lessons import lesson2 as L


def _evals(**fields_right):
    return {k: {"partial_credit": v, "accuracy": v / 2, "json_valid": 1.0} for k, v in fields_right.items()}


def _run(peak, before=400 * 2**20):
    return SimpleNamespace(summary={"peak_rss_bytes": peak, "rss_before_bytes": before})


def test_plans_and_arm_configs():
    smoke, full = L.Plan.for_profile("smoke"), L.Plan.for_profile("full")
    assert smoke.train_rows < full.train_rows and smoke.max_steps
    cfgs = {arm: L.arm_config(arm, full) for arm in L.ARMS}
    assert [cfgs[a].rank for a in ("r4", "r16", "r64")] == [4, 16, 64]
    assert cfgs["full"].method == "full" and cfgs["qlora"].method == "qlora" and cfgs["qlora"].rank == 16
    # same data budget for every arm: only the method and rank differ
    keys = ("epochs", "max_steps", "batch_size", "seed", "eval_every")
    assert len({tuple(getattr(c, k) for k in keys) for c in cfgs.values()}) == 1
    assert len({c.fingerprint() for c in cfgs.values()}) == len(cfgs)
    with pytest.raises(ValueError, match="arm='r0x'"):
        L.arm_config("r0x", full)


def test_verdicts_follow_the_numbers():
    runs = {"r16": _run(2000 * 2**20), "qlora": _run(1200 * 2**20)}
    rows = L.claims({"evals": _evals(r4=0.60, r16=0.62, r64=0.61, full=0.63, qlora=0.61), "runs": runs})
    flat = {r.claim: r.verdict for r in rows}
    assert all(r.held is True for r in rows)
    assert flat["rank barely matters (start at r=16)"] == "held"
    assert flat["LoRA r16 comes close to full fine-tuning"] == "held"
    assert flat["QLoRA needs far less memory"] == "held"
    rows = L.claims({"evals": _evals(r4=0.20, r16=0.40, r64=0.55, full=0.70, qlora=0.30), "runs": runs})
    steep = {r.claim: r.verdict for r in rows}
    assert {r.claim: r.held for r in rows}["QLoRA loses little quality"] is False
    assert steep["rank barely matters (start at r=16)"].startswith("did not hold: ranks differ by 35")
    assert steep["LoRA r16 comes close to full fine-tuning"].startswith("did not hold: full FT ahead by 30")
    assert steep["QLoRA loses little quality"].startswith("did not hold: 10 points lower")


def test_no_learning_gives_no_verdict():
    rows = L.claims({"evals": _evals(r4=0.0, r16=0.02, r64=0.08, full=0.0), "runs": {}})
    assert rows and all(r.verdict == L.NO_SIGNAL and r.held is None for r in rows
                        if r.claim != "fine-tuning fixes output format")


def test_format_verdict_judges_the_schema_against_the_best_prompt():
    def ev(json_valid, schema_valid):
        return {"accuracy": 0.5, "partial_credit": 0.7, "json_valid": json_valid, "schema_valid": schema_valid}

    def verdict(r16):
        evals = {"base-careful": ev(0.0, 0.0), "base-few-shot": ev(0.99, 0.33), "r16": r16, "full": ev(1, 1)}
        return {r.claim: r for r in L.claims({"evals": evals, "runs": {}})}["fine-tuning fixes output format"]

    held = verdict(ev(1.0, 0.97))
    assert held.verdict == "held" and "few-shot prompt 99% / 33%" in held.ours
    assert verdict(ev(1.0, 0.68)).verdict.startswith("partly") and verdict(ev(1.0, 0.68)).held is None
    # parseable JSON alone does not count: the few-shot prompt's 99% braces are not 99% format
    assert verdict(ev(1.0, 0.30)).verdict == "did not hold"


def test_memory_estimates_describe_the_step_that_sets_the_peak():
    """The longest batch, the answer tokens that reach the head, and each run's real precision."""
    from labkit.config import TrainConfig
    from labkit.memory import estimate

    def run(method, bf16, **extra):
        cfg = TrainConfig(run_name="x", method=method, rank=16, batch_size=8)
        summary = {"method": method, "bf16": bf16, "train_tokens": 7600, "train_rows": 100, **extra}
        return SimpleNamespace(summary=summary, config=cfg)

    longest = dict(longest_row_tokens=84, longest_answer_tokens=27)
    got = L.memory_estimates({"lora": run("lora", True, **longest), "full": run("full", True, **longest),
                              "qlora": run("qlora", False, **longest), "old": run("lora", False)}, idle_rss_mb=500)
    mib = lambda e: e.total * 1e9 / 2**20  # noqa: E731
    common = dict(batch=8, rank=16, runtime_gb=500 * 2**20 / 1e9)
    assert got["lora"] == pytest.approx(mib(estimate("smollm2-135m", "lora", seq_len=84, logit_tokens=216,
                                                     dtype="bf16", **common)))
    assert got["full"] == pytest.approx(mib(estimate("smollm2-135m", "full", seq_len=84, logit_tokens=216,
                                                     dtype="fp32", autocast=True, **common)))
    assert got["qlora"] == pytest.approx(mib(estimate("smollm2-135m", "qlora", seq_len=84, logit_tokens=216,
                                                      dtype="fp32", gradient_checkpointing=True, **common)))
    # a run recorded before the longest row was kept: mean row length, every position through the head
    assert got["old"] == pytest.approx(mib(estimate("smollm2-135m", "lora", seq_len=76, dtype="fp32", **common)))
