"""Read the facts out of a reply in whatever shape it came: JSON or plain prose.

The domain evaluator is strict about format on purpose: a JSON question answered in prose scores
0, even when the prose states the right dose. That is the right yardstick for a program reading
the answers, but it hides a second question lesson 1 needs answered: *did the model get the facts
right at all?* :func:`read_facts` answers it leniently: the first JSON object in the reply if there
is one, else the facts read from the wording with :func:`labkit.data.formulary.read_text_answer`
(which refuses a reply that hedges between two values). So "facts right" counts a reply such as
"LuviParex is taken 10 mg twice daily" as right, and "accuracy" does not.
"""

from __future__ import annotations


def read_facts(row: dict, reply: str) -> dict[str, bool]:
    """Field -> right or not for one reply to ``row`` (which holds ``answer`` and ``category``)."""
    from labkit.data.formulary import ANSWER_SCHEMA, read_text_answer
    from labkit.evaluate.domain import field_match, first_json_object

    expected = row.get("answer")
    if not isinstance(expected, dict):
        return {}
    found = first_json_object(reply)
    if found is None and row.get("category") in ANSWER_SCHEMA:
        found = read_text_answer(row["category"], reply)
    found = found or {}
    return {k: field_match(found.get(k), v) for k, v in expected.items()}


def fact_scores(rows: list[dict], replies: list[dict]) -> dict:
    """``{"facts_right", "fact_credit", "n"}`` over ``replies`` (each ``{"id", "reply"}``, e.g. the
    ``scores`` of a cached :meth:`~labkit.evaluate.domain.DomainReport.to_dict`), judged against the
    rows with the same ids: the share with every fact right, and the mean share of facts right."""
    by_id = {r["id"]: r for r in rows}
    fields = [read_facts(by_id[s["id"]], s["reply"]) for s in replies if s.get("id") in by_id]
    fields = [f for f in fields if f]
    if not fields:
        return {"facts_right": None, "fact_credit": None, "n": 0}
    return {"facts_right": sum(all(f.values()) for f in fields) / len(fields),
            "fact_credit": sum(sum(f.values()) / len(f) for f in fields) / len(fields), "n": len(fields)}
