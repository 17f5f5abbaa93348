"""Lesson 6's tables, figures and readings: what notebook 06 shows, written from the numbers.

Every sentence that depends on a result is computed here from ``lesson6.run``'s results dict with an
explicit threshold, so the text agrees with the table whatever a run gives (``tests/test_lesson6.py``
flips the wording with hand-made results). Nothing here trains, evaluates or changes a cache key:
the experiment itself (plan, arms, evaluation, claims) is :mod:`labkit.lessons.lesson6`.

>>> from labkit.lessons import lesson6 as L, lesson6_read as R        # doctest: +SKIP
>>> display(R.e9_frame(results))                                       # doctest: +SKIP
>>> display(Markdown(R.read_e9(results)))                              # doctest: +SKIP
"""

from __future__ import annotations

import html

from labkit.lessons.lesson6 import ARM_LABELS, claims, p_sweep
from labkit.rag.raft import NO_ORACLE_REASON, QUOTE_BEGIN, QUOTE_END

#: Two arms closer than this (accuracy, as a share) are read as level: on 30 questions one answer is
#: 3.3 points, so 5 points is about one or two answers.
LEVEL = 0.05
#: The order arms appear in, whatever order a results dict holds them in.
ORDER = ["base-rag", "ft", "ft-rag", "raft-p0", "raft-p40", "raft-p70", "raft-p100"]
BEHAVIOURS = {"right": ("right", "#2da44e"), "invented": ("invented (a wrong JSON answer)", "#cf222e"),
              "abstained": ("said not in the passages", "#8250df"), "no_answer": ("no JSON answer", "#8c959f")}


def label(arm: str) -> str:
    return ARM_LABELS.get(arm, arm)


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.0f}%"


def _pts(x: float) -> str:
    return f"{100 * x:+.0f} points"


def _arms(d: dict) -> list[str]:
    return sorted(d, key=lambda a: ORDER.index(a) if a in ORDER else len(ORDER))


def main_arm(results: dict) -> str:
    """The RAFT arm the lesson leads with: P = 0.7, else the first RAFT arm."""
    ev = results["evals"]
    return "raft-p70" if "raft-p70" in ev else next(a for a in _arms(ev) if a.startswith("raft"))


def _n(results: dict) -> int:
    e = results["evals"]["base-rag"]
    return e.get("n") or len(e.get("scores", [])) or len(results.get("rows", [])) or 1


def _compare(a: float, b: float, n: int) -> str:
    """How ``a`` stands against ``b`` in words, with the gap in points and in answers of ``n``."""
    gap = a - b
    answers = round(abs(gap) * n)
    if abs(gap) < LEVEL:
        return f"level with it ({_pts(gap)}, {answers} of {n} answers)"
    return f"{'ahead of' if gap > 0 else 'behind'} it by {abs(100 * gap):.0f} points ({answers} of {n} answers)"


# ---------------------------------------------------------------------------------------------
# the RAFT set


def doc_of(passage_id: str) -> str:
    """The document a passage id belongs to (``drug:x#3`` -> ``drug:x``)."""
    return passage_id.rsplit("#", 1)[0]


def class_of(doc_id: str) -> str | None:
    """The drug class a formulary document is about: ``drug:buteparex`` and ``class:clotting-inhibitor``
    both give ``clotting inhibitor`` (a drug's class is its name's suffix); None for anything else."""
    from labkit.data.formulary import CLASSES

    kind, _, name = doc_id.partition(":")
    for c in CLASSES:
        if (kind == "drug" and name.endswith(c.suffix.lower())) or (kind == "class" and name == c.name.replace(" ", "-")):
            return c.name
    return None


def build_stats(rows: list[dict]) -> dict:
    """What a built RAFT set holds: rows, oracle rows, passages shown, and where the distractors
    come from: another line of a document the question is about (``same_doc``), a document of the
    same drug class (``same_class``: a near-twin), or anything else (``other``)."""
    oracle = sum(r["raft"]["has_oracle"] for r in rows)
    same_doc = same_class = other = 0
    for r in rows:
        docs = set(r.get("doc_ids", []))
        classes = {class_of(d) for d in docs} - {None}
        for d in r["raft"]["distractor_ids"]:
            if doc_of(d) in docs:
                same_doc += 1
            elif class_of(doc_of(d)) in classes:
                same_class += 1
            else:
                other += 1
    shown = [len(r["raft"]["order"]) for r in rows]
    return {"rows": len(rows), "oracle": oracle, "share": oracle / len(rows) if rows else 0.0,
            "distractors": same_doc + same_class + other, "same_doc": same_doc, "same_class": same_class,
            "other": other, "shown_min": min(shown, default=0), "shown_max": max(shown, default=0),
            "trimmed": sum(bool(r["raft"].get("dropped")) for r in rows)}


def read_build(rows: list[dict], report: dict, fraction: float) -> str:
    """The built set in words: the oracle share, where distractors come from, the token lengths."""
    s = build_stats(rows)
    n = s["distractors"] or 1
    text = (f"**{s['oracle']} of {s['rows']} rows ({_pct(s['share'])}) hold the oracle**, as P = {fraction:g} asks "
            f"(the builder draws exactly round(P × n) rows, not a coin flip per row); the other "
            f"{s['rows'] - s['oracle']} show distractors only. Every row shows {s['shown_min']}"
            + (f" to {s['shown_max']}" if s['shown_max'] != s['shown_min'] else "")
            + f" passages. Of the {s['distractors']} distractors MiniLM ranked highest, {s['same_doc']} "
            f"({_pct(s['same_doc'] / n)}) are other lines of a monograph the question is about (the right drug, "
            f"the wrong line), {s['same_class']} ({_pct(s['same_class'] / n)}) come from a drug of the same class "
            f"(a near-twin of the right page) and {s['other']} ({_pct(s['other'] / n)}) from anything else.")
    over = report["over"]
    text += (f"\n\nIn tokens (chat template included): {report['min']} to {report['max']}, median "
             f"{report['median']:.0f}, " + ("none" if not over else f"**{over}**")
             + f" over the training limit of {report['max_length']}.")
    if s["trimmed"]:
        text += f" {s['trimmed']} rows lost a distractor to fit the limit."
    return text


def row_html(row: dict) -> str:
    """One built RAFT row as the model sees it: the passages (oracle marked), then the target."""
    meta = row["raft"]
    system, user, target = (m["content"] for m in row["messages"][-3:])
    oracle = set(meta["oracle_ids"])
    lines, pid = [], None
    for line in user.splitlines():  # "[id] title", then the passage's lines, a blank line between passages
        header = line.startswith("[") and "]" in line
        if header:
            pid = line[1:line.index("]")]
        elif not line.strip() or line.startswith("Question:"):
            pid = None
        tag = ("  ← oracle" if pid in oracle else "  ← distractor") if header else ""
        style = "background:#dafbe1" if pid in oracle else "color:#6e7781" if pid is not None else ""
        lines.append(f"<span style='{style}'>{html.escape(line)}</span>{tag}" if style else html.escape(line))
    kind = "an oracle row" if meta["has_oracle"] else "a distractor-only row"
    pre = "style='white-space:pre-wrap;font-size:0.85em;margin:0'"
    return (f"<div><b>{kind}</b> (question {html.escape(str(row.get('id')))}, seed {meta['seed']})"
            f"<p><b>system</b></p><pre {pre}>{html.escape(system)}</pre>"
            f"<p><b>user</b></p><pre {pre}>{chr(10).join(lines)}</pre>"
            f"<p><b>assistant (the target)</b></p><pre {pre}>{html.escape(target)}</pre></div>")


def example_rows(rows: list[dict]) -> list[dict]:
    """The first oracle row and the first distractor-only row (whichever exist)."""
    first = [next((r for r in rows if r["raft"]["has_oracle"] is flag), None) for flag in (True, False)]
    return [r for r in first if r is not None]


# ---------------------------------------------------------------------------------------------
# the E9 table


def declared_missing(e: dict) -> float:
    """Share of replies that say no passage answers (the trained distractor-only opening)."""
    scores = e.get("scores", [])
    return sum(NO_ORACLE_REASON.lower() in (s["reply"] or "").lower() for s in scores) / len(scores) if scores else 0.0


def _quote_cell(q: dict) -> str:
    if not q or not q.get("quoted"):
        return "no quotes"
    return f"{_pct(q['quoted'])} quote; {_pct(q['verbatim_of_quoted'])} of those verbatim"


def _behaviour_cell(m: dict | None) -> str:
    if m is None:
        return "not run"
    b = m["behaviour"]
    return (f"right {_pct(b['right'])}, invented {_pct(b['invented'])}, abstained {_pct(b['abstained'])}, "
            f"no answer {_pct(b['no_answer'])}")


def e9_rows(results: dict) -> list[dict]:
    """One row per arm: accuracy, fields right, facts right, JSON valid, quote check, no-oracle behaviour."""
    out = []
    for arm in _arms(results["evals"]):
        e, m = results["evals"][arm], results["no_oracle"].get(arm)
        out.append({"arm": label(arm), "accuracy": _pct(e["accuracy"]), "fields right": _pct(e["partial_credit"]),
                    "facts right (any form)": _pct(e.get("facts_right")), "JSON valid": _pct(e["answer_json"]),
                    "quote check": _quote_cell(e.get("quote")), "no oracle": _behaviour_cell(m),
                    "s per answer": f"{e['seconds_per_answer']:.2f}" if e.get("seconds_per_answer") else "–"})
    return out


def e9_frame(results: dict):
    """The E9 table as a pandas DataFrame (one row per arm, the arm as the index)."""
    import pandas as pd

    return pd.DataFrame(e9_rows(results)).set_index("arm")


def read_retrieval(results: dict) -> str:
    k = results["plan"].k
    r = results["retrieval"]
    n = _n(results)
    return (f"MiniLM puts a passage of the right monograph in the top {k} for **{_pct(r.get(f'hit@{k}'))}** of the "
            f"{n} test questions (top 1: {_pct(r.get('hit@1'))}). The other passages in each context are the "
            "distractors real retrieval brings with it.")


def read_e9(results: dict) -> str:
    """The E9 table in sentences: RAG alone, domain fine-tuning with and without RAG, RAFT."""
    ev, n = results["evals"], _n(results)
    main = main_arm(results)
    base, ft, ftr, raft = ev["base-rag"], ev["ft"], ev["ft-rag"], ev[main]
    lines = [
        f"- **{label('base-rag')}**: {_pct(base['accuracy'])} exactly right in JSON, {_pct(base.get('facts_right'))} "
        f"with every fact right in any form, JSON valid {_pct(base['answer_json'])}. "
        + ("The untouched model has the right page in front of it and still rarely gives the answer in the "
           "asked-for form." if base["accuracy"] < 0.5 else "Retrieval alone already answers most questions."),
        f"- **{label('ft')}**: {_pct(ft['accuracy'])}. **{label('ft-rag')}**: {_pct(ftr['accuracy'])}, "
        + ("so the passages help the fine-tuned model" if ftr["accuracy"] - ft["accuracy"] >= LEVEL else
           "so the passages do not help a model trained without them" if abs(ftr["accuracy"] - ft["accuracy"]) < LEVEL
           else "so the passages *hurt* a model trained without them")
        + f" ({_pts(ftr['accuracy'] - ft['accuracy'])}).",
        f"- **{label(main)}**: {_pct(raft['accuracy'])} exactly right, fields right {_pct(raft['partial_credit'])}, "
        f"JSON valid {_pct(raft['answer_json'])}. Against RAG alone it is {_compare(raft['accuracy'], base['accuracy'], n)}; "
        f"against domain fine-tuning + RAG it is {_compare(raft['accuracy'], ftr['accuracy'], n)}.",
    ]
    for arm in _arms(ev):
        if arm.startswith("raft") and arm != main:
            lines.append(f"- **{label(arm)}**: {_pct(ev[arm]['accuracy'])} exactly right, fields right "
                         f"{_pct(ev[arm]['partial_credit'])}.")
    q = raft.get("quote") or {}
    if q.get("quoted"):
        lines.append(f"\n**The quote check.** {_pct(q['quoted'])} of {label(main)}'s answers quote a line, and "
                     f"{_pct(q['verbatim_of_quoted'])} of those quotes are verbatim in the passages it was shown"
                     + (": what it cites, it really read." if (q["verbatim_of_quoted"] or 0) >= 0.9 else
                        ": the rest cite a line that is not there, an invention a string search catches."))
    else:
        lines.append(f"\n**The quote check.** {label(main)} did not quote: it has not learned the answer format.")
    lines.append(f"\nOne question is {100 / n:.1f} points here: read gaps of one or two answers as noise.")
    return "\n".join(lines)


def read_cost(results: dict) -> str:
    """What the quote costs at answer time: the main RAFT arm against domain FT + RAG, the same
    passages answered in JSON alone (so the gap is the quote, not a different prompt length)."""
    ev = results["evals"]
    q = ev[main_arm(results)].get("seconds_per_answer")
    j = ev.get("ft-rag", {}).get("seconds_per_answer")
    if not q or not j:
        return ""
    return (f"The quote is not free: {label(main_arm(results))} took **{q:.2f} s** per answer here, domain FT + RAG "
            f"{j:.2f} s on the same passages ({q / j:.1f}×): the model writes the supporting line before the answer.")


# ---------------------------------------------------------------------------------------------
# real replies


def replies_html(results: dict, arms: list[str] | None = None, n: int = 3, no_oracle: bool = False) -> str:
    """The first ``n`` test questions (one per category in a balanced set) with each arm's reply
    (✅ right, ❌ wrong) beside the reference answer."""
    source = results["no_oracle"] if no_oracle else results["evals"]
    arms = [a for a in (arms or _arms(source)) if a in source]
    by_arm = {a: {s["id"]: s for s in source[a]["scores"]} for a in arms}
    head = "<th>question</th><th>reference</th>" + "".join(f"<th>{html.escape(label(a))}</th>" for a in arms)
    body = []
    for row in results["rows"][:n]:
        question = next(t["content"] for t in reversed(row["messages"]) if t["role"] == "user")
        cells = []
        for a in arms:
            s = by_arm[a].get(row["id"])
            mark = "" if s is None else ("✅ " if s["correct"] else "❌ ")
            reply = "" if s is None else html.escape(s["reply"] or "")
            reply = reply.replace(QUOTE_BEGIN, "<b>«</b>").replace(QUOTE_END, "<b>»</b>")
            cells.append(f"<td style='white-space:pre-wrap;vertical-align:top'>{mark}{reply}</td>")
        body.append(f"<tr><td style='vertical-align:top'><b>{html.escape(question)}</b></td>"
                    f"<td style='white-space:pre-wrap;vertical-align:top'>{html.escape(row['messages'][-1]['content'])}"
                    f"</td>{''.join(cells)}</tr>")
    return f"<table style='font-size:0.85em'><tr>{head}</tr>{''.join(body)}</table>"


# ---------------------------------------------------------------------------------------------
# robustness without the oracle


def plot_behaviour(results: dict):
    """What each arm does when the oracle is taken out of its context: stacked shares per behaviour."""
    import matplotlib.pyplot as plt

    arms = _arms(results["no_oracle"])
    fig, ax = plt.subplots(figsize=(8, 0.6 * len(arms) + 1.4))
    left = [0.0] * len(arms)
    for key, (name, colour) in BEHAVIOURS.items():
        values = [100 * results["no_oracle"][a]["behaviour"][key] for a in arms]
        ax.barh([label(a) for a in arms], values, left=left, color=colour, label=name)
        left = [lo + v for lo, v in zip(left, values)]
    ax.invert_yaxis()
    ax.set(xlim=(0, 100), xlabel="share of test questions (%)",
           title="Retrieval missed: the oracle taken out of every context")
    ax.legend(fontsize=8, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.25))
    fig.tight_layout()
    plt.close(fig)
    return fig


def read_robustness(results: dict) -> str:
    """Who falls back on memory, who invents, who says the answer is not there."""
    miss = results["no_oracle"]
    if not miss:
        return "No arm was evaluated without the oracle."
    arms = _arms(miss)
    b = {a: miss[a]["behaviour"] for a in arms}
    best = max(arms, key=lambda a: b[a]["right"])
    worst = max(arms, key=lambda a: b[a]["invented"])
    lines = [f"- **{label(a)}**: right {_pct(b[a]['right'])}, invented {_pct(b[a]['invented'])}, said not in the "
             f"passages {_pct(b[a]['abstained'])}, no JSON answer {_pct(b[a]['no_answer'])}"
             + (f"; {_pct(declared_missing(miss[a]))} of its replies first say that no passage answers" if a.startswith("raft") else "")
             + (f" (with the oracle: {_pct(results['evals'][a]['accuracy'])})" if a in results["evals"] else "")
             for a in arms]
    text = "\n".join(lines) + "\n\n"
    text += (f"**{label(best)}** falls back best ({_pct(b[best]['right'])} still right)"
             if b[best]["right"] > 0 else "No arm answers right without the oracle")
    text += (f"; **{label(worst)}** invents most ({_pct(b[worst]['invented'])} confident wrong answers)."
             if b[worst]["invented"] > 0 else "; no arm invents.")
    if not any(b[a]["abstained"] for a in arms):
        text += (" No arm says the answer is missing: this lesson trains the *memory* target for distractor-only "
                 "rows, so a RAFT arm is not taught to refuse here.")
    text += (" A right answer without the oracle is not proof of memory alone: in this formulary every fact "
             "follows from the drug class, so a same-class near-twin among the remaining passages can carry it.")
    return text


# ---------------------------------------------------------------------------------------------
# the P sweep


def sweep_frame(results: dict):
    import pandas as pd

    rows = [{"P": r["P"], "accuracy": _pct(r["accuracy"]), "fields right": _pct(r["fields right"]),
             "no oracle: right": _pct(r["no oracle: right"]), "best val loss": f"{r['best val loss']:.3f}"}
            for r in p_sweep(results)]
    return pd.DataFrame(rows).set_index("P")


def plot_sweep(results: dict):
    """Accuracy with retrieval and right answers without the oracle, against P."""
    import matplotlib.pyplot as plt

    rows = p_sweep(results)
    ps = [r["P"] for r in rows]
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    ax.plot(ps, [100 * r["accuracy"] for r in rows], "-o", label="accuracy, real retrieval")
    ax.plot(ps, [100 * r["no oracle: right"] for r in rows], "-s", label="right, oracle removed")
    base = results["evals"].get("base-rag")
    if base is not None:
        ax.axhline(100 * base["accuracy"], color="gray", linestyle=":", label="base + RAG")
    ax.set(xlabel="P, share of training rows holding the oracle", ylabel="% of test questions",
           title="The P sweep", xticks=ps, ylim=(0, 100))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    plt.close(fig)
    return fig


def read_sweep(results: dict) -> str:
    rows = p_sweep(results)
    if not rows:
        return "No RAFT arm in these results."
    n = _n(results)
    best = max(rows, key=lambda r: (r["accuracy"], -abs(r["P"] - 0.7)))
    robust = max(rows, key=lambda r: (r["no oracle: right"], -abs(r["P"] - 0.7)))
    spread = max(r["accuracy"] for r in rows) - min(r["accuracy"] for r in rows)
    text = ", ".join(f"P = {r['P']:g}: {_pct(r['accuracy'])} (oracle removed: {_pct(r['no oracle: right'])})"
                     for r in rows) + ". "
    if spread < LEVEL:
        text += (f"With real retrieval the arms are level (spread {100 * spread:.0f} points, "
                 f"{round(spread * n)} of {n} answers): on this data P barely matters. ")
    else:
        text += f"The best accuracy with retrieval is at **P = {best['P']:g}**. "
    text += f"Without the oracle, P = {robust['P']:g} is right most often. "
    text += ("The paper found an optimum below P = 1 (some oracle-free rows help), with the best P varying by "
             "dataset; " + ("ours agrees." if best["P"] < 1 and spread >= LEVEL else
                            "ours does not show it." if best["P"] == 1 and spread >= LEVEL else "ours cannot tell."))
    if len(rows) < 4:
        text += " Set `GO_FURTHER = True` to add P = 0 and P = 0.4."
    return text


# ---------------------------------------------------------------------------------------------
# the claims


def read_claims(results: dict) -> str:
    """Why a claim that did not hold here may still hold at scale (only when one did not hold)."""
    rows = claims(results)
    failed = [c.claim for c in rows if c.held is not True]
    if not failed:
        return "Every claim held on this small model."
    n = _n(results)
    runs = results.get("runs") or {}
    main = main_arm(results)
    run = runs.get(main)
    tokens = run.summary.get("tokens_trained") if run is not None else None
    steps = run.summary.get("steps") if run is not None else None
    seen = (f"{steps} steps, about {tokens:,} training tokens" if tokens and steps else
            f"{results['plan'].max_steps} steps of {results['plan'].batch_size} rows")
    return "\n".join([
        f"Not settled here: {', '.join(failed)}. Why a 135M model on a CPU can disagree with the article and the paper:",
        f"- **How much reading it learned.** The paper fine-tuned LLaMA2-7B on thousands of RAFT rows; our RAFT arm "
        f"saw {seen}. Learning to pick one line out of four is a skill, and a short run teaches little of it.",
        f"- **What a 135M model can read.** Matching a drug name in the question to the right passage among "
        "near-twins is hard for a model this small; a 7B model already reads well before RAFT sharpens it.",
        f"- **What {n} questions can resolve.** One answer is {100 / n:.1f} points, so gaps of a few points are "
        "one or two answers and can go either way on another sample.",
    ])
