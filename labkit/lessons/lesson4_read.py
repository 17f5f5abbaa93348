"""Lesson 4's tables, figures and readings: what the notebook shows, written from the numbers.

Every sentence here is computed from a run's results with an explicit threshold, so the text agrees
with the numbers whatever a run produces (``tests/test_lesson4.py`` flips the wording with hand-made
numbers). The experiment itself (plan, arms, evaluation, claims) is :mod:`labkit.lessons.lesson4`.

>>> from labkit.lessons import lesson4 as L, lesson4_read as R          # doctest: +SKIP
>>> display(HTML(R.table_html(results["reports"])))                     # doctest: +SKIP
>>> display(Markdown(R.read_claims(results)))                           # doctest: +SKIP
"""

from __future__ import annotations

from labkit.evaluate.forgetting import ALARM, ALARM_DROP, ALARM_NOISY, PairedDelta, paired_from_ids
from labkit.lessons.lesson4 import LABELS, _after_vs, _leaks, _pts, claims, curve

# ---------------------------------------------------------------------------------------------
# tables and figures


def results_table(reports: dict) -> list[dict]:
    """The E7 table: one row per arm, the base model first."""
    first = next(iter(reports.values()))
    base_d, base_p = first.domain_before, first.probe_before
    rows = [{"arm": LABELS["base"], "fields right": base_d["partial_credit"], "exact": base_d["accuracy"],
             "probe": _ci(base_p), "change (95% CI)": "", "lost / gained": "", "alarm": ""}]
    for arm, r in reports.items():
        d = r.delta
        rows.append({"arm": LABELS.get(arm, arm), "fields right": r.domain_after["partial_credit"],
                     "exact": r.domain_after["accuracy"], "probe": _ci(r.probe_after),
                     "change (95% CI)": f"{100 * d.delta:+.1f} [{100 * d.low:+.1f}, {100 * d.high:+.1f}]",
                     "lost / gained": f"{d.lost} / {d.gained}", "alarm": r.alarm})
    return rows


def _ci(p: dict) -> str:
    return f"{100 * p['accuracy']:.1f}% [{100 * p['low']:.0f}, {100 * p['high']:.0f}]"


def table_html(reports: dict) -> str:
    import html

    rows = results_table(reports)
    head = "".join(f"<th style='text-align:left'>{html.escape(k)}</th>" for k in rows[0])
    colour = {ALARM: "#cf222e", ALARM_NOISY: "#9a6700"}

    def cell(key, value):
        if isinstance(value, float):
            value = f"{100 * value:.1f}%"
        style = f" style='color:{colour[value]};font-weight:bold'" if key == "alarm" and value in colour else ""
        return f"<td{style}>{html.escape(str(value))}</td>"

    body = "".join("<tr>" + "".join(cell(k, v) for k, v in row.items()) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def checks_html(reports: dict) -> str:
    """The generation checks side by side: the base model, then every arm."""
    import html

    first = next(iter(reports.values()))
    columns = [("base", first.checks_before)] + [(a, r.checks_after) for a, r in reports.items() if r.checks_after]
    head = "<th>prompt</th>" + "".join(f"<th>{html.escape(LABELS.get(a, a))}</th>" for a, _ in columns)
    body = []
    for i, check in enumerate(first.checks_before):
        cells = "".join(
            f"<td style='white-space:pre-wrap;vertical-align:top'>{'✅' if c[i]['passed'] else '❌'} "
            f"{html.escape(c[i]['reply'])}</td>" for _, c in columns)
        body.append(f"<tr><td style='vertical-align:top'><b>{html.escape(check['prompt'])}</b></td>{cells}</tr>")
    return f"<table style='font-size:0.85em'><tr>{head}</tr>{''.join(body)}</table>"


def plot_curves(runs: dict, reports: dict, line: float = ALARM_DROP):
    """Forgetting over time: training loss (left) and the probe with its interval (right) per curve arm."""
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    base = next(iter(reports.values())).probe_before
    for arm, run in runs.items():
        points = curve(run)
        if not points:
            continue
        loss = run.train_loss
        left.plot([s for s, _ in loss], [v for _, v in loss], "--", label=f"{LABELS[arm]} train")
        left.plot([s for s, _ in run.eval_loss], [v for _, v in run.eval_loss], "-o", markersize=3,
                  label=f"{LABELS[arm]} val")
        steps = [0] + [p["step"] for p in points]
        acc = [base["accuracy"]] + [p["accuracy"] for p in points]
        low = [base["low"]] + [p["low"] for p in points]
        high = [base["high"]] + [p["high"] for p in points]
        line_, = right.plot(steps, [100 * a for a in acc], "-o", markersize=4, label=LABELS[arm])
        right.fill_between(steps, [100 * v for v in low], [100 * v for v in high], alpha=0.12,
                           color=line_.get_color())
    right.axhline(100 * base["accuracy"], color="gray", linewidth=1, label="base model")
    right.axhline(100 * (base["accuracy"] - line), color="tab:red", linestyle=":", linewidth=1.2,
                  label=f"alarm line (-{100 * line:.0f} points)")
    right.axhline(100 * base["chance"], color="black", linestyle=":", linewidth=0.8, label="chance")
    left.set(xlabel="step", ylabel="loss", title="learning the formulary")
    right.set(xlabel="step", ylabel="general probe accuracy (%)", title="keeping the world (95% interval)")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    plt.close(fig)
    return fig


def plot_learn_vs_forget(reports: dict, line: float = ALARM_DROP):
    """Learns less, forgets less: domain gain (x) against general loss (y), one point per arm."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for arm, r in reports.items():
        x = 100 * r.domain_gain
        y = -100 * r.delta.delta
        err = [[y - (-100 * r.delta.high)], [(-100 * r.delta.low) - y]]
        ax.errorbar([x], [y], yerr=err, fmt="o", capsize=4, label=LABELS.get(arm, arm))
        ax.annotate(LABELS.get(arm, arm), (x, y), textcoords="offset points", xytext=(6, 4), fontsize=8)
    ax.axhline(100 * line, color="tab:red", linestyle=":", linewidth=1.2, label=f"alarm line ({100 * line:.0f} points)")
    ax.axhline(0, color="gray", linewidth=0.8)
    ax.set(xlabel="domain gain: fields right, after - before (points)",
           ylabel="general loss: probe points lost (95% CI)",
           title="What each arm learned against what it forgot")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    plt.close(fig)
    return fig


# ---------------------------------------------------------------------------------------------
# readings: the notebook's "what we found" sentences, written from the numbers (so they always agree)


def _drop_words(d: PairedDelta) -> str:
    if d.high < 0:
        return f"lost {-100 * d.delta:.1f} points ({d.lost} questions lost, {d.gained} gained; a real drop, p={d.p_value:.2g})"
    if d.low > 0:
        return f"gained {100 * d.delta:.1f} points ({d.gained} gained, {d.lost} lost)"
    return (f"moved {100 * d.delta:+.1f} points ({d.lost} lost, {d.gained} gained), "
            f"within the probe's noise (interval {100 * d.low:+.1f} to {100 * d.high:+.1f})")


def read_base(base: dict) -> str:
    p, d = base["probe"], base.get("domain")
    text = (f"The untouched model answers **{100 * p['accuracy']:.1f} %** of the {p['n']} probe questions "
            f"(95 % interval {100 * p['low']:.0f}-{100 * p['high']:.0f} %; chance is {100 * p['chance']:.0f} %): "
            "it knows a fair amount about the world.")
    if d:
        text += (f" On the formulary it gets **{100 * d['partial_credit']:.1f} %** of the answer fields right and "
                 f"{100 * d['accuracy']:.1f} % of answers exactly: it cannot know an invented formulary, so whatever "
                 "an arm scores above this, it learned in training.")
    passed = sum(c["passed"] for c in base.get("checks", []))
    if base.get("checks"):
        text += (f" It passes {passed} of {len(base['checks'])} generation checks; a 135M model gets some of them "
                 "wrong before any training, which is why we compare every arm's replies with these, not with perfection.")
    return text


def curve_deltas(report, points: list[dict]) -> list[tuple[int, PairedDelta]]:
    """The paired change against the base model at every checkpoint of a curve."""
    ids, before = report.probe_before["ids"], report.probe_before["correct"]
    return [(p["step"], paired_from_ids(before, p["correct"], ids)) for p in points]


def curve_shape(deltas: list[tuple[int, PairedDelta]]) -> str:
    """A few words for the curve's shape: flat, steady fall, early fall that levels off, dip and recovery."""
    if not deltas:
        return "no curve"
    drops = [-d.delta for _, d in deltas]
    real = [step for step, d in deltas if d.high < 0]
    if not real:
        return "flat: within noise of the base model at every checkpoint"
    if deltas[-1][1].high >= 0:  # a real drop somewhere, but not at the end
        worst = deltas[drops.index(max(drops))][0]
        return f"a dip that recovers: worst at step {worst}, back within noise by the end"
    final, mid = drops[-1], len(drops) // 2
    half = next(step for (step, _), drop in zip(deltas, drops) if drop >= final / 2)
    if len(drops) > 2 and final - drops[mid] < final / 3:
        return f"an early fall that levels off: half of the final loss is there by step {half}"
    return f"a steady fall: a real drop from step {real[0]} on, still falling at the end"


def read_curve(report, points: list[dict], less=None, line: float = ALARM_DROP) -> str:
    deltas = curve_deltas(report, points)
    if not deltas:
        return "This run has no probe curve (it was trained without the probe attached)."
    steps = ", ".join(f"step {s}: {100 * d.delta:+.1f}" for s, d in deltas)
    past = [s for s, d in deltas if -d.delta > line]
    text = (f"**The shape: {curve_shape(deltas)}.** Probe change against the base model, in points, at each checkpoint: "
            f"{steps}. ")
    text += (f"The estimate first crosses the article's {100 * line:.0f}-point line at step {past[0]}. " if past else
             f"It never crosses the article's {100 * line:.0f}-point line. ")
    text += (f"The loss, meanwhile, falls fastest in the first steps: what the model is learning and what it is "
             f"losing are two views of the same weight updates. At the end of the run the probe has "
             f"{_drop_words(report.delta)}.")
    if less is not None:
        text += (f" Stopped at step {less.run.rsplit(' ', 1)[-1]}, the same run had {_drop_words(less.delta)}, with "
                 f"{100 * less.domain_after['partial_credit']:.1f} % of the formulary fields right against "
                 f"{100 * report.domain_after['partial_credit']:.1f} % at the end.")
    return text


def read_table(reports: dict) -> str:
    parts = []
    for arm, r in reports.items():
        parts.append(f"- **{LABELS.get(arm, arm)}**: fields right {100 * r.domain_after['partial_credit']:.1f} % "
                     f"({100 * r.domain_gain:+.1f} points over the base); the probe {_drop_words(r.delta)}; alarm: *{r.alarm}*.")
    tripped = [LABELS.get(a, a) for a, r in reports.items() if r.alarm == ALARM]
    noisy = [LABELS.get(a, a) for a, r in reports.items() if r.alarm == ALARM_NOISY]
    tail = (f"The alarm trips for {', '.join(tripped)}." if tripped else "No arm trips the alarm.")
    if noisy:
        tail += f" {', '.join(noisy)} crossed the line on the point estimate only: that is what a 180-question probe cannot settle."
    return "\n".join(parts) + "\n\n" + tail


def read_checks(reports: dict) -> str:
    first = next(iter(reports.values()))
    lines = [f"The base model passes {sum(c['passed'] for c in first.checks_before)} of {len(first.checks_before)}."]
    for arm, r in reports.items():
        if not r.checks_after:
            continue
        leaked = _leaks(r.checks_after)
        lines.append(f"{LABELS.get(arm, arm)}: passes {sum(c['passed'] for c in r.checks_after)}; "
                     f"{leaked} of {len(r.checks_after)} replies carry formulary marks (JSON braces, severities, doses).")
    return " ".join(lines)


def read_scatter(reports: dict) -> str:
    if "full" not in reports or "r16" not in reports:
        return ""
    full, lora = reports["full"], reports["r16"]
    learns_less = lora.domain_gain < full.domain_gain
    diff = _after_vs(reports, "r16", "full")
    forgets_less = "significantly less" if diff.low > 0 else "less, within noise" if diff.delta > 0 else "no less"
    return (f"LoRA r16 gained {100 * lora.domain_gain:+.1f} points of formulary fields against full fine-tuning's "
            f"{100 * full.domain_gain:+.1f} ({'learns less' if learns_less else 'learns as much or more'}), and forgot "
            f"{forgets_less} than full fine-tuning (LoRA after - full after on the probe: {_pts(diff)}). "
            "The paper's result, with 7B models and billions of training tokens: LoRA learns less and forgets less. "
            + ("Ours agrees on both axes." if learns_less and diff.delta > 0 else
               "Ours agrees on learning less, not (on this probe) on forgetting less." if learns_less else
               "Ours agrees on neither axis."))


def read_settings(report) -> str:
    """How the settings were chosen, with the measurement that chose them."""
    d = report.delta
    if d.high < 0:
        return (f"**The measurement behind the settings.** Lesson 2's full fine-tuning arm, at its own settings, "
                f"{_drop_words(d)}. That is measurable forgetting, so this lesson keeps lesson 2's settings and does "
                "not push the rate or the number of steps any further.")
    return (f"**The measurement behind the settings.** Lesson 2's full fine-tuning arm, at its own settings, "
            f"{_drop_words(d)}. At these settings forgetting does not show on this probe, and we say so rather "
            "than raise the rate or the steps until a story appears; the claims table explains why it may still "
            "show at scale.")


def read_claims(results: dict) -> str:
    """Why a claim that did not hold here may still hold at scale (only when one did not hold)."""
    rows = claims(results)
    failed = [c.claim for c in rows if c.held is not True]
    if not failed:
        return "Every claim held on this small model."
    reports = results["reports"]
    first = next(iter(reports.values()))
    p = first.probe_before if hasattr(first, "probe_before") else first["probe_before"]
    half = 100 * (p["high"] - p["low"]) / 2
    run = (results.get("runs") or {}).get("full")
    tokens = f"about {run.summary['tokens_trained']:,} tokens" if run is not None else "a few dozen steps"
    return "\n".join([
        f"Not settled here: {', '.join(failed)}. Why a 135M model on 60 CPU steps can disagree with the article "
        "and the paper:",
        f"- **How far the weights move.** Biderman et al. trained on billions of tokens; our full arm saw {tokens}. "
        "Forgetting grows with the distance from the base weights, and a short run does not go far.",
        f"- **What the probe can see.** One score on {p['n']} questions carries about ±{half:.0f} points of "
        "uncertainty, and a paired change a few points; MMLU's 14,000 questions resolve about one point. The "
        "article's symptoms are also about *behaviour* (a sum answered with a diagnosis), which the generation "
        "checks show and a likelihood probe can miss.",
        "- **How much there was to lose.** A 135M model knows only the easy facts, and its general skills are "
        "thin to begin with; a 7B model has far more that a domain can overwrite.",
    ])
