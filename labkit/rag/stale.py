"""A stale-knowledge copy of the formulary: the same world with a few facts revised.

Knowledge goes out of date. A fine-tuned model keeps answering with what it was trained on; a RAG
system answers with whatever its documents say now. To measure that, :func:`stale_copy` picks
``n`` drugs that the given rows ask the dose of, revises one dosing fact of each (the dose by
default, or the frequency), and returns the revised corpus and rows together with the exact list of
changes. Only the drug's own monograph changes, in its one "Usual adult dose" line, in the same
words the generator uses; the class overview keeps the class's usual dose, as a real overview
would until someone updated it. Rows asking that drug's dose get the new answer (JSON or free-text,
whichever the row uses); every other document and row is left as it was.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field

DOSE_FACTORS = (0.5, 1.5, 2, 3)  # a revised dose is the old one times one of these (whole mg)


@dataclass(frozen=True)
class FactChange:
    """One revised fact: which drug, which field, from what to what, and the rows it affects."""

    drug: str
    doc_id: str
    field: str
    old: object
    new: object
    row_ids: tuple[str, ...]


@dataclass
class StaleCopy:
    """The revised corpus and rows (full lists, same order) and the changes that made them."""

    corpus: list[dict]
    rows: list[dict]
    changes: list[FactChange] = field(default_factory=list)

    @property
    def changed_docs(self) -> list[dict]:
        ids = {c.doc_id for c in self.changes}
        return [d for d in self.corpus if d["id"] in ids]

    @property
    def changed_rows(self) -> list[dict]:
        ids = {r for c in self.changes for r in c.row_ids}
        return [r for r in self.rows if r.get("id") in ids]


def _dose_line(answer: dict) -> str:
    return f"Usual adult dose: {answer['dose_mg']} mg {answer['frequency']}."


def _revise(answer: dict, field_name: str, rng: random.Random) -> object:
    from labkit.data.formulary import CLASSES

    old = answer[field_name]
    if field_name == "dose_mg":
        return rng.choice(sorted({round(old * f) for f in DOSE_FACTORS} - {old, 0}))
    return rng.choice(sorted({c.frequency for c in CLASSES} - {old}))


def stale_copy(rows: list[dict] | None = None, corpus: list[dict] | None = None, n: int = 20, seed: int = 0,
               fields: tuple[str, ...] = ("dose_mg",)) -> StaleCopy:
    """Revise one dosing fact of ``n`` drugs that ``rows`` (default: the test split) ask the dose of.

    Args:
        corpus: the documents to revise (default: the shipped formulary corpus).
        seed: which drugs, which field of ``fields`` and which new value; same seed, same copy.
        fields: the facts that may change, ``dose_mg`` and/or ``frequency``.
    """
    from labkit.data import formulary as F

    rows = F.load_split("test") if rows is None else rows
    corpus = F.corpus() if corpus is None else corpus
    if not set(fields) <= {"dose_mg", "frequency"} or not fields:
        raise ValueError(f"fields={fields!r}: choose from 'dose_mg', 'frequency'")
    asked = sorted({r["drugs"][0] for r in rows if r.get("category") == "dosing"})
    if n > len(asked):
        raise ValueError(f"stale_copy: n={n}, but the rows ask the dose of only {len(asked)} drugs")
    rng = random.Random(seed)
    docs = {d["id"]: dict(d) for d in corpus}
    new_rows = [dict(r) for r in rows]
    changes = []
    for drug in sorted(rng.sample(asked, n)):
        doc_id, which = "drug:" + drug.lower(), rng.choice(fields)
        mine = [r for r in new_rows if r.get("category") == "dosing" and r["drugs"][0] == drug]
        old_answer = mine[0]["answer"]
        new_answer = {**old_answer, which: _revise(old_answer, which, rng)}
        text = docs[doc_id]["text"]
        if text.count(_dose_line(old_answer)) != 1:
            raise ValueError(f"stale_copy: {doc_id} does not state {_dose_line(old_answer)!r} exactly once")
        docs[doc_id]["text"] = text.replace(_dose_line(old_answer), _dose_line(new_answer))
        for r in mine:
            r["answer"], r["messages"] = dict(new_answer), [dict(t) for t in r["messages"]]
            reply = r["messages"][-1]
            is_json = reply["content"].lstrip().startswith("{")
            reply["content"] = json.dumps(new_answer) if is_json else F.answer_text("dosing", new_answer, r["drugs"])
        changes.append(FactChange(drug, doc_id, which, old_answer[which], new_answer[which],
                                  tuple(r["id"] for r in mine)))
    return StaleCopy([docs[d["id"]] for d in corpus], new_rows, changes)
