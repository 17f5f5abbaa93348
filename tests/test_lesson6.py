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
    # the full plan's answers keep the length they were cached with; only smoke shortens them
    assert FULL.answer_tokens == L.COT_TOKENS and SMOKE.answer_tokens < L.COT_TOKENS
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


# ---------------------------------------------------------------------------------------------
# lesson6_read: the notebook's tables, figures and sentences, on hand-made results (no training)


def _read_results(**kw):
    """``_results`` with what the readers also need: rows, replies, runs, retrieval, timings."""
    from labkit.lessons import lesson6_read  # noqa: F401  (imported here so a broken reader fails only these tests)

    results = _results(**kw)
    rows = [{"id": f"q{i}", "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": f"question {i}"},
                                         {"role": "assistant", "content": '{"dose_mg": 5}'}]} for i in range(3)]
    for source in (results["evals"], results["no_oracle"]):
        for arm, e in source.items():
            reply = ('##begin_quote##Dose 5 mg.##end_quote##\n{"dose_mg": 5}' if arm.startswith("raft")
                     else '{"dose_mg": 5}')
            e.update(n=30, scores=[{"id": r["id"], "reply": reply, "correct": i == 0} for i, r in enumerate(rows)])
    results.update(rows=rows, retrieval={"hit@1": 0.6, "hit@3": 0.9},
                   runs={a: SimpleNamespace(summary={"best_eval_loss": 0.5, "steps": 24, "tokens_trained": 35000,
                                                     "wall_seconds": 200.0}, reused=True)
                         for a in ("ft", "raft-p70", "raft-p100")})
    return results


def test_read_e9_follows_the_numbers():
    from labkit.lessons import lesson6_read as R

    ahead = R.read_e9(_read_results(base=0.3, ftr=0.45, p70=0.6))
    assert "ahead of it by 30 points (9 of 30 answers)" in ahead and "ahead of it by 15 points" in ahead
    level = R.read_e9(_read_results(base=0.3, ftr=0.6, p70=0.62))
    assert "level with it (+2 points, 1 of 30 answers)" in level
    behind = R.read_e9(_read_results(base=0.7, ftr=0.8, p70=0.5))
    assert "behind it by 20 points" in behind and "behind it by 30 points" in behind
    assert "passages help the fine-tuned model" in R.read_e9(_read_results(ft=0.3, ftr=0.45))
    assert "passages *hurt*" in R.read_e9(_read_results(ft=0.5, ftr=0.3))
    assert "every fact right" in ahead and "3.3 points" in ahead
    assert "95% of those quotes are verbatim" in ahead and "really read" in ahead
    assert "invention" in R.read_e9(_read_results(verbatim=0.5))


def test_e9_frame_has_every_arm_and_the_asked_columns():
    from labkit.lessons import lesson6_read as R

    frame = R.e9_frame(_read_results())
    assert list(frame.index) == ["base + RAG", "domain FT, no RAG", "domain FT + RAG", "RAFT P=0.7 + RAG",
                                 "RAFT P=1.0 + RAG"]
    assert {"accuracy", "fields right", "JSON valid", "quote check", "no oracle"} <= set(frame.columns)
    assert frame.loc["RAFT P=0.7 + RAG", "accuracy"] == "60%"
    assert frame.loc["RAFT P=0.7 + RAG", "quote check"] == "70% quote; 95% of those verbatim"
    assert frame.loc["domain FT, no RAG", "no oracle"] == "not run"
    assert frame.loc["base + RAG", "quote check"] == "no quotes"


def test_robustness_names_who_falls_back_and_who_invents():
    from labkit.lessons import lesson6_read as R

    text = R.read_robustness(_read_results(miss70=0.5, miss100=0.3))
    assert "**RAFT P=0.7 + RAG** falls back best (50% still right)" in text
    assert "No arm says the answer is missing" in text and "near-twin" in text
    results = _read_results()
    results["no_oracle"]["ft-rag"]["behaviour"].update(invented=0.9)
    assert "**domain FT + RAG** invents most (90%" in R.read_robustness(results)
    results["no_oracle"]["raft-p70"]["behaviour"].update(abstained=0.2)
    assert "No arm says the answer is missing" not in R.read_robustness(results)
    assert R.plot_behaviour(results).axes[0].get_title().startswith("Retrieval missed")


def test_sweep_reading_follows_the_numbers():
    from labkit.lessons import lesson6_read as R

    mix_best = R.read_sweep(_read_results(p70=0.6, p100=0.4))
    assert "best accuracy with retrieval is at **P = 0.7**" in mix_best and "ours agrees" in mix_best
    assert "GO_FURTHER = True" in mix_best
    full_best = R.read_sweep(_read_results(p70=0.4, p100=0.6))
    assert "**P = 1**" in full_best and "ours does not show it" in full_best
    assert "ours cannot tell" in R.read_sweep(_read_results(p70=0.6, p100=0.62))
    assert list(R.sweep_frame(_read_results()).index) == [0.7, 1.0]
    assert len(R.plot_sweep(_read_results()).axes[0].lines) == 3  # with, without the oracle, base + RAG


def test_read_claims_and_cost_and_replies():
    from labkit.lessons import lesson6_read as R

    assert R.read_claims(_read_results()) == "Every claim held on this small model."
    failing = R.read_claims(_read_results(base=0.5, ftr=0.58, p70=0.55, p100=0.70))
    assert failing.startswith("Not settled here: RAFT beats RAG alone") and "35,000 training tokens" in failing
    assert "3.3 points" in failing
    assert "1.0×" in R.read_cost(_read_results())  # every hand-made answer took 1.0 s
    table = R.replies_html(_read_results(), ["base-rag", "raft-p70"])
    assert table.count("<tr>") == 4 and "✅" in table and "❌" in table and "<b>«</b>Dose 5 mg." in table
    assert "hit" not in R.read_retrieval(_read_results()) and "90%" in R.read_retrieval(_read_results())


def _built_row(i, has_oracle, doc="drug:buteparex"):
    oracle = [f"{doc}#1"] if has_oracle else []
    order = oracle + [f"{doc}#2", "drug:vefoparex#0", "drug:lenebrelix#1"]
    user = "Passages:\n" + "\n\n".join(f"[{p}] Title\nline one of {p}\nline two" for p in order) + "\n\nQuestion: q?"
    return {"id": f"r{i}", "doc_ids": [doc],
            "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": user},
                         {"role": "assistant", "content": "answer"}],
            "raft": {"has_oracle": has_oracle, "oracle_ids": oracle, "distractor_ids": order[len(oracle):],
                     "order": order, "seed": 0}}


def test_build_reading_and_row_display():
    from labkit.lessons import lesson6_read as R

    rows = [_built_row(i, i < 7) for i in range(10)]
    stats = R.build_stats(rows)
    assert (stats["oracle"], stats["distractors"], stats["same_doc"], stats["same_class"], stats["other"]) == (7, 30, 10, 10, 10)
    assert R.class_of("drug:buteparex") == R.class_of("class:clotting-inhibitor") == "clotting inhibitor"
    assert R.class_of("drug:lenebrelix") == "platelet dampener" and R.class_of("misc:x") is None
    report = {"min": 300, "median": 340, "max": 490, "over": 0, "max_length": 512}
    text = R.read_build(rows, report, 0.7)
    assert "10 (33%) come from a drug of the same class" in text
    assert "**7 of 10 rows (70%) hold the oracle**" in text and "none over the training limit of 512" in text
    assert "**2** over" in R.read_build(rows, {**report, "over": 2}, 0.7)
    examples = R.example_rows(rows)
    assert [r["raft"]["has_oracle"] for r in examples] == [True, False]
    html = R.row_html(examples[0])
    assert html.count("← oracle") == 1 and html.count("← distractor") == 3 and "an oracle row" in html
    assert html.count("background:#dafbe1") == 3  # the oracle's header and both its lines
    assert "<span style='color:#6e7781'>line two</span>" in html and "\nQuestion: q?" in html
