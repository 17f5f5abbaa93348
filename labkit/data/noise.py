"""Plant known problems in a dataset, at chosen rates, for the LIMA lesson (clean-small vs noisy-large).

Each kind of noise breaks one of the seed's four qualities of training data:

========== ========================================================= ==============
kind       what happens to the assistant's answer                    quality broken
========== ========================================================= ==============
wrong      swapped for the answer of another question (same type)    correct
broken     same facts, wrong shape (prose around JSON, single quotes,  consistent
           renamed keys, code fences)
truncated  cut off part-way, as a scraper or a token limit would     complete
duplicate  an extra copy of a row (new id, same content)             representative
========== ========================================================= ==============

Rates are fractions of the original rows; wrong / broken / truncated hit disjoint rows, duplicates
are added on top (so the noisy set is also the larger set). The same seed gives the same result.
"""

from __future__ import annotations

import copy
import json
import random
from dataclasses import dataclass, field

KINDS = ("wrong", "broken_format", "truncated", "duplicate")


@dataclass
class NoiseResult:
    rows: list[dict]
    counts: dict[str, int]
    labels: list[str | None] = field(repr=False, default_factory=list)  # per row: the noise it got

    @property
    def noisy_fraction(self) -> float:
        return sum(label is not None for label in self.labels) / len(self.labels) if self.labels else 0.0

    def __str__(self) -> str:
        parts = ", ".join(f"{k} {v}" for k, v in self.counts.items())
        return f"{len(self.rows)} rows, {self.noisy_fraction:.0%} noisy ({parts})"


def _reply(row: dict) -> str:
    return next(t["content"] for t in reversed(row["messages"]) if t["role"] == "assistant")


def _set_reply(row: dict, text: str) -> None:
    for turn in reversed(row["messages"]):
        if turn["role"] == "assistant":
            turn["content"] = text
            return


def _break_json(obj: dict, rng: random.Random) -> str:
    style = rng.choice(["prose", "quotes", "keys", "fence"])
    if style == "prose":
        return "Sure! Here is the answer: " + json.dumps(obj)
    if style == "quotes":
        return str(obj)  # Python's repr: single quotes, not JSON
    if style == "keys":
        return json.dumps({k.upper(): v for k, v in obj.items()})
    return "```json\n" + json.dumps(obj) + "\n```"


def _break_text(text: str, rng: random.Random) -> str:
    style = rng.choice(["shout", "bullets", "label"])
    if style == "shout":
        return text.upper()
    if style == "bullets":
        return "\n".join("- " + part.strip() for part in text.replace(":", ".").split(".") if part.strip())
    return "ANSWER >> " + text.rstrip(".")


def _truncate(text: str, rng: random.Random) -> str:
    cut = max(1, int(len(text) * rng.uniform(0.3, 0.7)))
    return text[:cut].rstrip()


def inject(
    rows: list[dict],
    wrong: float = 0.0,
    broken_format: float = 0.0,
    truncated: float = 0.0,
    duplicates: float = 0.0,
    seed: int = 0,
) -> NoiseResult:
    """A noisy copy of ``rows`` (the input is not modified) and how many rows got each kind."""
    for name, rate in (("wrong", wrong), ("broken_format", broken_format), ("truncated", truncated),
                       ("duplicates", duplicates)):
        if not 0 <= rate <= 1:
            raise ValueError(f"{name}={rate}: expected a fraction between 0 and 1")
    n = len(rows)
    k = {kind: round(rate * n) for kind, rate in
         (("wrong", wrong), ("broken_format", broken_format), ("truncated", truncated))}
    if sum(k.values()) > n:
        raise ValueError(f"wrong + broken_format + truncated = {sum(k.values())} rows, but there are only {n}")
    rng = random.Random(seed)
    out = copy.deepcopy(rows)
    labels: list[str | None] = [None] * n
    chosen = rng.sample(range(n), sum(k.values()))
    picks = {"wrong": chosen[: k["wrong"]],
             "broken_format": chosen[k["wrong"] : k["wrong"] + k["broken_format"]],
             "truncated": chosen[k["wrong"] + k["broken_format"] :]}
    counts = dict.fromkeys(KINDS, 0)

    replies = [_reply(row) for row in rows]
    by_category: dict[object, list[int]] = {}
    for j, row in enumerate(rows):
        by_category.setdefault(row.get("category"), []).append(j)
    for i in picks["wrong"]:
        mine = replies[i]
        same = [j for j in by_category[rows[i].get("category")] if replies[j] != mine]
        pool = same or [j for j in range(n) if replies[j] != mine]
        if not pool:
            continue  # every answer is identical: nothing can be made wrong
        donor = rows[rng.choice(pool)]
        _set_reply(out[i], _reply(donor))
        if "answer" in donor:
            out[i]["answer"] = copy.deepcopy(donor["answer"])
        labels[i], counts["wrong"] = "wrong", counts["wrong"] + 1

    for i in picks["broken_format"]:
        text = replies[i]
        try:
            obj = json.loads(text)
        except json.JSONDecodeError:
            obj = None
        broken = _break_json(obj, rng) if isinstance(obj, dict) else _break_text(text, rng)
        _set_reply(out[i], broken)
        labels[i], counts["broken_format"] = "broken_format", counts["broken_format"] + 1

    for i in picks["truncated"]:
        _set_reply(out[i], _truncate(replies[i], rng))
        labels[i], counts["truncated"] = "truncated", counts["truncated"] + 1

    for d in range(round(duplicates * n)):
        src = rng.randrange(len(out))
        copy_row = copy.deepcopy(out[src])
        if "id" in copy_row:
            copy_row["id"] = f"{copy_row['id']}-dup{d + 1}"
        at = rng.randint(src + 1, len(out))  # after its source, so "the later copy" is the duplicate
        out.insert(at, copy_row)
        labels.insert(at, "duplicate")
        counts["duplicate"] += 1
    return NoiseResult(out, counts, labels)
