"""General data: the instruction mix and the probe are well-formed, separate, and deterministic."""

from __future__ import annotations

from collections import Counter

import pytest

from labkit.data import general as G
from labkit.data.chat import DataError


def test_mix_is_deterministic_and_matches_the_shipped_file(tmp_path):
    a = G.write_all(tmp_path / "a")[0]
    b = G.write_all(tmp_path / "b")[0]
    assert a.read_bytes() == b.read_bytes()
    assert (G.general_dir() / "mix.jsonl").read_bytes() == a.read_bytes(), "mix.jsonl is stale: run general.write_all()"


def test_mix_covers_the_asked_kinds_and_answers_are_right():
    rows = G.general_mix()
    assert 150 <= len(rows) <= 250
    subjects = Counter(r["subject"] for r in rows)
    assert set(subjects) == {"arithmetic", "capitals", "definitions", "instruction", "haiku", "chat"}
    for row in rows:
        user, reply = row["messages"][0]["content"], row["messages"][1]["content"]
        if row["subject"] == "arithmetic":
            expression, value = reply.rstrip(".").split(" = ")
            a, op, b = expression.split()
            assert {"+": int(a) + int(b), "-": int(a) - int(b), "x": int(a) * int(b)}[op] == int(value)
            assert expression in user
        if row["subject"] == "haiku":
            assert len(reply.splitlines()) == 3


def test_mix_stays_clear_of_what_the_probe_and_checks_ask():
    mix_users = " ".join(r["messages"][0]["content"] for r in G.general_mix())
    assert "15 x 23" not in mix_users and "France" not in mix_users
    probe_questions = {item["question"] for item in G.probe()}
    assert not probe_questions & {r["messages"][0]["content"] for r in G.general_mix()}
    probe_capitals = {q.removeprefix("What is the capital of ").rstrip("?") for q in probe_questions
                      if q.startswith("What is the capital of")}
    assert not probe_capitals & {country for country, _ in G.CAPITALS}


def test_probe_shape():
    items = G.probe()
    assert len(items) >= 150
    assert len({i["id"] for i in items}) == len(items)
    assert len({i["question"] for i in items}) == len(items)
    subjects = Counter(i["subject"] for i in items)
    assert len(subjects) >= 5 and min(subjects.values()) >= 20
    for item in items:
        assert len(item["choices"]) == 4 and len(set(item["choices"])) == 4
    # the right answer is not always in the same place
    assert max(Counter(i["answer_index"] for i in items).values()) < 0.35 * len(items)


def test_probe_file_errors_name_the_line(tmp_path):
    bad = tmp_path / "probe.jsonl"
    bad.write_text('{"id": "a", "subject": "s", "question": "q", "choices": ["x", "y"], "answer_index": 0}\n'
                   '{"id": "b", "subject": "s", "question": "q", "choices": ["x"], "answer_index": 3}\n')
    with pytest.raises(DataError, match=r"probe.jsonl:2: needs at least two choices"):
        G.probe(bad)


def test_blend_hits_the_fraction():
    domain = [{"id": f"d{i}", "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
              for i in range(600)]
    rows = G.blend(domain, 0.15)
    general = [r for r in rows if r.get("category") == "general"]
    assert len(general) / len(rows) == pytest.approx(0.15, abs=0.005)
    assert G.blend(domain, 0.15) == rows  # same seed, same order
    with pytest.raises(ValueError):
        G.blend(domain, 1.0)
