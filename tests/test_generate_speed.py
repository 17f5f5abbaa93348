"""Faster generation changes no answer: sorting prompts by length and stopping a JSON answer once
it is complete return the same replies (up to the first JSON object), in the original order, and
the same scores. Speed itself is measured in benchmarks/generate_throughput.py, never here."""

from __future__ import annotations

import torch

from labkit import models
from labkit.data import formulary
from labkit.evaluate import domain

# Prompts of different lengths: base SmolLM2 answers the first two with JSON plus trailing prose or
# a code fence (the stop must cut those), the last with prose that has no JSON (it must run on).
PROMPTS = [
    'Copy this JSON exactly: {"city": "Paris", "country": "France"}',
    'Write a JSON object with keys "name" and "age" for a person called Ann aged 30, then explain it.',
    "What is the capital of France?",
]


def _feed(tok, reply: str, rows=None):
    """Run the stop criterion over ``reply`` token by token; the step at which it stopped, or None."""
    prompt = tok("<|im_start|>assistant\n", add_special_tokens=False)["input_ids"]
    ids = tok(reply, add_special_tokens=False)["input_ids"]
    criteria = models.json_stop_criteria(tok, len(prompt), rows)
    for step in range(1, len(ids) + 1):
        done = criteria(torch.tensor([prompt + ids[:step]]), None)
        assert done.shape == (1,) and done.dtype == torch.bool
        if bool(done[0]):
            return tok.decode(ids[:step])
    return None


def test_stop_after_the_closing_brace_keeps_one_token_of_what_follows(smollm):
    tok = smollm.tokenizer
    stopped = _feed(tok, '{"severity": "moderate", "action": "avoid"}\n\nThis means the two drugs add up.')
    assert stopped is not None and stopped.startswith('{"severity": "moderate", "action": "avoid"}\n\n')
    tail = stopped[len('{"severity": "moderate", "action": "avoid"}'):]
    assert tail.strip() and len(tail.strip()) < len("This means"), tail
    # a nested object does not end the answer; the outer one does
    stopped = _feed(tok, '{"a": {"b": 1}, "c": 2} and more text')
    assert stopped is not None and stopped.startswith('{"a": {"b": 1}, "c": 2}')
    # a strict reader's verdict is the same on the cut reply as on the whole one
    assert domain.first_json_object(stopped) == {"a": {"b": 1}, "c": 2}


def test_stop_leaves_non_json_and_unflagged_rows_alone(smollm):
    tok = smollm.tokenizer
    assert _feed(tok, "The capital of France is Paris. It is known for the Eiffel Tower.") is None
    assert _feed(tok, "Use {curly} braces like this } and that {") is None  # first { is not JSON
    assert _feed(tok, '{"a": 1}   ') is None  # only blank after the object: wait for text or EOS
    assert _feed(tok, '{"a": 1} then prose', rows=[False]) is None  # row not flagged


def test_sorted_and_stopped_replies_match_unsorted_unstopped_in_order(smollm):
    # One batch for both, so every row sees the same padding and the numbers are the same.
    plain = models.generate_batch(smollm, PROMPTS, max_new_tokens=40, batch_size=len(PROMPTS),
                                  sort_by_length=False, stop_at_json=False)
    fast = models.generate_batch(smollm, PROMPTS, max_new_tokens=40, batch_size=len(PROMPTS),
                                 sort_by_length=True, stop_at_json=True)
    assert len(fast) == len(PROMPTS)
    cut = 0
    for a, b in zip(plain, fast):
        end = models.first_json_end(a)
        if end is None:
            assert b == a
        else:
            assert b.startswith(a[:end]) and a.startswith(b), (a, b)
            cut += len(b) < len(a)
    assert cut >= 1, f"no reply was cut, so the stop was not exercised: {plain}"
    assert "paris" in fast[2].lower()  # order restored


def test_evaluator_scores_unchanged_and_seconds_sum_to_total(smollm):
    rows = formulary.load_split("test")[:4]
    shots = domain.balanced(formulary.load_split("train"), 3)
    report = domain.evaluate_domain(smollm, rows, shots=shots, limit=len(rows), max_new_tokens=24,
                                    batch_size=len(rows))
    assert abs(sum(p["seconds"] for p in report.predictions) - report.seconds) < 1e-9
    assert [p["row_index"] for p in sorted(report.predictions, key=lambda p: p["row_index"])] == [0, 1, 2, 3]
    messages, references = zip(*(domain._prompt(row, None, shots) for row in rows))
    by_row = {p["row_index"]: p for p in report.predictions}
    unstopped = models.generate_batch(smollm, list(messages), max_new_tokens=24, batch_size=len(rows))
    for i, (row, reply, ref) in enumerate(zip(rows, unstopped, references)):
        want, got = domain.score_reply(row, reply, ref), by_row[i]
        for key in ("json_valid", "schema_valid", "parsed", "fields", "correct"):
            assert got[key] == want[key], (key, got["reply"], reply)


def test_generate_timed_seconds_sum_to_total(smollm):
    timed = models.generate_timed(smollm, PROMPTS, max_new_tokens=4, batch_size=2)
    assert timed["batches"] == 2
    assert abs(sum(timed["seconds"]) - timed["total_seconds"]) < 1e-9
    assert all(s > 0 for s in timed["seconds"])
    assert timed["prompt_tokens"] == [len(smollm.tokenizer(smollm.tokenizer.apply_chat_template(
        models.to_messages(p), add_generation_prompt=True, tokenize=False), add_special_tokens=False)["input_ids"])
        for p in PROMPTS]
