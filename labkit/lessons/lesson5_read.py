"""Lesson 5's readings: the Markdown under each result, every number and judgement computed here.

Each ``read_*`` function takes pieces of the results (what :func:`labkit.lessons.lesson5.run`
returns, or what the notebook builds step by step) and returns Markdown whose numbers and verdicts
(which teacher wrote more right pairs, whether a filter's drops were wrong more often than its
input, which student came out ahead) follow from the thresholds named below, so the text stays
true whatever a run produces. Tests feed hand-made results and check the wording flips.
"""

from __future__ import annotations

from labkit.lessons.lesson5 import SELF_CHECK_LIFT

#: a filter "cleans" when the share of right pairs in what it keeps rises by this much
CLEANER = 0.05
#: a student is ahead when it beats the other by this many points of fields right (90 questions)
AHEAD = 0.02
#: teachers are compared on a few dozen pairs (one pair of 48 is 2 points): under 5 points apart they
#: are level, 10 or more is a clear gap
TEACHER_LEVEL, TEACHER_CLEAR = 0.05, 0.10


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def _share_right(row: dict) -> float | None:
    return None if not row["in"] else 1 - row["wrong_in"] / row["in"]


def read_generation(summary: dict, reused: bool) -> str:
    """How long generation took, and what the article's 1,000 clean examples would cost here."""
    s = summary
    per_min = s.get("pairs_per_minute") or 0.0
    keep = s["kept"] / s["tasks"] if s.get("tasks") else 0.0
    hours = (1000 / keep / per_min / 60) if keep and per_min else None
    text = (f"Generation (questions and answers) took **{s['generation_seconds']:.0f} s** for {s['tasks']} pairs: "
            f"**{per_min:.1f} pairs per minute** on this machine; the whole pipeline with its filters took "
            f"{s['wall_seconds']:.0f} s{' (reused from the cache: these are the times of the run that made it)' if reused else ''}. ")
    if hours is not None:
        text += (f"At that speed and this run's keep rate ({_pct(keep)}), the article's 1,000 clean examples would "
                 f"need about **{hours:.1f} hours** of generation here: one reason teachers run on GPU servers.")
    else:
        text += "No pair survived every filter, so no time per clean example can be given."
    return text


def read_filters(stages: list[dict], label: str = "the teacher") -> str:
    """What the critic and the self-check did to ``label``'s pairs, judged against the truth."""
    rows = {r["stage"]: r for r in stages}
    out = []
    crit = rows.get("critic")
    if crit and crit["in"]:
        before, after = _share_right(crit), crit["right_after"] or 0.0
        gain = after - (before or 0.0)
        judged = ("so its cut was cleaner than its input" if gain >= CLEANER else
                  "so its cut was *less* clean than its input: it ranked right pairs below wrong ones" if gain <= -CLEANER
                  else "no real change: its ranking carried little information about correctness")
        out.append(f"The critic kept {crit['kept']} of {crit['in']} pairs of {label} ({_pct(crit['kept'] / crit['in'])}, "
                   f"the top 75% of each answer category, by construction); right pairs went from {_pct(before)} of its "
                   f"input to {_pct(after)} of what it kept, {judged}.")
    sc = rows.get("self-check")
    if sc and sc["in"]:
        base = sc["wrong_in"] / sc["in"]
        dropped = sc["in"] - sc["kept"]
        if not dropped:
            out.append(f"The self-check dropped nothing of the {sc['in']} pairs that reached it.")
        else:
            lift = (sc["precision"] or 0.0) - base
            judged = ("its drops were clearly richer in wrong pairs than its input" if lift >= SELF_CHECK_LIFT else
                      "a little richer in wrong pairs than its input, within what a handful of pairs can show"
                      if lift > 0 else "no richer in wrong pairs than its input: no better than dropping at random")
            out.append(f"The self-check dropped {dropped} of {sc['in']} ({_pct(dropped / sc['in'])}, the share is set: "
                       f"the least sure pairs of each category; the article: ~10-15%). {_pct(base)} of its input was "
                       f"wrong and {_pct(sc['precision'])} of its drops: {judged}.")
    exact = [rows[k] for k in ("schema", "grounding") if k in rows and rows[k]["in"] > rows[k]["kept"]]
    if exact:
        parts = [f"{r['stage']} dropped {r['in'] - r['kept']} with precision {_pct(r['precision'])}" for r in exact]
        perfect = all(r["precision"] == 1.0 for r in exact)
        out.append("The exact checks cost no model call: " + "; ".join(parts)
                   + (" - every pair they dropped was really wrong." if perfect else "."))
    return " ".join(out)


def category_right(truth: dict[str, dict], pairs: list[dict]) -> dict[str, tuple[int, int]]:
    """``{category: (right, total)}`` over every generated pair."""
    out: dict[str, list[int]] = {}
    for p in pairs:
        c = out.setdefault(p["category"], [0, 0])
        c[0] += bool(truth[p["id"]]["right"])
        c[1] += 1
    return {k: (v[0], v[1]) for k, v in sorted(out.items())}


def teacher_table(audits: dict[str, dict], synth: dict) -> dict[str, dict]:
    """One row per teacher arm: right pairs per category among everything generated, and kept."""
    out = {}
    for arm, a in audits.items():
        run = synth[arm]
        cats = category_right(a["truth"], run.pairs)
        row = {"right (all)": a["right_raw"]}
        row.update({f"right {c}": r / n for c, (r, n) in cats.items()})
        row["kept"] = run.summary["kept"]
        row["right among kept"] = a["stages"][-1]["right_after"]
        out[arm] = row
    return out


def read_teachers(audits: dict[str, dict], names: dict[str, str]) -> str:
    """The fine-tuned teacher against the base on the very same questions."""
    if "teacher" not in audits or "base-teacher" not in audits:
        return ""
    t, b = audits["teacher"]["right_raw"], audits["base-teacher"]["right_raw"]
    verdict = ("the teacher that learnt the domain wrote clearly more right pairs" if t - b >= TEACHER_CLEAR else
               "the teacher that learnt the domain wrote somewhat more right pairs" if t - b >= TEACHER_LEVEL else
               "the base model wrote *more* right pairs: fine-tuning did not make a better teacher here"
               if b - t >= TEACHER_LEVEL else
               "the two teachers wrote about as many right pairs overall (a gap of two or three pairs of 48)")
    kt, kb = audits["teacher"]["stages"][-1], audits["base-teacher"]["stages"][-1]
    return (f"On the very same questions, {names.get('teacher', 'the teacher')} wrote **{_pct(t)}** right pairs and "
            f"{names.get('base-teacher', 'the base model')} **{_pct(b)}**: {verdict}. After every filter, "
            f"{kt['kept']} of the teacher's pairs survive ({_pct(kt['right_after'])} right) against {kb['kept']} of the "
            f"base's ({_pct(kb['right_after'])} right).")


def read_students(evals: dict[str, dict], students: dict, test_rows: int) -> str:
    """Fields right of base, raw, filtered and gold, and whether filtering paid."""
    ev = {arm: e["partial_credit"] for arm, e in evals.items()}
    rows = {arm: r.summary["train_rows"] for arm, r in students.items()}
    text = (f"Fields right on {test_rows} test questions: "
            + ", ".join(f"{arm} {_pct(ev.get(arm))}" for arm in ("base", "raw", "filtered", "gold") if arm in ev) + ". ")
    if "filtered" in ev and "raw" in ev:
        d = ev["filtered"] - ev["raw"]
        text += (f"The filtered student saw {rows.get('filtered', 0)} pairs, the raw one {rows.get('raw', 0)}: "
                 + (f"filtering paid ({100 * d:+.0f} points)" if d >= AHEAD else
                    f"filtering cost {100 * -d:.0f} points here (fewer rows outweighed cleaner ones)" if d <= -AHEAD else
                    "filtering made no clear difference (within 2 points)") + ". ")
    if "gold" in ev and "filtered" in ev:
        d = ev["gold"] - ev["filtered"]
        text += ("The same number of real rows did better still: the filtered set is not as good as real data"
                 if d >= AHEAD else "The filtered set did as well as the same number of real rows"
                 if d > -AHEAD else "The filtered set beat the same number of real rows") + "."
    return text


def read_contrasts(grounding: dict, personas: dict) -> str:
    """The two rules switched off: grounding (invented fields) and personas (diversity)."""
    a, b = grounding["grounded"]["invented_rate"], grounding["ungrounded"]["invented_rate"]
    out = []
    if a is not None and b is not None:
        out.append(f"Without the passage, {_pct(b)} of the answer fields were wrong against {_pct(a)} with it "
                   + ("(the passage cut invented facts)." if b - a >= 0.10 else
                      "(the passage did not clearly cut invented facts here)."))
    on, off = personas["on"]["distinct_2"], personas["off"]["distinct_2"]
    if on is not None and off is not None:
        out.append(f"With four personas {_pct(on)} of the questions' word pairs were distinct, with one plain voice "
                   f"{_pct(off)}: " + ("the personas varied the wording." if on - off >= 0.05 else
                                       "the personas did not clearly vary the wording."))
    return " ".join(out)
