"""Lesson 1's plumbing: plans per profile, lesson 2's run rebuilt exactly, and verdicts computed from
hand-made numbers (no model is loaded, nothing is trained)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from labkit.lessons import lesson1 as L
from labkit.rag import FactChange


def test_plans():
    smoke, full = L.Plan.for_profile("smoke"), L.Plan.for_profile("full")
    assert smoke.test_rows < full.test_rows <= 90 and smoke.stale_facts < full.stale_facts == 20
    assert full.ks == (1, 3, 5) and full.k in full.ks and smoke.k in smoke.ks and not full.go_further
    assert L.Plan.for_profile("full", go_further=True).go_further
    assert "48 test questions" in full.describe() and "60 steps of 8" in full.describe()
    rows = L.test_rows(full)
    assert len(rows) == full.test_rows and {r["category"] for r in rows} == {"interaction", "dosing", "profile"}


def test_finetuned_arm_is_lesson2_r16():
    """Same name, config and rows as lesson 2's r16 arm, so its finished run is found, not retrained."""
    from labkit.sft.train import run_dir

    full = L.Plan.for_profile("full")
    cfg = L.finetune_config(full)
    assert (cfg.run_name, cfg.method, cfg.rank, cfg.learning_rate, cfg.eval_every) == ("lesson2-r16", "lora", 16, 1e-3, 12)
    train_rows, val_rows = L.finetune_data(full)
    assert (len(train_rows), len(val_rows)) == (480, 48)
    assert run_dir(cfg, train_rows, val_rows).name == "lesson2-r16-d0ddf1dd9b"  # lesson 2's committed run
    smoke = L.finetune_config(L.Plan.for_profile("smoke"))
    assert smoke.max_steps == 4 and smoke.eval_every == 2


def _eval(accuracy=0.0, facts=0.0, json_valid=0.0, schema=0.0, tokens=300.0, seconds=3.0):
    return {"accuracy": accuracy, "facts_right": facts, "json_valid": json_valid, "schema_valid": schema,
            "prompt_tokens_per_answer": tokens, "seconds_per_answer": seconds, "n": 48, "scores": []}


def _results(**over):
    plan = L.Plan.for_profile("full")
    evals = {"rag-k1": _eval(facts=0.05, tokens=140, seconds=2), "rag-k3": _eval(facts=0.1), "rag-k5": _eval(facts=0.12, tokens=460),
             "oracle": _eval(facts=0.2, tokens=190), "careful": _eval(json_valid=0.3, schema=0.2, tokens=430),
             "finetuned": _eval(accuracy=0.1, facts=0.15, json_valid=1.0, schema=0.93, tokens=54, seconds=1.0),
             "finetuned-rag-k3": _eval(accuracy=0.12, json_valid=1.0, schema=0.9, tokens=310, seconds=2.5)}
    evals.update(over.pop("evals", {}))
    stale = {"rag": {"new": 0.6, "old": 0.05}, "finetuned": {"new": 0.0, "old": 0.4},
             "finetuned-rag": {"new": 0.3, "old": 0.2}, "changes": 20, "rows": 20, "reembedded": 20}
    stale.update(over.pop("stale", {}))
    hits = {"hit@1": 0.96, "hit@3": 1.0, "hit@5": 1.0, "mrr@10": 0.98}
    return {"plan": plan, "evals": evals, "stale": stale, "rows": [],
            "retrieval": {"dense": hits, "bm25": hits, "hybrid": hits}, **over}


def test_claims_follow_the_numbers():
    claims = L.claims(_results())
    assert len(claims) == 5
    by = {c.claim: c for c in claims}
    wall = by["RAG finds the right document and still answers wrong"]
    assert wall.held is True and "hit@3 100%" in wall.ours
    assert by["a careful prompt, more passages or better search do not fix it"].held is True
    assert by["fine-tuning fixes the output format where prompting cannot"].verdict.startswith("partly")
    speed = by["a fine-tuned model without retrieval is faster and cheaper"]
    assert speed.held is None and "2.5x" in speed.ours and "83%" in speed.ours  # 1 - 54/310
    assert by["fine-tuned knowledge goes stale; RAG stays current"].held is True


def test_claims_that_fail():
    res = _results(evals={"oracle": _eval(facts=0.9), "careful": _eval(accuracy=0.3, facts=0.3, schema=0.99),
                          "finetuned-rag-k3": _eval(tokens=60, seconds=1.05)},
                   stale={"rag": {"new": 0.1, "old": 0.5}, "finetuned-rag": {"new": 0.1, "old": 0.5}})
    by = {c.claim: c for c in L.claims(res)}
    assert by["RAG finds the right document and still answers wrong"].verdict == \
        "did not hold: with the right page the model answers right"
    assert by["a careful prompt, more passages or better search do not fix it"].verdict.startswith(
        "did not hold: base + RAG k=1 + careful prompt gains 30 points")
    assert by["fine-tuning fixes the output format where prompting cannot"].verdict == "did not hold"
    assert by["a fine-tuned model without retrieval is faster and cheaper"].held is False
    assert by["fine-tuned knowledge goes stale; RAG stays current"].held is False
    low = _results(retrieval={n: {"hit@1": 0.5, "hit@3": 0.6, "hit@5": 0.7, "mrr@10": 0.6} for n in ("dense", "bm25", "hybrid")})
    assert L.claims(low)[0].verdict == "did not hold: the retriever misses too often to tell"
    held = _results(evals={"finetuned": _eval(schema=0.99, json_valid=1.0, tokens=30, seconds=0.3),
                           "finetuned-rag-k3": _eval(tokens=400, seconds=3.0)})
    by = {c.claim: c for c in L.claims(held)}
    assert by["fine-tuning fixes the output format where prompting cannot"].held is True
    assert by["a fine-tuned model without retrieval is faster and cheaper"].held is True


def test_cost_and_tables():
    res = _results()
    c = L.cost(res)
    assert c["same_model"]["speedup"] == pytest.approx(2.5) and c["base"]["speedup"] == pytest.approx(3.0)
    table = L.e1_table(res)
    assert table["base + gold passages (oracle)"]["right page (hit@k)"] == 1.0
    assert table["base + RAG, k=1"]["right page (hit@k)"] == 0.96
    assert table["LoRA r16, no retrieval"]["right page (hit@k)"] is None


def test_changed_fact_rates_read_new_and_old_values():
    rows = [{"id": "a", "category": "dosing", "answer": {"dose_mg": 20, "frequency": "once daily"}},
            {"id": "b", "category": "dosing", "answer": {"dose_mg": 15, "frequency": "twice daily"}}]
    changes = [FactChange("A", "drug:a", "dose_mg", 10, 20, ("a",)), FactChange("B", "drug:b", "dose_mg", 5, 15, ("b",))]
    scores = [{"id": "a", "reply": "Take 20 mg once daily."}, {"id": "b", "reply": '{"dose_mg": 5, "frequency": "twice daily"}'}]
    assert L.changed_fact_rates(changes, rows, scores) == 0.5
    assert L.changed_fact_rates(changes, rows, scores, old=True) == 0.5
    assert L.changed_fact_rates(changes, rows, [{"id": "a", "reply": "no idea"}]) == 0.0


def test_traced_answers_keep_their_passage_ids():
    res = _results(rows=[{"id": "x", "category": "dosing", "answer": {"dose_mg": 5, "frequency": "once daily"},
                          "doc_ids": ["drug:x"], "messages": [{"role": "user", "content": "Dose of X?"}]},
                         {"id": "y", "category": "dosing", "answer": {"dose_mg": 7, "frequency": "once daily"},
                          "doc_ids": ["drug:y"], "messages": [{"role": "user", "content": "Dose of Y?"}]}])
    res["evals"]["rag-k3"]["scores"] = [{"id": "x", "reply": "no idea", "passage_ids": ["drug:x#1"]},
                                        {"id": "y", "reply": "7 mg once daily [drug:y#2]", "passage_ids": ["drug:y#2", "c#0"]}]
    first, second = L.traced(res)
    assert first["facts_right"] and first["cited_in_reply"] == ["drug:y#2"] and first["passage_ids"] == ["drug:y#2", "c#0"]
    assert not second["facts_right"] and second["question"] == "Dose of X?"


def test_evaluations_are_cached_and_keyed_by_what_was_shown(tmp_path, monkeypatch):
    from labkit.rag import Hit

    monkeypatch.setenv("LABKIT_RUNS_DIR", str(tmp_path))
    rows = [{"id": "r1", "category": "dosing", "answer": {"dose_mg": 5, "frequency": "once daily"},
             "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"},
                          {"role": "assistant", "content": '{"dose_mg": 5, "frequency": "once daily"}'}]}]
    calls = []

    def fake_rag(loaded, rows_, contexts, system=None, limit=None):
        calls.append(contexts)
        return SimpleNamespace(to_dict=lambda: {"accuracy": 0.0, "scores": [{"id": "r1", "reply": "5 mg once daily"}]},
                               predictions=[{"passage_ids": [h.passage_id for h in contexts[0]]}])

    monkeypatch.setattr("labkit.rag.evaluate_rag", fake_rag)
    ctx = [[Hit("d#0", "d", "Usual adult dose: 5 mg once daily.", 1.0)]]
    first = L.evaluate("arm", lambda: None, rows, ctx)
    again = L.evaluate("arm", lambda: None, rows, ctx)
    assert len(calls) == 1 and first == again and first["facts_right"] == 1.0
    assert first["scores"][0]["passage_ids"] == ["d#0"]
    revised = [[Hit("d#0", "d", "Usual adult dose: 10 mg once daily.", 1.0)]]  # same id, new text
    L.evaluate("arm", lambda: None, rows, revised)
    assert len(calls) == 2 and len(list((tmp_path / "lesson1-evals").glob("lesson1-arm-*.json"))) == 2
