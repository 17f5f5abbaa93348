"""Domain accuracy on held-out questions: does the model give the right answer, in the right shape?

For each row the model answers the conversation up to its last assistant turn (greedy, batched),
and the reply is compared with the reference:

* **JSON answers** - ``json_valid`` is strict: the whole reply must be one JSON object, as a
  program consuming it would need. The facts are then read from the first JSON object found in
  the reply (so a model that wraps correct JSON in a code fence is scored right on facts but
  wrong on format), and compared field by field: strings ignoring case and spacing, numbers
  as numbers ("5", 5 and "5 mg" all match 5).
* **free-text answers** - lenient: for formulary rows the facts are read from the wording with
  :func:`labkit.data.formulary.read_text_answer`; for other rows the reply must contain the
  reference (case, punctuation and spacing ignored) or share 80% of its words.

A row's prompt is its own conversation by default, or one given per row (``prompts=``: a RAG prompt
with retrieved passages, say). Each prediction records its prompt's length in tokens and its share
of generation time, so cost per answer sits beside accuracy.

``accuracy`` is the share of rows with *every* field right; ``field_accuracy`` the share per field.
``schema_valid_rate`` is stricter than ``json_valid_rate``: valid JSON with exactly the expected
keys and (for formulary categories) only allowed values - what "format consistency" means to a
program reading the answers. Few-shot prompting tends to fix the first, not the second.
"""

from __future__ import annotations

import html
import json
import re
import time
from dataclasses import dataclass, field
from typing import Callable

from labkit.models import GENERATE_BATCH_SIZE, LoadedModel, generate_timed
from labkit.paths import profile

SMOKE_ROWS = 18  # six per formulary category


def balanced(items: list[dict], limit: int, key: str = "category") -> list[dict]:
    """The first ``limit`` items taken round-robin over ``item[key]``, so a subset stays balanced."""
    groups: dict[object, list[dict]] = {}
    for item in items:
        groups.setdefault(item.get(key), []).append(item)
    queues = [list(g) for g in groups.values()]
    picked: list[dict] = []
    while len(picked) < limit and any(queues):
        for queue in queues:
            if queue and len(picked) < limit:
                picked.append(queue.pop(0))
    return picked


def format_prompt(schema: dict | None = None, intro: str | None = None, example: dict | None = None) -> str:
    """A careful system prompt that spells the JSON format out: the prompt-only baseline.

    Defaults to the formulary's :data:`~labkit.data.formulary.ANSWER_SCHEMA`. This is what
    "just prompt it better" looks like; the lesson compares its JSON-valid rate with a LoRA's.
    Measured on SmolLM2-135M over the 150 test rows: the short system prompt and this careful one
    both give 0% JSON-valid (the base model answers in prose); adding three worked examples
    (``shots``) gives 99% JSON-valid but only 33% schema-valid, and 3% accuracy.
    """
    if schema is None:
        from labkit.data.formulary import ANSWER_SCHEMA

        schema = ANSWER_SCHEMA
        example = example or {"severity": "major", "mechanism": "additive bleeding", "action": "avoid"}
    intro = intro or "You answer questions about the Northwind formulary (fictional drugs)."
    lines = [intro, "Reply with exactly one JSON object on one line and nothing else: no code fences, no explanation."]
    for category, fields in schema.items():
        keys = ", ".join(f'"{k}": ...' for k in fields)
        article = "an" if category[:1].lower() in "aeiou" else "a"
        lines.append(f"For {article} {category} question use {{{keys}}}, where")
        for key, allowed in fields.items():
            what = "an integer" if allowed == "integer" else "one of: " + ", ".join(allowed)
            lines.append(f"- {key} is {what}")
        if example is None:
            example = {k: (1 if v == "integer" else v[-1]) for k, v in fields.items()}
    lines.append("Example: " + json.dumps(example))
    return "\n".join(lines)


def first_json_object(text: str) -> dict | None:
    """The first JSON object anywhere in ``text`` (inside prose or a code fence), else None."""
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return None


def _norm(value) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", str(value).lower()).split())


def field_match(predicted, expected) -> bool:
    """One field: numbers compare as numbers, strings ignoring case, punctuation and spacing."""
    if isinstance(expected, (int, float)) and not isinstance(expected, bool):
        number = re.match(r"\s*(-?\d+(?:\.\d+)?)", str(predicted)) if predicted is not None else None
        return bool(number) and float(number.group(1)) == float(expected)
    return predicted is not None and _norm(predicted) == _norm(expected)


def text_match(reply: str, reference: str) -> bool:
    """Lenient free-text match for rows with no structured answer."""
    got, want = _norm(reply), _norm(reference)
    if want and want in got:
        return True
    got_words, want_words = got.split(), want.split()
    common = sum(min(got_words.count(w), want_words.count(w)) for w in set(want_words))
    if not common:
        return False
    precision, recall = common / len(got_words), common / len(want_words)
    return 2 * precision * recall / (precision + recall) >= 0.8


@dataclass
class DomainReport:
    accuracy: float
    json_valid_rate: float | None  # None when no row expects JSON
    schema_valid_rate: float | None
    field_accuracy: dict[str, float]
    per_category: dict[str, float]
    n: int
    seconds: float
    predictions: list[dict] = field(default_factory=list, repr=False)

    @property
    def partial_credit(self) -> float:
        """Mean share of fields right per row (kinder than ``accuracy``)."""
        return sum(p["field_score"] for p in self.predictions) / self.n if self.n else 0.0

    @property
    def seconds_per_answer(self) -> float | None:
        """Mean generation seconds per answer (a batch's time shared by its rows); None if not timed."""
        return _mean(p.get("seconds") for p in self.predictions)

    @property
    def prompt_tokens_per_answer(self) -> float | None:
        """Mean prompt length in tokens, chat template included; None if not counted."""
        return _mean(p.get("prompt_tokens") for p in self.predictions)

    def summary(self) -> dict[str, float]:
        out = {"accuracy": self.accuracy, "partial_credit": self.partial_credit}
        if self.json_valid_rate is not None:
            out["json_valid"] = self.json_valid_rate
            out["schema_valid"] = self.schema_valid_rate
        return out

    def to_dict(self, examples: int = 6) -> dict:
        """The report as a JSON-able dict (the shape every lesson caches beside its runs): the scores,
        the first ``examples`` answers in full, and every answer briefly, so a subset's scores and any
        reply can be read back without generating again."""
        return {"accuracy": self.accuracy, "partial_credit": self.partial_credit,
                "json_valid": self.json_valid_rate, "schema_valid": self.schema_valid_rate,
                "per_category": self.per_category, "field_accuracy": self.field_accuracy,
                "n": self.n, "seconds": self.seconds,
                "seconds_per_answer": self.seconds_per_answer,
                "prompt_tokens_per_answer": self.prompt_tokens_per_answer,
                "examples": [{k: p[k] for k in ("question", "reply", "reference", "correct")}
                             for p in self.predictions[:examples]],
                "scores": [{k: p.get(k) for k in ("id", "reply", "field_score", "correct", "json_valid",
                                                   "schema_valid")} for p in self.predictions]}

    def mistakes(self, n: int = 5) -> list[dict]:
        return [p for p in self.predictions if not p["correct"]][:n]

    def __str__(self) -> str:
        valid = "" if self.json_valid_rate is None else \
            f", JSON-valid {self.json_valid_rate:.0%}, schema-valid {self.schema_valid_rate:.0%}"
        lines = [f"domain accuracy {self.accuracy:.1%} on {self.n} rows{valid} ({self.seconds:.0f} s)"]
        if self.seconds_per_answer is not None and self.prompt_tokens_per_answer is not None:
            lines.append(f"  cost: {self.seconds_per_answer:.2f} s and {self.prompt_tokens_per_answer:.0f} "
                         "prompt tokens per answer")
        lines.append("  per category: " + ", ".join(f"{k} {v:.0%}" for k, v in self.per_category.items()))
        lines.append("  per field:    " + ", ".join(f"{k} {v:.0%}" for k, v in self.field_accuracy.items()))
        for p in self.mistakes(3):
            lines.append(f"  e.g. {p['question'][:60]!r} -> {p['reply'][:70]!r}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        valid = "" if self.json_valid_rate is None else \
            f", JSON-valid <b>{self.json_valid_rate:.0%}</b>, schema-valid <b>{self.schema_valid_rate:.0%}</b>"
        cats = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{v:.0%}</td></tr>" for k, v in self.per_category.items())
        wrong = "".join(
            f"<tr><td>{html.escape(p['question'])}</td><td><code>{html.escape(p['reply'])}</code></td>"
            f"<td><code>{html.escape(p['reference'])}</code></td></tr>" for p in self.mistakes(5))
        return (f"Domain accuracy <b>{self.accuracy:.1%}</b> on {self.n} rows{valid} ({self.seconds:.0f} s)"
                f"<table><tr><th>category</th><th>accuracy</th></tr>{cats}</table>"
                + (f"<details><summary>some mistakes</summary><table><tr><th>question</th><th>reply</th>"
                   f"<th>reference</th></tr>{wrong}</table></details>" if wrong else ""))


def _prompt(row: dict, system: str | None, shots: list[dict] | None = None) -> tuple[list[dict], str]:
    turns = row["messages"]
    last = max(i for i, t in enumerate(turns) if t["role"] == "assistant")
    prompt = [dict(t) for t in turns[:last]]
    if system is not None:
        prompt = [t for t in prompt if t["role"] != "system"]
        prompt.insert(0, {"role": "system", "content": system})
    if shots:  # worked examples go after the system prompt, before the real question
        examples = [dict(t) for shot in shots for t in shot["messages"] if t["role"] != "system"]
        at = 1 if prompt and prompt[0]["role"] == "system" else 0
        prompt[at:at] = examples
    return prompt, turns[last]["content"]


def _schema_ok(obj, expected: dict | None, category) -> bool:
    if not isinstance(obj, dict) or expected is None or set(obj) != set(expected):
        return False
    from labkit.data.formulary import ANSWER_SCHEMA

    spec = ANSWER_SCHEMA.get(category) if set(ANSWER_SCHEMA.get(category, {})) == set(expected) else None
    if spec is None:
        return True
    for key, allowed in spec.items():
        value = obj[key]
        if allowed == "integer" and not (isinstance(value, int) and not isinstance(value, bool)):
            return False
        if isinstance(allowed, list) and value not in allowed:
            return False
    return True


def score_reply(row: dict, reply: str, reference: str) -> dict:
    """Everything about one prediction: validity, the parsed answer, per-field matches."""
    try:
        expected_obj = json.loads(reference)
    except json.JSONDecodeError:
        expected_obj = None
    is_json = isinstance(expected_obj, dict)
    category = row.get("category")
    expected = row.get("answer") if isinstance(row.get("answer"), dict) else expected_obj
    question = next((t["content"] for t in reversed(row["messages"]) if t["role"] == "user"), "")
    out = {"id": row.get("id"), "category": category, "question": question, "reply": reply, "reference": reference,
           "variant": "json" if is_json else "text", "json_valid": None, "schema_valid": None,
           "parsed": None, "fields": {}}
    if is_json:
        try:
            strict = json.loads(reply.strip())
        except json.JSONDecodeError:
            strict = None
        out["json_valid"] = isinstance(strict, dict)
        out["schema_valid"] = _schema_ok(strict, expected, category)
        out["parsed"] = strict if isinstance(strict, dict) else first_json_object(reply)
    elif expected is not None:
        from labkit.data.formulary import ANSWER_SCHEMA, read_text_answer

        if category in ANSWER_SCHEMA:
            out["parsed"] = read_text_answer(category, reply)
    if expected is not None and (out["parsed"] is not None or is_json):
        parsed = out["parsed"] or {}
        out["fields"] = {k: field_match(parsed.get(k), v) for k, v in expected.items()}
        out["correct"] = all(out["fields"].values())
        out["field_score"] = sum(out["fields"].values()) / len(expected) if expected else 0.0
    else:
        out["correct"] = text_match(reply, reference)
        out["field_score"] = float(out["correct"])
    return out


def evaluate_domain(
    loaded: LoadedModel,
    rows: list[dict],
    max_new_tokens: int | None = None,
    batch_size: int = GENERATE_BATCH_SIZE,
    system: str | None = None,
    limit: int | None = None,
    shots: list[dict] | None = None,
    prompts: list[list[dict]] | Callable[[dict], list[dict]] | None = None,
) -> DomainReport:
    """Answer every row's question with ``loaded`` and score the replies (see the module doc).

    Args:
        rows: chat rows; the last assistant turn is the reference, ``answer`` (if present) the truth.
        max_new_tokens: default: the longest reference in tokens plus 8, so nothing is cut short
            and no time is spent on rambling.
        system: replace each row's system prompt (e.g. with :func:`format_prompt`).
        shots: rows whose question/answer turns are shown before each question (few-shot
            prompting), e.g. ``balanced(load_split("train"), 3)``.
        limit: evaluate a category-balanced subset; default all rows in the ``full`` profile,
            ``SMOKE_ROWS`` in ``smoke``.
        prompts: the messages to send instead of each row's conversation: a list parallel to
            ``rows``, or a function of the row (e.g. a RAG prompt with retrieved passages).
            Excludes ``system`` and ``shots``.

    Every prediction carries ``prompt_tokens``, ``seconds`` and ``row_index`` (its place in ``rows``).
    """
    rows = list(rows)
    if prompts is not None and (system is not None or shots):
        raise ValueError("evaluate_domain: prompts= replaces the whole prompt; give no system= or shots= with it")
    if isinstance(prompts, list) and len(prompts) != len(rows):
        raise ValueError(f"evaluate_domain: {len(prompts)} prompts for {len(rows)} rows")
    if limit is None:
        limit = SMOKE_ROWS if profile() == "smoke" else len(rows)
    picked = balanced([{"category": row.get("category"), "index": i} for i, row in enumerate(rows)], limit)
    if not picked:
        raise ValueError("evaluate_domain: no rows to evaluate")
    indices = [p["index"] for p in picked]
    selected = [rows[i] for i in indices]
    messages, references = zip(*(_prompt(row, system, shots) for row in selected))
    if callable(prompts):
        messages = [prompts(row) for row in selected]
    elif prompts is not None:
        messages = [prompts[i] for i in indices]
    if max_new_tokens is None:
        tok = loaded.tokenizer
        longest = max(len(tok(r, add_special_tokens=False)["input_ids"]) for r in references)
        max_new_tokens = min(longest + 8, 256)
    # A JSON answer is complete once its object closes: stop there (scores cannot change, see
    # json_stop_criteria); free-text answers run to the end as before.
    json_rows = [_is_json_text(r) for r in references]
    measured = generate_measured(loaded, list(messages), max_new_tokens=max_new_tokens, batch_size=batch_size,
                                 stop_at_json=json_rows)
    predictions = []
    for i, row, reference, m in zip(indices, selected, references, measured):
        predictions.append({**score_reply(row, m["reply"], reference), "prompt_tokens": m["prompt_tokens"],
                            "seconds": m["seconds"], "row_index": i})
    return summarize(predictions, sum(m["seconds"] for m in measured))


def generate_measured(loaded: LoadedModel, prompts: list, max_new_tokens: int = 64, batch_size: int = GENERATE_BATCH_SIZE,
                      *, stop_at_json: bool | list[bool] = False, sort_by_length: bool = True) -> list[dict]:
    """Greedy replies, each with its prompt length in tokens and its share of generation time.

    ``{"reply", "prompt_tokens", "seconds"}`` per prompt, in the order given. Prompts are sorted by
    token length and run in even batches (18 prompts run as 9 + 9, not 16 + 2: a batch costs its
    longest row's steps); a row's ``seconds`` is its batch's wall time divided by the batch size
    (plus an even share of tokenizing), so the sum is the total generation time. ``stop_at_json``
    (one flag, or one per prompt) ends a row once its JSON answer is complete, see
    :func:`labkit.models.json_stop_criteria`.
    """
    timed = generate_timed(loaded, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size,
                           stop_at_json=stop_at_json, sort_by_length=sort_by_length)
    return [{"reply": r, "prompt_tokens": n, "seconds": s}
            for r, n, s in zip(timed["replies"], timed["prompt_tokens"], timed["seconds"])]


def _is_json_text(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except (json.JSONDecodeError, TypeError):
        return False


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def summarize(predictions: list[dict], seconds: float = 0.0) -> DomainReport:
    """Aggregate scored predictions (from :func:`score_reply`) into a report."""
    if not predictions:
        raise ValueError("summarize: no predictions")
    n = len(predictions)
    json_rows = [p for p in predictions if p["json_valid"] is not None]
    fields: dict[str, list[bool]] = {}
    categories: dict[str, list[bool]] = {}
    for p in predictions:
        for k, ok in p["fields"].items():
            fields.setdefault(k, []).append(ok)
        categories.setdefault(str(p["category"]), []).append(p["correct"])
    return DomainReport(
        accuracy=sum(p["correct"] for p in predictions) / n,
        json_valid_rate=sum(p["json_valid"] for p in json_rows) / len(json_rows) if json_rows else None,
        schema_valid_rate=sum(p["schema_valid"] for p in json_rows) / len(json_rows) if json_rows else None,
        field_accuracy={k: sum(v) / len(v) for k, v in fields.items()},
        per_category={k: sum(v) / len(v) for k, v in categories.items()},
        n=n,
        seconds=seconds,
        predictions=predictions,
    )
