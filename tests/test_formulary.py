"""The Northwind formulary: deterministic, internally consistent, and its splits do not leak."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from labkit.data import formulary as F
from labkit.data.chat import DataError


def test_same_seed_same_bytes_and_matches_the_shipped_files(tmp_path):
    first = F.write_all(tmp_path / "a", seed=0)
    second = F.write_all(tmp_path / "b", seed=0)
    assert [p.name for p in first] == [p.name for p in second]
    for a, b in zip(first, second):
        assert a.read_bytes() == b.read_bytes(), a.name
    shipped = F.formulary_dir()
    for a in first:
        assert (shipped / a.name).read_bytes() == a.read_bytes(), f"{a.name} is stale: run formulary.write_all()"
    other = F.write_all(tmp_path / "c", seed=1)
    assert (tmp_path / "c" / "train.jsonl").read_bytes() != first[0].read_bytes()
    assert other


def test_sizes_categories_and_row_shape():
    for split, sizes in F.SIZES.items():
        rows = F.load_split(split)
        assert Counter(r["category"] for r in rows) == Counter(sizes)
        assert len({r["id"] for r in rows}) == len(rows)
        for row in rows[:50]:
            system, user, assistant = row["messages"]
            assert system["content"] == F.SYSTEM_PROMPT and user["role"] == "user"
            assert json.loads(assistant["content"]) == row["answer"]
            assert set(row["answer"]) == set(F.ANSWER_SCHEMA[row["category"]])


def test_answers_are_short():
    from transformers import AutoTokenizer

    from labkit.models import prepare

    tok = AutoTokenizer.from_pretrained(prepare()[0])
    replies = [r["messages"][-1]["content"] for r in F.load_split("train")]
    assert max(len(ids) for ids in tok(replies)["input_ids"]) <= 40


def test_no_test_or_val_fact_appears_in_train():
    def facts(rows):
        return {(r["category"], frozenset(r["drugs"])) for r in rows}

    train, val, test = (facts(F.load_split(s)) for s in F.SPLITS)
    assert not train & test and not train & val and not val & test
    questions = {r["messages"][1]["content"] for r in F.load_split("train")}
    assert not questions & {r["messages"][1]["content"] for r in F.load_split("test")}


def test_test_drugs_are_known_from_training():
    """Unseen pairs of *known* drugs: every drug asked about in test appears somewhere in train."""
    seen = {d for r in F.load_split("train") for d in r["drugs"]}
    for split in ("val", "test"):
        assert {d for r in F.load_split(split) for d in r["drugs"]} <= seen


def test_interactions_follow_class_rules():
    fx = F.build(0)
    assert len(fx.drugs) == 300 and len(fx.by_name) == 300
    for drug in fx.drugs:
        assert drug.name.endswith(drug.cls.suffix)
    a, b = fx.members(F.CLASSES[0])[:2]  # two clotting inhibitors
    assert fx.interaction(a.name, b.name)["mechanism"] == "duplicate therapy"
    brelix = fx.members(F.CLASSES[1])[0]
    assert fx.interaction(a.name, brelix.name) == {"severity": "major", "mechanism": "additive bleeding", "action": "avoid"}
    for row in F.load_split("test"):
        if row["category"] == "interaction":
            x, y = row["drugs"]
            assert fx.interaction(x, y) == fx.interaction(y, x) == row["answer"]
    mechanisms = Counter(r["answer"]["mechanism"] for r in F.load_split("train") if r["category"] == "interaction")
    assert set(mechanisms) == set(F.ANSWER_SCHEMA["interaction"]["mechanism"])
    assert mechanisms["none"] == 180  # a quarter "none", the rest balanced over the nine rules


def test_text_variant_asks_the_same_questions():
    for split in F.SPLITS:
        json_rows, text_rows = F.load_split(split), F.load_split(split, "text")
        assert [r["id"] for r in json_rows] == [r["id"] for r in text_rows]
        for j, t in zip(json_rows[:40], text_rows[:40]):
            assert j["messages"][1] == t["messages"][1]
            assert F.read_text_answer(t["category"], t["messages"][-1]["content"]) == t["answer"]


def test_read_text_answer_is_lenient_on_wording_but_not_on_hedging():
    got = F.read_text_answer("interaction", "This is a MAJOR problem: bleeding risk adds up. Lower the dose.")
    assert got == {"severity": "major", "mechanism": "additive bleeding", "action": "reduce dose"}
    hedged = F.read_text_answer("interaction", "Minor or major, hard to say.")
    assert hedged["severity"] is None
    assert F.read_text_answer("dosing", "Give 5 mg twice daily.") == {"dose_mg": 5, "frequency": "twice daily"}


def test_corpus_covers_every_drug_and_row_doc_ids_resolve():
    docs = F.corpus()
    ids = {d["id"] for d in docs}
    assert len(docs) == len(ids) >= 300
    fx = F.build(0)
    assert {d.doc_id for d in fx.drugs} <= ids
    for row in F.load_split("test"):
        assert set(row["doc_ids"]) <= ids
    doc = next(d for d in docs if d["id"] == fx.drugs[0].doc_id)
    assert fx.drugs[0].name in doc["text"] and "mg" in doc["text"]


def test_find_drugs_and_unknown_names():
    fx = F.build(0)
    name = fx.drugs[5].name
    assert fx.find_drugs(f"Is {name} safe with ZzzzParex or aspirin?") == [name]
    with pytest.raises(KeyError, match="not in the Northwind formulary"):
        fx.drug("Aspirin")


def test_bad_split_names():
    with pytest.raises(ValueError, match="split"):
        F.load_split("dev")
    with pytest.raises(ValueError, match="variant"):
        F.load_split("train", "xml")


def test_missing_shipped_file_names_it(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match="train.jsonl: missing"):
        F.load_split("train")
