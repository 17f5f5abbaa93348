"""Lesson 6's plumbing (no training): plans, arms, lesson 2's mirrored arm, reply readings, claims."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from labkit.lessons import lesson6 as L

SMOKE, FULL = L.Plan.for_profile("smoke"), L.Plan.for_profile("full")


def test_plans():
    assert SMOKE.raft_rows < FULL.raft_rows and SMOKE.test_rows < FULL.test_rows
    for plan in (SMOKE, FULL):
        assert plan.raft_rows == plan.max_steps * plan.batch_size  # one pass over the RAFT rows
    assert FULL.raft_arms() == ["raft-p70", "raft-p100"]
    further = L.Plan.for_profile("full", go_further=True)
    assert further.raft_arms() == ["raft-p0", "raft-p40", "raft-p70", "raft-p100"]
    assert "go further" in FULL.describe() and "P = 0, 0.4, 0.7, 1" in further.describe()
    assert FULL.test_rows % 3 == 0  # balanced over the three question kinds
    with pytest.raises(ValueError, match="profile='huge'"):
        L.Plan.for_profile("huge")


def test_raft_arms_differ_only_in_their_data():
    configs = {p: L.raft_train_config(p, FULL) for p in (0.0, 0.4, 0.7, 1.0)}
    assert len({c.replace(run_name="x").fingerprint() for c in configs.values()}) == 1
    assert len({c.run_name for c in configs.values()}) == 4
    cfg = configs[0.7]
    assert (cfg.method, cfg.rank, cfg.learning_rate, cfg.seed) == ("lora", 16, L.LORA_LR, 0)
    raft = L.raft_config(0.7, FULL)
    assert raft.oracle_fraction == 0.7 and raft.max_length == cfg.max_length and raft.distractors == "hard"


@pytest.mark.parametrize("profile", ["smoke", "full"])
def test_lesson2_arm_is_rebuilt_identically(profile):
    from labkit.lessons import lesson2 as L2
    from labkit.sft.train import run_dir

    plan2, plan6 = L2.Plan.for_profile(profile), L.Plan.for_profile(profile)
    train2, val2, _ = L2.data(plan2)
    train6, val6 = L.finetune_data(plan6)
    assert L.finetune_config(plan6) == L2.arm_config("r16", plan2)
    assert [r["id"] for r in train6] == [r["id"] for r in train2] and [r["id"] for r in val6] == [r["id"] for r in val2]
    folder = run_dir(L.finetune_config(plan6), train6, val6)
    assert folder == run_dir(L2.arm_config("r16", plan2), train2, val2)
    if profile == "full":
        assert folder.name == "lesson2-r16-d0ddf1dd9b"  # the cached run in runs/


def test_smoke_corpus_keeps_every_needed_document():
    from labkit.data import formulary
    from labkit.evaluate.domain import balanced

    docs = {p["doc_id"] for p in L.passages(SMOKE)}
    needed = {d for r in L.test_rows(SMOKE) + balanced(formulary.load_split("train"), SMOKE.raft_rows) for d in r["doc_ids"]}
    assert needed <= docs and len(docs) < 100


def test_prompts_per_kind():
    from labkit.rag import Hit
    from labkit.rag.raft import COT_INSTRUCTION

    rows = L.test_rows(SMOKE)
    contexts = [[Hit("a#0", "a", "text", 1.0, "A")]] * len(rows)
    assert L.prompts_for("plain", rows, None) is None
    rag, raft = L.prompts_for("rag", rows, contexts), L.prompts_for("raft", rows, contexts)
    assert rag[0][0]["content"].startswith(rows[0]["messages"][0]["content"])
    assert raft[0][0]["content"] == f"{L.SYSTEM}\n{COT_INSTRUCTION}" and "[a#0] A" in raft[0][1]["content"]
    with pytest.raises(ValueError, match="kind='cot'"):
        L.prompts_for("cot", rows, contexts)


def test_reply_stats_sort_replies_into_behaviours():
    scores = [{"reply": '{"dose_mg": 5}', "correct": True},
              {"reply": 'No passage answers this question.\n{"answer": "not in the passages"}', "correct": False},
              {"reply": '##begin_quote##x##end_quote##\n{"dose_mg": 50}', "correct": False},
              {"reply": "It is taken twice daily.", "correct": False}]
    stats = L.reply_stats(scores)
    assert stats["behaviour"] == {"right": 0.25, "abstained": 0.25, "invented": 0.25, "no_answer": 0.25}
    assert stats["answer_json"] == 0.75


def _ev(acc, right=0.0, invented=0.5, abstained=0.0, quoted=0.0, verbatim=None, fields=None):
    return {"accuracy": acc, "partial_credit": fields if fields is not None else acc, "answer_json": 1.0, "facts_right": acc,
            "seconds_per_answer": 1.0, "quote": {"quoted": quoted, "verbatim_of_quoted": verbatim},
            "behaviour": {"right": right, "invented": invented, "abstained": abstained, "no_answer": 0.0}}


def _results(base=0.3, ft=0.4, ftr=0.45, p70=0.6, p100=0.62, miss70=0.5, miss100=0.3, miss_base=0.2, miss_ft=0.35,
             verbatim=0.95):
    evals = {"base-rag": _ev(base), "ft": _ev(ft), "ft-rag": _ev(ftr), "raft-p70": _ev(p70, quoted=0.7, verbatim=verbatim),
             "raft-p100": _ev(p100, quoted=0.9, verbatim=verbatim)}
    missing = {"base-rag": _ev(0, right=miss_base), "ft-rag": _ev(0, right=miss_ft), "raft-p70": _ev(0, right=miss70),
               "raft-p100": _ev(0, right=miss100)}
    return {"plan": FULL, "evals": evals, "no_oracle": missing}


def test_claims_hold_on_numbers_that_show_them():
    rows = {c.claim: c for c in L.claims(_results())}
    assert all(c.held is True for c in rows.values()), {k: c.verdict for k, c in rows.items()}
    assert "+30 points" in rows["RAFT beats RAG alone"].ours
    assert "72%" in rows["RAFT beats RAG alone"].article and "35.28" in rows["RAFT beats RAG alone"].paper


def test_claims_fail_on_numbers_that_do_not():
    rows = {c.claim: c for c in L.claims(_results(base=0.5, ftr=0.58, p70=0.55, p100=0.70, miss70=0.3, miss100=0.3,
                                                   verbatim=0.5))}
    assert rows["RAFT beats RAG alone"].verdict == "did not hold: +5 points"
    assert rows["RAFT beats domain fine-tuning + RAG"].verdict.startswith("did not hold: RAFT -3 points")
    assert rows["the 70/30 mix beats always showing the oracle (P = 1.0)"].verdict.startswith("did not hold: P=0.7 -15")
    assert rows["RAFT copes when retrieval misses (no oracle)"].verdict.startswith("did not hold: -5 points")
    assert rows["RAFT's quotes come from the passages"].verdict == "did not hold: 50% verbatim"
    # the mix as good with the oracle but no better without it: partly
    partly = {c.claim: c for c in L.claims(_results(p70=0.6, p100=0.6, miss70=0.3, miss100=0.3))}
    assert partly["the 70/30 mix beats always showing the oracle (P = 1.0)"].held is None


def test_no_learning_gives_no_verdict():
    results = _results(p70=0.0, p100=0.0)
    results["evals"]["raft-p70"]["partial_credit"] = 0.05
    assert all(c.verdict == L.NO_SIGNAL and c.held is None for c in L.claims(results))


def test_p_sweep_and_table_read_the_results():
    results = _results()
    results["runs"] = {a: SimpleNamespace(summary={"best_eval_loss": 0.5}) for a in ("raft-p70", "raft-p100")}
    sweep = L.p_sweep(results)
    assert [r["P"] for r in sweep] == [0.7, 1.0] and sweep[0]["no oracle: right"] == 0.5
    table = L.e9_table(results)
    assert list(table) == ["base + RAG", "domain FT, no RAG", "domain FT + RAG", "RAFT P=0.7 + RAG", "RAFT P=1.0 + RAG"]
    assert table["domain FT, no RAG"]["no oracle: right"] is None and table["RAFT P=0.7 + RAG"]["quotes"] == 0.7
