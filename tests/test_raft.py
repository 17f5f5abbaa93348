"""The RAFT builder (labkit.rag.raft): the oracle share, distractors, quotes, seeds, lengths, config errors."""

from __future__ import annotations

import json
import warnings

import pytest

from labkit.config import ConfigError
from labkit.rag import BM25Retriever, Hit, formulary_passages, oracle_contexts
from labkit.rag import raft as R


@pytest.fixture(scope="module")
def passages():
    return formulary_passages(size=160)


@pytest.fixture(scope="module")
def rows():
    from labkit.data import formulary
    from labkit.evaluate.domain import balanced

    return balanced(formulary.load_split("train"), 100)


@pytest.fixture(scope="module")
def tok():
    return R._tokenizer()


@pytest.fixture(scope="module")
def built(rows, passages, tok):
    return R.build_raft(rows, passages, R.RaftConfig(distractors="random", max_length=1024), tokenizer=tok)


def test_exactly_round_p_n_rows_hold_the_oracle(built, rows, passages, tok):
    assert sum(r["raft"]["has_oracle"] for r in built) == 70
    assert [r["id"] for r in built] == [r["id"] for r in rows]  # same rows, same order
    for p, expected in ((0.0, 0), (0.4, 40), (1.0, 100), (0.355, 36)):
        out = R.build_raft(rows[:100], passages, R.RaftConfig(oracle_fraction=p, distractors="random",
                                                              max_length=1024), tokenizer=tok)
        assert sum(r["raft"]["has_oracle"] for r in out) == expected
    assert R.oracle_count(10, 0.25) == 3 and R.oracle_count(3, 0.5) == 2  # half rounds up


def test_distractors_never_hold_an_oracle(built, rows, passages):
    oracles = oracle_contexts(rows, passages)
    for row, oracle in zip(built, oracles):
        gold = {h.passage_id for h in oracle}
        meta = row["raft"]
        assert not gold & set(meta["distractor_ids"])
        if meta["has_oracle"]:
            assert set(meta["order"]) == gold | set(meta["distractor_ids"])
            assert len(meta["distractor_ids"]) == 3
        else:  # distractor-only rows show as many passages as oracle rows: no counting shortcut
            assert not gold & set(meta["order"]) and len(meta["order"]) == 3 + len(gold)
        shown = row["messages"][1]["content"]
        assert all(f"[{pid}]" in shown for pid in meta["order"])


def test_hard_distractors_are_the_retrievers_best_non_oracle_passages(rows, passages, tok):
    bm25 = BM25Retriever(passages)
    out = R.build_raft(rows[:12], passages, R.RaftConfig(max_length=1024), retriever=bm25, tokenizer=tok)
    for row, built_row, oracle in zip(rows[:12], out, oracle_contexts(rows[:12], passages)):
        gold = {h.passage_id for h in oracle}
        ranked = [h.passage_id for h in bm25.retrieve(row["messages"][1]["content"], 20) if h.passage_id not in gold]
        wanted = 3 + (0 if built_row["raft"]["has_oracle"] else len(gold))
        assert built_row["raft"]["distractor_ids"] == ranked[:wanted]
    with pytest.raises(ValueError, match="needs retriever="):
        R.build_raft(rows[:2], passages, R.RaftConfig(), tokenizer=tok)


def test_answers_quote_the_oracle_verbatim_then_give_the_json(built, rows, passages):
    from labkit.evaluate.domain import first_json_object

    oracles = oracle_contexts(rows, passages)
    for row, oracle in zip(built, oracles):
        answer = row["messages"][-1]["content"]
        assert first_json_object(answer) == row["answer"] == R.final_json(answer)
        if row["raft"]["has_oracle"]:
            (quote,) = R.quotes(answer)
            assert quote == row["raft"]["quote"] and any(quote in h.text for h in oracle)
        else:
            assert R.quotes(answer) == [] and R.NO_ORACLE_REASON in answer
    # the built answers pass the quote check against the passages each row was shown
    shown = [[Hit(pid, "", _text(passages, pid), 0.0) for pid in r["raft"]["order"]] for r in built]
    check = R.quote_check([r["messages"][-1]["content"] for r in built], shown)
    assert check["quoted"] == 0.7 and check["verbatim"] == 0.7 and check["verbatim_of_quoted"] == 1.0


def _text(passages, pid):
    return next(p["text"] for p in passages if p["id"] == pid)


def test_no_oracle_targets_and_plain_answers(rows, passages, tok):
    abstain = R.build_raft(rows[:10], passages, R.RaftConfig(no_oracle_target="abstain", distractors="random",
                                                            max_length=1024), tokenizer=tok)
    for row in abstain:
        answer = row["messages"][-1]["content"]
        assert R.abstained(answer) != row["raft"]["has_oracle"]
        if not row["raft"]["has_oracle"]:
            assert R.final_json(answer) == R.ABSTAIN_ANSWER
    plain = R.build_raft(rows[:10], passages, R.RaftConfig(cot=False, distractors="random", max_length=1024),
                         tokenizer=tok)
    assert all(json.loads(r["messages"][-1]["content"]) == r["answer"] for r in plain)
    assert R.COT_INSTRUCTION not in plain[0]["messages"][0]["content"]


def test_same_seed_same_set_other_seed_other_set(rows, passages, tok, built):
    again = R.build_raft(rows, passages, R.RaftConfig(distractors="random", max_length=1024), tokenizer=tok)
    assert again == built
    other = R.build_raft(rows, passages, R.RaftConfig(distractors="random", max_length=1024, seed=1), tokenizer=tok)
    assert other != built
    assert [r["raft"]["has_oracle"] for r in other] != [r["raft"]["has_oracle"] for r in built]
    assert {r["raft"]["seed"] for r in other} == {1}


def test_rows_fit_max_length(rows, passages, tok):
    cfg = R.RaftConfig(distractors="random", max_length=1024)
    report = R.length_report(R.build_raft(rows[:20], passages, cfg, tokenizer=tok), tokenizer=tok, max_length=1024)
    assert report["rows"] == 20 and report["min"] <= report["median"] <= report["max"] <= 1024 and report["over"] == 0
    tight = int(report["median"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trimmed = R.build_raft(rows[:20], passages, cfg.replace(max_length=tight), tokenizer=tok)
    assert "lost distractors" in str(caught[0].message)
    assert max(R.row_tokens(r, tok) for r in trimmed) <= tight
    assert any(r["raft"].get("dropped") for r in trimmed)
    with pytest.raises(ValueError, match=rf"over max_length={tight}.*overflow='trim'"):
        R.build_raft(rows[:20], passages, cfg.replace(max_length=tight, overflow="error"), tokenizer=tok)
    with pytest.raises(ValueError, match="even with no distractors"):
        R.build_raft(rows[:3], passages, cfg.replace(max_length=40), tokenizer=tok)


@pytest.mark.parametrize("field, value", [
    ("oracle_fraction", 1.5), ("oracle_fraction", "most"), ("num_distractors", -1), ("num_distractors", 2.5),
    ("distractors", "nearest"), ("no_oracle_target", "guess"), ("cot", "yes"), ("seed", 0.5), ("max_length", 8),
    ("overflow", "drop"), ("depth", 0), ("system", 3)])
def test_bad_config_values_name_field_and_value(field, value):
    with pytest.raises(ConfigError) as caught:
        R.RaftConfig(**{field: value})
    message = str(caught.value)
    assert message.startswith(f"{field}={value!r}:") and "\n" not in message


def test_config_reads_from_a_mapping():
    cfg = R.RaftConfig.from_dict({"oracle_fraction": "0.4", "num_distractors": 2})
    assert cfg.oracle_fraction == 0.4 and cfg.num_distractors == 2 and cfg.fingerprint() != R.RaftConfig().fingerprint()


def test_quote_check_counts_hand_made_replies():
    context = [Hit("a#0", "a", "Usual adult dose: 5 mg twice daily.\n", 1.0), Hit("b#1", "b", "Class: calming agent.", 0.5)]
    replies = [
        'Passage [a#0] says: ##begin_quote##Usual adult dose: 5 mg twice daily.##end_quote##\n{"dose_mg": 5}',  # verbatim
        "##begin_quote## Class: calming agent. ##end_quote##\n{}",  # verbatim once stripped
        "##begin_quote##Usual adult dose: 50 mg twice daily.##end_quote##\n{}",  # invented
        "##begin_quote##Class: calming agent.##end_quote## and ##begin_quote##made up##end_quote##",  # one of two invented
        '{"dose_mg": 5}',  # no quote
    ]
    check = R.quote_check(replies, [context] * 5)
    assert check == {"n": 5, "quoted": 0.8, "verbatim": 0.4, "verbatim_of_quoted": 0.5}
    assert R.quote_check(["no quote"], [["x"]])["verbatim_of_quoted"] is None
    with pytest.raises(ValueError, match="2 replies for 1 contexts"):
        R.quote_check(["a", "b"], [[]])


def test_without_oracle_drops_the_oracle_and_keeps_k(rows, passages):
    bm25 = BM25Retriever(passages)
    contexts = R.without_oracle(bm25, rows[:9], passages, k=3)
    for context, oracle in zip(contexts, oracle_contexts(rows[:9], passages)):
        assert len(context) == 3 and not {h.passage_id for h in context} & {h.passage_id for h in oracle}
