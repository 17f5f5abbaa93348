"""Noise is planted where we say, and the linter finds each kind under the right quality."""

from __future__ import annotations

import copy
import json

import pytest

from labkit.data import formulary as F
from labkit.data import general as G
from labkit.data.lint import QUALITIES, lint
from labkit.data.noise import inject

KIND_TO_QUALITY = {"wrong": "correct", "broken_format": "consistent", "truncated": "complete"}


@pytest.fixture(scope="module")
def train():
    return F.load_split("train")[:300]


def test_inject_is_deterministic_and_leaves_the_input_alone(train):
    before = copy.deepcopy(train)
    a = inject(train, wrong=0.1, broken_format=0.1, truncated=0.1, duplicates=0.2, seed=3)
    b = inject(train, wrong=0.1, broken_format=0.1, truncated=0.1, duplicates=0.2, seed=3)
    assert train == before
    assert a.rows == b.rows and a.labels == b.labels
    assert a.counts == {"wrong": 30, "broken_format": 30, "truncated": 30, "duplicate": 60}
    assert len(a.rows) == 360 and a.noisy_fraction == pytest.approx(150 / 360)
    assert inject(train, wrong=0.1, seed=4).rows != a.rows


def test_inject_rejects_impossible_rates(train):
    with pytest.raises(ValueError, match="between 0 and 1"):
        inject(train, wrong=1.5)
    with pytest.raises(ValueError, match="only 300"):
        inject(train, wrong=0.5, truncated=0.6)


def test_clean_data_lints_clean():
    for rows in (F.load_split("train"), F.load_split("train", "text"), G.general_mix(), G.blend(F.load_split("val"))):
        report = lint(rows)
        assert report.ok, str(report)


@pytest.mark.parametrize("variant", ["json", "text"])
def test_linter_flags_each_planted_kind(variant):
    rows = F.load_split("train", variant)[:400]
    noisy = inject(rows, wrong=0.1, broken_format=0.1, truncated=0.1, seed=1)
    report = lint(noisy.rows)
    for kind, quality in KIND_TO_QUALITY.items():
        planted = {i for i, label in enumerate(noisy.labels) if label == kind}
        flagged = report.rows_flagged(quality)
        assert len(planted & flagged) >= 0.95 * len(planted), (kind, str(report))
        assert len(flagged - planted) <= 2, (kind, str(report))


def test_linter_flags_duplicates_exactly(train):
    noisy = inject(train, duplicates=0.1, seed=2)
    report = lint(noisy.rows)
    assert report.rows_flagged("representative") == {i for i, label in enumerate(noisy.labels) if label == "duplicate"}


def test_linter_checks_coverage_balance_and_conflicts(train):
    interactions = [r for r in train if r["category"] == "interaction"]
    report = lint(interactions[:100] + [r for r in train if r["category"] == "dosing"][:2])
    messages = " ".join(i.message for i in report.issues if i.quality == "representative")
    assert "only 2 rows" in messages and "no rows at all" in messages  # dosing thin, profile missing
    lopsided = [r for r in interactions if r["answer"]["severity"] == "major"][:30] + interactions[:3]
    assert any("severity='major'" in i.message for i in lint(lopsided).issues)
    clash = copy.deepcopy(train[0])
    clash["id"] = "clash"
    other = "avoid" if train[0]["answer"].get("action") != "avoid" else "monitor"
    clash["messages"][-1]["content"] = json.dumps({**train[0]["answer"], "action": other})
    report = lint([train[0], clash])
    assert any("different answer" in i.message for i in report.issues if i.quality == "correct")


def test_schema_violations_and_missing_fields():
    row = copy.deepcopy(F.load_split("train")[0])
    rows = []
    for content in ('{"severity": "catastrophic", "mechanism": "none", "action": "none"}',
                    '{"severity": "none"}'):
        bad = copy.deepcopy(row)
        bad["messages"][-1]["content"] = content
        rows.append(bad)
    report = lint(rows)
    assert {i.quality for i in report.issues} >= {"correct", "complete"}
    assert any("outside the schema" in i.message for i in report.issues)
    assert any("missing field" in i.message for i in report.issues)


def test_bad_file_is_reported_line_by_line_without_crashing(tmp_path):
    good = F.load_split("train")[0]
    path = tmp_path / "mixed.jsonl"
    lines = [json.dumps(good).encode(), b"{not json", json.dumps({"id": "x"}).encode(), b"",
             b'{"messages": [{"role": "user", "content": "caf\xe9"}]}',
             json.dumps({"messages": [{"role": "user", "content": "hi"}]}).encode()]
    path.write_bytes(b"\n".join(lines) + b"\n")
    report = lint(path)
    where = {i.where: i.message for i in report.issues}
    assert "not valid JSON" in where[f"{path}:2"]
    assert "messages" in where[f"{path}:3"]
    assert "not UTF-8" in where[f"{path}:5"]
    assert "no assistant turn" in where[f"{path}:6"]
    assert report.n_rows == 3  # lines 1, 3 and 6 parsed as JSON
    text, page = str(report), report._repr_html_()
    assert f"{path}:2" in text and "not valid JSON" in page
    for quality in QUALITIES:
        assert quality in text and quality in page


def test_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert "empty" in str(lint(empty))
    assert "no such file" in str(lint(tmp_path / "nope.jsonl"))
