"""The truth about every synthetic pair, and how well each filter separated right from wrong.

The formulary knows every right answer (``data/formulary/formulary.json``), so unlike a real
synthetic-data project we can grade the teacher's work exactly and ask of each filter: of the
pairs it dropped, how many were really wrong (**precision**), and of the wrong pairs that reached
it, how many did it drop (**recall**)? The pipeline itself never sees any of this.

A pair is **right** when all three hold:

* its question names exactly the task's drugs (a question about other drugs, or none, does not
  match its answer's facts);
* its answer is one JSON object valid against the category's schema;
* every field equals the formulary's truth.

>>> judge({"category": "dosing", "subjects": ["LuviParex"], "question": "Dose of LuviParex?",
...        "answer": '{"dose_mg": 5, "frequency": "twice daily"}'})["right"]
True
"""

from __future__ import annotations

import json

from labkit.synth.schema import validate


def judge(pair: dict) -> dict:
    """``{"right": bool, "why": str, "fields": {field: bool}}`` for one pair."""
    from labkit.data import formulary
    from labkit.evaluate.domain import field_match

    fx = formulary.build(0)
    truth = fx.answer(pair["category"], list(pair["subjects"]))
    named = fx.find_drugs(pair.get("question", ""))
    if sorted(set(named)) != sorted(set(pair["subjects"])):
        return {"right": False, "why": "question names other drugs" if named else "question names no drug",
                "fields": {}}
    ok, why = validate(pair.get("answer", ""), pair["category"])
    try:
        parsed = json.loads(pair.get("answer", ""))
    except json.JSONDecodeError:
        parsed = None
    fields = {k: field_match(parsed.get(k), v) for k, v in truth.items()} if isinstance(parsed, dict) else {}
    if not ok:
        return {"right": False, "why": "not JSON" if why.startswith("not JSON") else "breaks the schema",
                "fields": fields}
    wrong = [k for k, good in fields.items() if not good]
    if wrong:
        return {"right": False, "why": "wrong " + ", ".join(wrong), "fields": fields}
    return {"right": True, "why": "right", "fields": fields}


def judge_all(pairs: list[dict]) -> dict[str, dict]:
    """Truth per pair id."""
    return {p["id"]: judge(p) for p in pairs}


def stage_table(stages: list[dict], truth: dict[str, dict]) -> list[dict]:
    """Per stage (in pipeline order): pairs in, kept, wrong pairs among its input, how many of
    those it caught, right pairs it dropped, precision and recall of its drops, and the share of
    right pairs in what it kept.

    ``stages`` are stage records (:meth:`~labkit.synth.stages.StageResult.record`, as saved in a
    run's ``stages.json``); ``truth`` judges every pair of the run, including any the generate
    stage dropped (its ``right_after`` is the raw share of right pairs).
    """
    rows = []
    remaining: list[str] | None = None
    for rec in stages:
        dropped = set(rec["dropped_ids"])
        inputs = list(truth) if remaining is None else remaining  # generate sees every task
        kept = [i for i in inputs if i not in dropped]
        wrong_in = [i for i in inputs if not truth.get(i, {"right": False})["right"]]
        caught = [i for i in wrong_in if i in dropped]
        right_dropped = [i for i in inputs if i in dropped and truth.get(i, {"right": False})["right"]]
        n_drop = len([i for i in inputs if i in dropped])
        right_kept = sum(1 for i in kept if truth.get(i, {"right": False})["right"])
        rows.append({
            "stage": rec["stage"], "in": len(inputs), "kept": len(kept), "wrong_in": len(wrong_in),
            "caught": len(caught), "right_dropped": len(right_dropped),
            "precision": len(caught) / n_drop if n_drop else None,
            "recall": len(caught) / len(wrong_in) if wrong_in else None,
            "right_after": right_kept / len(kept) if kept else None,
        })
        remaining = kept
    return rows


def why_wrong(truth: dict[str, dict]) -> dict[str, int]:
    """How the teacher's wrong pairs went wrong, most common first (``wrong severity`` ...)."""
    counts: dict[str, int] = {}
    for t in truth.values():
        if not t["right"]:
            counts[t["why"]] = counts.get(t["why"], 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def invented_fields(pairs: list[dict]) -> dict:
    """Among answers that parse as JSON objects: the share of answer fields that state something
    the formulary says is false ("invented facts"), and how many fields were judged."""
    from labkit.data import formulary
    from labkit.evaluate.domain import field_match

    fx = formulary.build(0)
    judged = wrong = answers = 0
    for p in pairs:
        try:
            parsed = json.loads(p.get("answer", ""))
        except json.JSONDecodeError:
            continue
        if not isinstance(parsed, dict):
            continue
        answers += 1
        truth = fx.answer(p["category"], list(p["subjects"]))
        for key, value in truth.items():
            judged += 1
            wrong += not field_match(parsed.get(key), value)
    return {"answers": answers, "fields": judged, "wrong_fields": wrong,
            "invented_rate": wrong / judged if judged else None}


def drop_examples(pairs: list[dict], stages: list[str], truth: dict[str, dict]) -> list[dict]:
    """Per stage, one real pair it dropped: a wrong one it caught if there is one, and a right one
    it lost if there is one (``{"stage", "kind", "question", "answer", "why", "truth"}``).
    ``pairs`` carry ``dropped_at`` and ``why`` (a run's ``pairs``)."""
    out = []
    for stage in stages:
        dropped = [p for p in pairs if p["dropped_at"] == stage]
        for kind, wanted in (("caught", False), ("lost", True)):
            p = next((p for p in dropped if truth[p["id"]]["right"] is wanted), None)
            if p is not None:
                out.append({"stage": stage, "kind": kind, "question": p["question"], "answer": p["answer"],
                            "why": p["why"], "truth": truth[p["id"]]["why"]})
    return out


def show_drops(pairs: list[dict], stages: list[str], truth: dict[str, dict], width: int = 110) -> None:
    """Print :func:`drop_examples` readably."""
    for ex in drop_examples(pairs, stages, truth):
        label = "caught a wrong pair" if ex["kind"] == "caught" else "dropped a RIGHT pair"
        print(f"[{ex['stage']}] {label}: {ex['why']}\n    Q: {ex['question'][:width]}\n"
              f"    A: {ex['answer'][:width]}\n    truth: {ex['truth']}")


def stage_markdown(rows: list[dict]) -> str:
    """:func:`stage_table` rows as a Markdown table (precision/recall of each stage's drops)."""
    pct = lambda x: "-" if x is None else f"{100 * x:.0f}%"  # noqa: E731
    out = ["| stage | in | kept | wrong pairs in | wrong caught | right dropped | precision | recall | right among kept |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['stage']} | {r['in']} | {r['kept']} | {r['wrong_in']} | {r['caught']} | {r['right_dropped']} "
                   f"| {pct(r['precision'])} | {pct(r['recall'])} | {pct(r['right_after'])} |")
    return "\n".join(out)
