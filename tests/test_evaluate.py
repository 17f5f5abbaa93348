"""Yardsticks: scoring equals hand computations; the base model knows the world but not Northwind."""

from __future__ import annotations

import json
import math

import pytest

from labkit.data import formulary as F
from labkit.evaluate.domain import (
    balanced, evaluate_domain, field_match, first_json_object, format_prompt, score_reply, summarize, text_match,
)
from labkit.evaluate.probe import (
    CHECKS, choice_logprobs, check_reply, general_probe, generation_checks, sequence_logprobs,
)
from labkit.evaluate.table import compare

ROW = {"id": "r1", "category": "interaction",
       "messages": [{"role": "user", "content": "Do A and B interact?"},
                    {"role": "assistant", "content": '{"severity": "major", "mechanism": "additive bleeding", "action": "avoid"}'}],
       "answer": {"severity": "major", "mechanism": "additive bleeding", "action": "avoid"}}
REF = ROW["messages"][-1]["content"]


# -- metrics on toys (no model) -------------------------------------------------------------------

def test_field_and_text_matching():
    assert field_match("Major ", "major") and field_match("additive-bleeding", "additive bleeding")
    assert field_match("5 mg", 5) and field_match(5.0, 5) and field_match("5", 5)
    assert not field_match(None, "major") and not field_match("ten", 10) and not field_match("50", 5)
    assert text_match("Sure: the answer is Paris.", "paris")
    assert text_match("paris is the capital of france", "The capital of France is Paris.")  # same words
    assert not text_match("Lyon", "Paris")


def test_first_json_object_finds_json_inside_prose():
    assert first_json_object('Sure! ```json\n{"a": 1}\n``` done') == {"a": 1}
    assert first_json_object("{broken {\"b\": [1, 2]}") == {"b": [1, 2]}
    assert first_json_object("no json here") is None


def test_score_reply_by_hand():
    exact = score_reply(ROW, REF, REF)
    assert exact["json_valid"] and exact["schema_valid"] and exact["correct"] and exact["field_score"] == 1
    fenced = score_reply(ROW, "```json\n" + REF + "\n```", REF)
    assert not fenced["json_valid"] and fenced["correct"]  # right facts, wrong shape
    two_of_three = score_reply(ROW, '{"severity": "major", "mechanism": "additive bleeding", "action": "monitor"}', REF)
    assert two_of_three["json_valid"] and two_of_three["schema_valid"] and not two_of_three["correct"]
    assert two_of_three["field_score"] == pytest.approx(2 / 3)
    off_schema = score_reply(ROW, '{"interaction": "bad"}', REF)
    assert off_schema["json_valid"] and not off_schema["schema_valid"] and off_schema["field_score"] == 0
    text_row = {**ROW, "messages": [ROW["messages"][0], {"role": "assistant", "content": "Major interaction: additive bleeding. Avoid the combination."}]}
    lenient = score_reply(text_row, "This is major: bleeding adds up, so avoid it.", text_row["messages"][-1]["content"])
    assert lenient["variant"] == "text" and lenient["json_valid"] is None and lenient["correct"]
    plain = {"messages": [{"role": "user", "content": "Capital of France?"}, {"role": "assistant", "content": "Paris"}]}
    assert score_reply(plain, "It is Paris.", "Paris")["correct"]


def test_summarize_by_hand():
    preds = [score_reply(ROW, REF, REF), score_reply(ROW, "nope", REF),
             score_reply(ROW, '{"severity": "major", "mechanism": "none", "action": "avoid"}', REF)]
    report = summarize(preds, seconds=1.0)
    assert report.accuracy == pytest.approx(1 / 3)
    assert report.json_valid_rate == pytest.approx(2 / 3) and report.schema_valid_rate == pytest.approx(2 / 3)
    assert report.field_accuracy == pytest.approx({"severity": 2 / 3, "mechanism": 1 / 3, "action": 2 / 3})
    assert report.partial_credit == pytest.approx((1 + 0 + 2 / 3) / 3)
    assert report.per_category == {"interaction": pytest.approx(1 / 3)}
    assert set(report.summary()) == {"accuracy", "partial_credit", "json_valid", "schema_valid"}
    assert "33.3%" in str(report) and "schema-valid" in report._repr_html_()


def test_format_prompt_spells_out_the_schema():
    prompt = format_prompt()
    for fields in F.ANSWER_SCHEMA.values():
        for key, allowed in fields.items():
            assert f'"{key}"' in prompt
            if isinstance(allowed, list):
                assert all(value in prompt for value in allowed)
    example = json.loads(prompt.rsplit("Example: ", 1)[1])
    assert example in [r["answer"] for r in F.load_split("train")]  # the example is a true answer


def test_balanced_subset_round_robins():
    items = [{"category": c, "i": i} for i, c in enumerate("aaaabbc")]
    assert [x["i"] for x in balanced(items, 5)] == [0, 4, 6, 1, 5]


def test_compare_deltas_and_rendering():
    table = compare({"lora": {"accuracy": 0.8, "train_seconds": 100.0},
                     "base": {"accuracy": 0.05, "train_seconds": 0.0},
                     "full": {"accuracy": 0.85, "eval_loss": 0.3}})
    assert list(table.arms) == ["base", "lora", "full"]  # the baseline is read first
    assert table.delta("lora", "accuracy") == pytest.approx(0.75)
    assert table.delta("full", "train_seconds") is None and table.delta("base", "accuracy") == 0
    text, md, page = str(table), table.to_markdown(), table._repr_html_()
    assert "+75.0 pts" in text and "| lora | 80.0% (+75.0 pts) |" in md and "–" in text
    assert "#1a7f37" in page  # accuracy up is green
    slower = compare({"base": {"train_seconds": 10.0}, "x": {"train_seconds": 20.0}})
    assert "#cf222e" in slower._repr_html_()  # more seconds is red
    assert {r["arm"] for r in table.records()} == {"base", "lora", "full"}
    with pytest.raises(KeyError, match="baseline 'zero'"):
        compare({"a": {"m": 1.0}}, baseline="zero")


def test_generation_check_judging():
    assert check_reply(0, "15 x 23 = 345.") and not check_reply(0, "It is 335.")
    assert check_reply(1, "The capital of France is Paris.")
    assert not check_reply(1, '{"severity": "none", "mechanism": "Paris"}')  # the domain leaked in
    assert check_reply(2, "Waves fold on the shore\nsalt wind carries gull voices\nthe tide keeps its time")
    assert not check_reply(3, "Patient presents with a moderate interaction.")
    assert len(CHECKS) == 4


# -- the real model ---------------------------------------------------------------------------------

THREE = [
    {"id": "t1", "subject": "geography", "question": "What is the capital of France?", "choices": ["Paris", "Rome", "Washington, D.C."], "answer_index": 0},
    {"id": "t2", "subject": "math", "question": "What is 2 + 2?", "choices": ["4", "22"], "answer_index": 0},
    {"id": "t3", "subject": "animals", "question": "Which animal barks?", "choices": ["A dog", "A cat", "A fish"], "answer_index": 0},
]


def _by_hand(lm, question: str, choice: str, prefix: str) -> float:
    """One sequence at a time, no batching, no cache: sum of log p(choice token | everything before)."""
    import torch

    tok = lm.tokenizer
    context = tok.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True, tokenize=False)
    ctx = tok(context + prefix, add_special_tokens=False)["input_ids"]
    cont = tok((" " if prefix else "") + choice, add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        logits = lm.model(torch.tensor([ctx + cont])).logits[0]
    logp = torch.log_softmax(logits.double(), dim=-1)
    return sum(float(logp[len(ctx) + k - 1, token]) for k, token in enumerate(cont))


def test_probe_scoring_equals_hand_computed_log_likelihood(smollm):
    prefix = "The answer is"
    hand = [[_by_hand(smollm, it["question"], c, prefix) for c in it["choices"]] for it in THREE]
    fast = choice_logprobs(smollm, [it["question"] for it in THREE], [it["choices"] for it in THREE],
                           batch_size=2, answer_prefix=prefix)
    plain = sequence_logprobs(smollm, [(it["question"], c) for it in THREE for c in it["choices"]],
                              batch_size=3, answer_prefix=prefix)
    flat_hand = [x for row in hand for x in row]
    assert [s for s, _ in plain] == pytest.approx(flat_hand, abs=2e-3)
    assert [s for row in fast for s, _ in row] == pytest.approx(flat_hand, abs=2e-3)
    report = general_probe(smollm, items=THREE, answer_prefix=prefix)
    picks = [max(range(len(row)), key=row.__getitem__) for row in hand]
    assert [r["predicted"] for r in report.results] == [it["choices"][p] for it, p in zip(THREE, picks)]
    assert report.accuracy == pytest.approx(sum(p == it["answer_index"] for p, it in zip(picks, THREE)) / 3)
    assert report.chance == pytest.approx((1 / 3 + 1 / 2 + 1 / 3) / 3)
    mean = general_probe(smollm, items=THREE, answer_prefix=prefix, normalize="mean")
    n_tokens = [[n for _, n in row] for row in fast]
    assert mean.results[0]["scores"] == pytest.approx([h / n for h, n in zip(hand[0], n_tokens[0])], abs=2e-3)


def test_base_model_knows_the_world_but_not_northwind(smollm):
    probe = general_probe(smollm)  # smoke: 60 items, ten per subject
    assert probe.n == 60 and probe.chance == pytest.approx(0.25)
    assert probe.accuracy >= probe.chance + 0.15, str(probe)
    domain = evaluate_domain(smollm, F.load_split("test"))  # smoke: 18 rows, six per category
    assert domain.n == 18 and set(domain.per_category) == {"interaction", "dosing", "profile"}
    assert domain.accuracy <= 0.2, str(domain)
    assert domain.json_valid_rate is not None and domain.schema_valid_rate <= domain.json_valid_rate


def test_generation_checks_run_on_the_base_model(smollm):
    checks = generation_checks(smollm, max_new_tokens=24)
    assert len(checks) == 4 and all(c.reply for c in checks)
    assert checks[1].passed, str(checks)  # the base model says Paris
    assert "generation checks" in str(checks) and "<table>" in checks._repr_html_()
