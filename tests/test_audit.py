"""The linter graded against planted noise: found / planted per kind, and one example per quality."""

from __future__ import annotations

import pytest

from labkit.data import formulary as F
from labkit.data.audit import KIND_QUALITY, found_vs_planted, quality_examples
from labkit.data.lint import QUALITIES, lint
from labkit.data.noise import KINDS, inject


@pytest.fixture(scope="module")
def planted():
    rows = F.load_split("train")[:120]
    noisy = inject(rows, wrong=0.1, broken_format=0.1, truncated=0.1, duplicates=0.1, seed=5)
    return rows, noisy, lint(noisy.rows)


def test_every_kind_maps_to_one_quality():
    assert set(KIND_QUALITY) == set(KINDS) and sorted(KIND_QUALITY.values()) == sorted(QUALITIES)


def test_found_vs_planted_on_a_small_planted_set(planted):
    _, noisy, report = planted
    table = {row["kind"]: row for row in found_vs_planted(report, noisy.labels)}
    assert {k: table[k]["planted"] for k in KINDS} == {"wrong": 12, "broken_format": 12, "truncated": 12,
                                                       "duplicate": 12}
    for row in table.values():
        assert row["found"] + row["missed"] == row["planted"]
        assert row["found"] == row["planted"], row  # the formulary linter knows the truth: it misses nothing here
    # the only extra flags are duplicates of damaged rows (a copy of a wrong answer is wrong too)
    for kind in ("wrong", "broken_format", "truncated"):
        quality = KIND_QUALITY[kind]
        extra = report.rows_flagged(quality) - {i for i, label in enumerate(noisy.labels) if label == kind}
        assert {noisy.labels[i] for i in extra} <= {"duplicate"}
        assert table[kind]["also_flagged"] == len(extra)


def test_found_vs_planted_counts_misses_on_clean_looking_noise():
    rows = F.load_split("train")[:40]
    noisy = inject(rows, wrong=0.25, seed=1)
    report = lint(noisy.rows, formulary=False)  # no truth to check against: wrong answers go unseen
    wrong = next(r for r in found_vs_planted(report, noisy.labels) if r["kind"] == "wrong")
    assert wrong["planted"] == 10 and wrong["found"] < wrong["planted"] and wrong["missed"] > 0


def test_found_vs_planted_refuses_mismatched_rows(planted):
    _, noisy, report = planted
    with pytest.raises(ValueError, match="same rows"):
        found_vs_planted(report, noisy.labels[:-1])


def test_one_flagged_example_per_quality_beside_its_clean_row(planted):
    rows, noisy, report = planted
    examples = quality_examples(noisy.rows, noisy.labels, report, rows)
    assert [e["quality"] for e in examples] == list(QUALITIES)
    by_quality = {e["quality"]: e for e in examples}
    assert by_quality["correct"]["planted answer"] != by_quality["correct"]["clean answer"]
    assert by_quality["complete"]["clean answer"].startswith(by_quality["complete"]["planted answer"])
    assert by_quality["representative"]["planted answer"] == by_quality["representative"]["clean answer"]
    assert "duplicate of" in by_quality["representative"]["linter says"]
    assert all(e["linter says"] and e["question"] for e in examples)
