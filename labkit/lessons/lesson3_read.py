"""Lesson 3's readings: the Markdown under each result, every word computed from the numbers.

Each ``read_*`` function takes the results (the dict :func:`labkit.lessons.lesson3.run` returns, or
the one the notebook builds as it goes: ``plan``, ``runs``, ``evals``, ``secondary``, ``lint``,
``epochs``, ``batch``) and returns Markdown whose numbers and judgements (which arm won, whether a
gap is within noise, whether a claim held) are computed here with the thresholds named below, so the
text stays true whatever a run produces. Tests feed hand-made results and check the wording flips.
"""

from __future__ import annotations

import math

from labkit.config import SEED_LEARNING_RATES
from labkit.lessons.lesson3_claims import (
    NO_SIGNAL, TIERS, _best_losses, _finite, _lr, _lr_arms, _pct, _size_point, _tier_points, best_base, claims, lima_verdict, size_verdict)

#: a paired gap counts as real when its 95% interval (this many standard errors) excludes zero
Z95 = 1.96
#: replies that are not one bare JSON object: a difference of at least this share counts (and at least 2)
FORMAT_GAP = 0.05
#: learning rate: ending this much above its own best = overshot; a best this little below the first
#: training loss = moved little
OVERSHOOT, MOVED_LITTLE = 1.10, 0.25
#: learning rate: every rate's best validation loss within this factor of the others = no winner
TIE = 1.01
#: batch: a speed ratio beyond 10%, a roughness ratio beyond 1.5x, a loss ratio beyond 5% counts
SPEED_GAP, ROUGH_GAP, LOSS_GAP = 1.10, 1.5, 0.05


def paired_gap(a: dict, b: dict, key: str = "field_score") -> tuple[float, float, int] | None:
    """``a`` minus ``b`` on the questions both answered: the mean difference per question, the
    half-width of its 95% interval (``Z95`` standard errors of the paired differences) and the count;
    ``None`` when the evaluations kept no per-answer scores."""
    sa = {s["id"]: float(s[key] or 0) for s in a.get("scores", [])}
    sb = {s["id"]: float(s[key] or 0) for s in b.get("scores", [])}
    d = [sa[i] - sb[i] for i in sa if i in sb]
    if len(d) < 2:
        return None
    mean = sum(d) / len(d)
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (len(d) - 1))
    return mean, Z95 * sd / math.sqrt(len(d)), len(d)


def gap_words(gap: tuple[float, float, int] | None, what: str = "fields right") -> str:
    """'+6.1 points of fields right (95% interval ±4.0 on 90 questions): a real gap' or '... within noise'."""
    if gap is None:
        return f"no per-question scores to tell whether the gap in {what} is real"
    mean, half, n = gap
    real = abs(mean) > half
    return (f"{100 * mean:+.1f} points of {what} (95% interval ±{100 * half:.1f} on {n} questions): "
            + ("a real gap" if real else "within noise"))


def _not_bare_json(evaluation: dict) -> int:
    return sum(s.get("json_valid") is False for s in evaluation.get("scores", []))


# ---------------------------------------------------------------------------------------------
# readings: the prose under each result, from the numbers


def read_lima(results: dict) -> str:
    """E6: clean-small against noisy-large at equal steps, against the best prompt, and next to LIMA."""
    plan, runs, evals = results["plan"], results["runs"], results["evals"]
    clean, noisy = plan.clean_arm, "noisy"
    if clean not in evals or noisy not in evals:
        return "*(the LIMA arms have not been evaluated yet)*"
    c, n = evals[clean], evals[noisy]
    sc, sn = runs[clean].summary, runs[noisy].summary
    verdict = lima_verdict(c, n)
    head = ("Neither arm learned enough to compare." if verdict == NO_SIGNAL else "The small clean set wins." if
            verdict == "held" else "The large noisy set wins here." if verdict.startswith("did not") else
            "A tie on fields right.")
    out = [f"**{head}** After the same {sc['steps']} steps, the clean arm ({sc['train_rows']} rows) gets "
           f"{_pct(c['partial_credit'])} of the answer fields right and {_pct(c['schema_valid'])} of its answers "
           f"schema-valid; the noisy arm ({sn['train_rows']:,} rows) {_pct(n['partial_credit'])} and "
           f"{_pct(n['schema_valid'])}. Clean minus noisy: {gap_words(paired_gap(c, n))}."]
    if any(k.startswith("base-") for k in evals):
        base = best_base(evals)
        b = evals[base]["partial_credit"]
        out.append(f"The best prompt without training ({base[5:]}) gets {_pct(b)} of the fields right; the clean arm scores "
                   f"{100 * (c['partial_credit'] - b):+.1f} points against it, the noisy arm {100 * (n['partial_credit'] - b):+.1f}.")
    kc, kn, total = _not_bare_json(c), _not_bare_json(n), len(n.get("scores", []))
    if total:
        bar = max(2, math.ceil(FORMAT_GAP * total))
        if kn - kc >= bar:
            out.append(f"The planted format damage came out in the answers: {kn} of the noisy arm's {total} replies are "
                       f"not one bare JSON object (a sentence around it, a code fence, single quotes), against {kc} of "
                       "the clean arm's.")
        elif kc - kn >= bar:
            out.append(f"Unexpectedly, the clean arm has more replies that are not one bare JSON object ({kc} of "
                       f"{total}, against {kn} for the noisy arm).")
        else:
            out.append(f"The two arms are about even on format ({kc} and {kn} of {total} replies are not one bare JSON "
                       "object), so the planted format damage did not show in the replies after this much training.")
    audit = results.get("lint")
    if audit:
        labels = audit["noise"].labels
        undamaged = sum(label is None for label in labels) / len(labels)
        seen = min(len(labels), sn["steps"] * plan.batch_size)
        dup = next((r for r in audit["found"] if r["kind"] == "duplicate"), None)
        out.append(f"Only {_pct(undamaged)} of the noisy set's {len(labels)} rows are undamaged, and in {sn['steps']} "
                   f"steps of {plan.batch_size} it sees {seen} of them, about {round(seen * undamaged)} undamaged ones "
                   "on average." + (f" The linter found {dup['found']} of the {dup['planted']} planted duplicates "
                                    "(training warns about repeated rows too; the lesson silences that warning for "
                                    "the noisy arm, since the duplicates are there on purpose)." if dup else ""))
    out.append(f"**LIMA and us.** LIMA set 1,000 curated examples against Alpaca's 52,000 machine-written ones, on a "
               f"65B model, with people judging open-ended answers. We set {sc['train_rows']} clean rows against "
               f"{sn['train_rows']:,} rows with planted damage, at equal compute, on a 135M model, judged field by field.")
    return "\n\n".join(out)


def _tier(rows: int) -> str:
    for name, lo, hi in TIERS:
        if lo <= rows <= hi:
            return f"inside the article's {name} tier"
    below = next(((name, lo) for name, lo, _ in TIERS if rows < lo), None)
    return f"below the article's {below[0]} tier, which starts at {below[1]:,}" if below else "above every tier"


def read_size(results: dict) -> str:
    """The data-size curve: its shape step by step (within noise or not), the tiers, the 200-500 claim."""
    plan, runs, evals = results["plan"], results["runs"], results["evals"]
    arms = [a for a in plan.size_arms() if a in evals and a in runs]
    if not arms:
        return "*(the data-size arms have not been evaluated yet)*"
    rows = {a: runs[a].summary["train_rows"] for a in arms}
    out = ["Fields right / schema-valid by training rows: " + "; ".join(
        f"{rows[a]} rows ({_tier(rows[a])}) {_pct(evals[a]['partial_credit'])} / {_pct(evals[a]['schema_valid'])}"
        for a in arms) + "."]
    gaps = [(a, b, paired_gap(evals[b], evals[a])) for a, b in zip(arms, arms[1:])]
    if gaps:
        judged = [g for *_, g in gaps if g]
        ups = [g for g in judged if g[0] > g[1]]
        downs = [g for g in judged if -g[0] > g[1]]
        # a gap without per-question scores (e.g. a reused evaluation) cannot be called noise or signal
        where = "" if len(judged) == len(gaps) else " where it can be judged"
        shape = ("cannot be judged step by step" if not judged else
                 f"rises at every step{where}" if len(ups) == len(judged) else
                 f"never moves beyond noise{where}" if not ups and not downs else
                 "falls somewhere along the way" if downs else "rises, but not at every step")
        out.append(f"**The curve {shape}.** " + "; ".join(f"from {rows[a]} to {rows[b]} rows: {gap_words(g)}"
                                                          for a, b, g in gaps) + ".")
    if any(k.startswith("base-") for k in evals):
        base = evals[best_base(evals)]
        for small in _tier_points(plan, runs, evals) or [_size_point(plan, runs, evals)]:
            s = evals[small]
            df, ds = s["partial_credit"] - base["partial_credit"], s["schema_valid"] - base["schema_valid"]
            answer = ("yes, fine-tuning clearly helps" if size_verdict(s, base) == "held" else
                      "not clearly, since it does not beat the best prompt by 10 points on both")
            out.append(f"The proof-of-concept question (does fine-tuning help at all?) at {rows[small]} rows: against "
                       f"the best prompt it gains {100 * df:+.0f} points of fields right and {100 * ds:+.0f} of schema "
                       f"validity, so the answer is {answer}.")
    steps = ", ".join(str(runs[a].summary["steps"]) for a in arms)
    out.append(f"Equal epochs means a bigger set also trains for more steps ({steps}), so this curve mixes more "
               "data with more training, which is how the question comes up in practice.")
    return "\n\n".join(out)


def read_epochs(results: dict) -> str:
    """E5: where validation loss bottomed out, where patience cut, the two curves, the article's 2-3."""
    plan, epochs = results["plan"], results.get("epochs") or {}
    if not epochs:
        return "*(the epoch arms have not run yet)*"
    out = []
    for arm, e in epochs.items():
        if e["best_epoch"] is None:
            out.append(f"`{arm}` has no validation points.")
            continue
        text = (f"**{e['val_rows']} rows held out, {e['train_rows']} to train on:** validation loss was lowest after "
                f"epoch {e['best_epoch']:g} ({e['best_val_loss']:.3f}). ")
        falling = e["last_train_loss"] is not None and e["last_train_loss"] < e["first_train_loss"]
        train = f"training loss went from {e['first_train_loss']:.2f} to {e['last_train_loss']:.2f}"
        if e["stop_epoch"] is not None:
            text += (f"It then failed to beat that for {plan.patience} epochs in a row, so early stopping cut at epoch "
                     f"{e['stop_epoch']:g} and kept epoch {e['best_epoch']:g}'s weights. ")
            rise = e["last_val_loss"] / e["best_val_loss"] - 1 if e["last_val_loss"] else 0
            text += (f"By then validation loss had risen {100 * rise:.0f}% above its best while {train}: the two "
                     "curves parted, the pattern of the quiz above. " if rise > 0.02 and falling else
                     f"Validation loss had flattened rather than climbed ({e['last_val_loss']:.3f}); {train}. ")
        else:
            text += (f"It never went {plan.patience} epoch{'s' * (plan.patience != 1)} without a new best, so training ran all {plan.max_epochs} "
                     f"epochs: within this budget the model did not overfit these rows ({train}). ")
        trainer = e.get("trainer_stopped_at")
        if e["stop_epoch"] is not None and trainer is not None:
            text += ("The trainer's own early-stopping callback stopped at the same epoch. "
                     if abs(trainer - e["stop_epoch"]) < 1e-6 else
                     f"The trainer stopped at epoch {trainer:g}, the replay of its history at {e['stop_epoch']:g}. ")
        best, k = e["best_epoch"], e.get("steps_per_epoch")
        per = f"an epoch here is only {k} steps of {plan.batch_size}" if k else "an epoch here is a few steps"
        text += ("That is inside the article's 2-3 epochs." if 2 <= best <= 3 else
                 f"That is earlier than the article's 2-3 epochs: {per} at a high rate, and {e['train_rows']} rows "
                 "are few enough to memorise quickly." if best < 2 else
                 f"That is later than the article's 2-3 epochs: {per}, so it takes more passes to move the weights "
                 "as far as one epoch over thousands of rows does.")
        out.append(text)
    if len(epochs) >= 2:
        a, b = list(epochs.values())[:2]
        same = a["stop_epoch"] == b["stop_epoch"] and a["best_epoch"] == b["best_epoch"]
        out.append(f"Holding out {b['val_rows']} rows instead of {a['val_rows']} "
                   + ("gives the same best epoch and the same stop." if same else
                      f"moves the best epoch from {a['best_epoch']:g} to {b['best_epoch']:g} and the stop from "
                      f"{a['stop_epoch']} to {b['stop_epoch']}: on a handful of rows validation loss is noisy enough "
                      "to move the stop."))
    return "\n\n".join(out)


def lr_shape(run) -> str:
    """A few words for one rate's run: blew up, overshot, moved little, or learned steadily."""
    losses = [loss for _, loss in run.eval_loss]
    best = run.summary["best_eval_loss"]
    if not losses or not _finite(best) or not all(_finite(x) for x in losses):
        return "blew up: the loss became nan or infinite"
    low = min(losses)
    if losses[-1] > OVERSHOOT * low:
        step = run.eval_loss[losses.index(low)][0]
        return f"overshot: validation loss bottomed out at step {step} and ended {100 * (losses[-1] / low - 1):.0f}% higher"
    start = run.train_loss[0][1] if run.train_loss else None
    if start and best >= start:
        return "did not move: its best validation loss is no lower than its first training loss"
    if start and 1 - best / start < MOVED_LITTLE:
        return f"moved little: its best validation loss is only {100 * (1 - best / start):.0f}% below its first training loss"
    return "learned steadily and ended at its best"


def read_lr(results: dict) -> str:
    """The sweep: each rate's shape, the winner, the article's rate, and why a small short run wants more."""
    plan, runs, secondary = results["plan"], results["runs"], results.get("secondary") or {}
    arms = {lr: arm for lr, arm in _lr_arms(plan).items() if arm in runs}
    if len(arms) < 2:
        return "*(the learning-rate arms have not run yet)*"
    best = _best_losses(plan, runs)
    lines = []
    for lr, arm in arms.items():
        q = secondary.get(arm)
        quality = f"; {_pct(q['partial_credit'])} fields right, {_pct(q['schema_valid'])} schema-valid on {q['n']} questions" if q else ""
        lines.append(f"- **{_lr(lr)}**: best validation loss {best[lr]:.3f}, {lr_shape(runs[arm])}{quality}.")
    winner = min(best, key=best.get)
    article = SEED_LEARNING_RATES["lora"]
    steps = runs[arms[winner]].summary["steps"]
    out = ["\n".join(lines)]
    finite = [v for v in best.values() if _finite(v)]
    if len(finite) == len(best) and max(finite) <= TIE * min(finite):
        out.append(f"**No rate stands out:** every rate ends within {100 * (TIE - 1):.0f}% of the others' validation "
                   f"loss; {steps} step{'s' * (steps != 1)} is too short a run to tell them apart.")
        return "\n\n".join(out)
    if article in best and winner != article:
        ratio = best[article] / best[winner]
        out.append(f"**{_lr(winner)} did best.** The article's LoRA baseline, {_lr(article)}, ended at {ratio:.1f}x the "
                   f"winner's validation loss" + (" (within 10%: as good, for practical purposes)." if ratio <= 1.10
                                                  else "."))
    else:
        out.append(f"**{_lr(winner)} did best**" + (", the article's LoRA baseline." if winner == article else "."))
    if winner > article:
        out.append(f"Why a small model on a short run wants a higher rate: each update moves the weights by about the "
                   f"rate times the gradient, so what a run can change grows with rate x steps. This sweep has {steps} "
                   f"step{'s' * (steps != 1)}: at {_lr(article)} that is {article * steps:.1e}; the QLoRA paper's 7B run took 1,875 steps at "
                   f"2e-4, {2e-4 * 1875:.3f}, {2e-4 * 1875 / (article * steps):,.0f} times more. The article's baselines "
                   "are for 7-8B models over thousands of steps, where many small steps add up and big ones would "
                   "wreck what the model knows; a few dozen steps on a 135M model need bigger ones, up to the rate "
                   "where the curve stops falling.")
    else:
        out.append(f"Here a rate no higher than the article's {_lr(article)} was enough, even for a short run.")
    return "\n\n".join(out)


def read_batch(results: dict) -> str:
    """Batch 1 against batch 8 over the same examples: speed per example, roughness, where they ended."""
    batch, secondary = results.get("batch") or {}, results.get("secondary") or {}
    if len(batch) != 2:
        plan = results.get("plan")
        if plan is not None and not plan.go_further:
            return ("*Batch 1 is a go-further arm (its 96 one-row steps would take the default run past its "
                    "budget): set `GO_FURTHER = True` in the first code cell to train it.*")
        return "*(the batch arms have not run yet)*"
    (arm8, b8), (arm1, b1) = sorted(batch.items(), key=lambda kv: -kv[1]["batch"])
    out = []
    if b1["seconds_per_example"] and b8["seconds_per_example"]:
        r = b1["seconds_per_example"] / b8["seconds_per_example"]
        speed = (f"{r:.1f}x slower per example" if r >= SPEED_GAP else f"{1 / r:.1f}x faster per example"
                 if r <= 1 / SPEED_GAP else "about as fast per example")
        out.append(f"**Speed.** Batch {b1['batch']} spent {b1['seconds_per_example']:.2f} s of training per example, "
                   f"batch {b8['batch']} {b8['seconds_per_example']:.2f} s: batch {b1['batch']} was {speed}."
                   + (" Every update has a fixed cost (the optimizer step, the bookkeeping), and the CPU multiplies "
                      "eight rows at once more efficiently than one row eight times." if r >= SPEED_GAP else ""))
    if b1["roughness"] is not None and b8["roughness"] is not None and b8["roughness"] > 0:
        r = b1["roughness"] / b8["roughness"]
        out.append(f"**Noise.** The roughness of the training curve is {b1['roughness']:.3f} at batch {b1['batch']} "
                   f"and {b8['roughness']:.3f} at batch {b8['batch']}: "
                   + ("batch 1's curve is visibly noisier, since each update follows one example's quirks." if r >= ROUGH_GAP
                      else "batch 1's curve is, unexpectedly, the smoother one." if r <= 1 / ROUGH_GAP
                      else "about as rough as each other, within the 1.5x this lesson counts as a difference."))
    lo, hi = sorted((b1["best_val_loss"], b8["best_val_loss"]))
    where = ("about the same place" if hi <= lo * (1 + LOSS_GAP) else
             f"a lower validation loss at batch {b1['batch']}" if b1["best_val_loss"] < b8["best_val_loss"]
             else f"a lower validation loss at batch {b8['batch']}")
    out.append(f"**Where they ended.** With {b1['updates']} updates instead of {b8['updates']} at the same rate, the "
               f"two runs reached {where} (best {b1['best_val_loss']:.3f} vs {b8['best_val_loss']:.3f})"
               + (f"; on the secondary questions, fields right {_pct(secondary[arm1]['partial_credit'])} vs "
                  f"{_pct(secondary[arm8]['partial_credit'])}." if arm1 in secondary and arm8 in secondary else "."))
    return "\n\n".join(out)


def read_claims(results: dict) -> str:
    """Why each claim that did not hold on 135M parameters and a few CPU steps may still hold at scale."""
    rows = [c for c in claims(results) if c.held is not True and not c.verdict.startswith("not run")]
    if not rows:
        return "Every claim held on this small model, in these short runs."
    plan, runs = results["plan"], results["runs"]
    steps = {a: r.summary["steps"] for a, r in runs.items()}
    epochs = results.get("epochs") or {}
    held_out = ", ".join(str(e["val_rows"]) for e in epochs.values()) or "a few"
    why = {
        "a small clean set beats a large noisy one (LIMA)":
            f"LIMA's gap comes from a 65B model judged by people on open-ended answers, where copied mistakes and "
            f"sloppy style cost a lot. Our noisy arm trains for only {steps.get('noisy', '?')} steps, sees a fraction "
            "of its rows, and can pick up a JSON format from the undamaged ones; a short run has not yet learned "
            "much of the damage either. Trained for its whole epoch (go further), or judged on harder answers, the "
            "noise weighs more.",
        "200-500 examples show whether fine-tuning helps":
            "The tiers are advice for 7-8B models on production tasks. A 135M model trained for one short epoch "
            "has little room to learn an invented formulary's facts, so more rows help it less than they would "
            "help a model that can hold them.",
        "2-3 epochs is the sweet spot; more overfits":
            f"An epoch here is {next((e.get('steps_per_epoch') for e in epochs.values()), 'a few')} steps on "
            f"{plan.pool_rows} rows at 20 times the article's LoRA rate. Over thousands of rows at 5e-5 an epoch is "
            "hundreds of small steps, so memorising starts at a different epoch count; the rule behind the number, "
            "stop where validation loss turns, is what carries over.",
        "hold out 10-20% for validation and stop when it turns up":
            f"Our held-out sets are {held_out} rows. A 10-20% split of a few thousand rows is hundreds, whose "
            "loss moves smoothly enough to show the turn; on a handful of rows the loss jumps by more than the turn.",
        "learning-rate baselines (LoRA 5e-5)":
            "The article's rates are for 7-8B models over thousands of steps; what a run can change grows with "
            "rate x steps, and a short run on a small model needs larger steps. On a bigger model and a longer run, "
            "start from the article's rates and sweep around them.",
        "batch 4-8 is the usual choice":
            "On a GPU a batch of 8 costs about as much time as one example and memory is the limit, which is "
            "where 4-8 comes from; on two CPU cores the speed gain is smaller, and a curve of a few dozen points "
            "measures its own noise roughly.",
    }
    return "\n".join(["**Why a claim that did not hold here may still hold at scale.**"]
                     + [f"- *{c.claim}* ({c.verdict}): {why.get(c.claim, '')}" for c in rows])
