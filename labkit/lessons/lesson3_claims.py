"""Lesson 3's numbers: the comparison tables, the epoch and batch summaries read off the runs, and
the claims table, each verdict a one-line threshold (tested without training in tests/test_lesson3.py).

This module imports only the engine, so :mod:`labkit.lessons.lesson3` (the plan, the arms, training)
and :mod:`labkit.lessons.lesson3_read` (the prose) both build on it; the lesson module re-exports
:func:`claims` and the tables under its own name.
"""

from __future__ import annotations

import math

from labkit.config import SEED_LEARNING_RATES
from labkit.evaluate.claims import Claim
from labkit.evaluate.curves import epoch_stop, late_roughness, plot_quality_vs_size, seconds_per_example

#: the article's data tiers: (name, fewest rows, most rows)
TIERS = (("proof of concept", 200, 500), ("production", 1000, 3000), ("enterprise", 5000, 50000))
NO_SIGNAL = "no signal: the arms learned too little to compare (more steps needed)"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"


def _lr(x: float) -> str:
    return f"{x:.0e}".replace("e-0", "e-")


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


# ---------------------------------------------------------------------------------------------
# tables, replies, the size figure


def quality_row(evaluation: dict | None, run=None) -> dict:
    """One row of a comparison table: rows, steps, exact accuracy, field accuracy, schema validity, loss."""
    e = evaluation or {}
    row = {"rows": run.summary["train_rows"], "steps": run.summary["steps"]} if run is not None else {}
    row |= {"exact accuracy": e.get("accuracy"), "field accuracy": e.get("partial_credit"),
            "schema valid": e.get("schema_valid")}
    if run is not None:
        row["best val loss"] = run.summary["best_eval_loss"]
    return row


def best_base(evals: dict[str, dict]) -> str:
    """The strongest baseline prompt: the most schema-valid answers, then the most fields right."""
    keys = [k for k in evals if k.startswith("base-")]
    return max(keys, key=lambda k: (evals[k]["schema_valid"], evals[k]["partial_credit"]))


def replies(evals: dict[str, dict], arms: list[str], n: int = 3, disagree: bool = True) -> list[dict]:
    """The same questions answered by several arms (from their stored scores): where they disagree first."""
    from labkit.data import formulary

    scored = {arm: {s["id"]: s for s in evals[arm].get("scores", [])} for arm in arms}
    ids = [i for i in scored[arms[0]] if all(i in scored[a] for a in arms)]
    if disagree:  # questions where the arms' validity or score differ make the point best
        ids.sort(key=lambda i: len({(scored[a][i]["schema_valid"], scored[a][i]["field_score"]) for a in arms}) == 1)
    by_id = {r["id"]: r for r in formulary.load_split("test")}
    out = []
    for i in ids[:n]:
        row = by_id[i]
        out.append({"question": next(t["content"] for t in row["messages"] if t["role"] == "user"),
                    "reference": next(t["content"] for t in reversed(row["messages"]) if t["role"] == "assistant"),
                    **{arm: scored[arm][i]["reply"] for arm in arms}})
    return out


def size_figure(points: list[tuple[int, dict]], baseline: dict, title: str = ""):
    """Test quality against clean training rows (log scale), with the article's three tiers shaded."""
    return plot_quality_vs_size(points, baseline, [(f"article: {name}", lo, hi) for name, lo, hi in TIERS], title,
                                xlabel="clean training rows (one epoch each, log scale)")


def results_table(results: dict) -> list[dict]:
    """Arm, rows, steps, accuracy, fields right, schema valid, best val loss, stop epoch (and time)."""
    rows = []
    for name, e in results["evals"].items():
        if name.startswith("base-"):
            rows.append({"arm": name, "rows": 0, "steps": 0, "questions": e["n"], "accuracy": e["accuracy"],
                         "fields right": e["partial_credit"], "schema valid": e["schema_valid"],
                         "best val loss": None, "stop epoch": None, "train s": None})
    epochs = results.get("epochs", {})
    for arm, run in results["runs"].items():
        s = run.summary
        e = results["evals"].get(arm) or results.get("secondary", {}).get(arm) or {}
        rows.append({"arm": arm, "rows": s["train_rows"], "steps": s["steps"], "questions": e.get("n"),
                     "accuracy": e.get("accuracy"), "fields right": e.get("partial_credit"),
                     "schema valid": e.get("schema_valid"), "best val loss": s["best_eval_loss"],
                     "stop epoch": epochs.get(arm, {}).get("stop_epoch"), "train s": s["wall_seconds"]})
    return rows


def subset(evaluation: dict, rows: list[dict]) -> dict | None:
    """An evaluation's scores on a subset of its questions (None if it kept no per-answer scores)."""
    wanted = {r["id"] for r in rows}
    scores = [s for s in evaluation.get("scores", []) if s["id"] in wanted]
    if len(scores) != len(wanted):
        return None
    n = len(scores)
    return {"accuracy": sum(s["correct"] for s in scores) / n, "partial_credit": sum(s["field_score"] for s in scores) / n,
            "json_valid": sum(bool(s["json_valid"]) for s in scores) / n,
            "schema_valid": sum(bool(s["schema_valid"]) for s in scores) / n, "n": n, "scores": scores}


def epochs_summary(runs: dict, plan) -> dict[str, dict]:
    """Per epoch arm: rows, best epoch, stop epoch (replayed under the plan's patience), whether the
    trainer stopped there, and the curves' ends. An epoch arm evaluates once per epoch, so its
    ``eval_every`` is one epoch's steps (tests/test_lesson3.py checks it)."""
    out = {}
    for arm, run in runs.items():
        per_epoch = run.config.eval_every
        point = epoch_stop(run.eval_loss, per_epoch, plan.patience)
        s = run.summary
        out[arm] = {"train_rows": s["train_rows"], "val_rows": s["eval_rows"], "steps": s["steps"],
                    "steps_per_epoch": per_epoch, "best_epoch": point.best_x, "best_val_loss": point.best_loss,
                    "stop_epoch": point.stop_x,
                    "trainer_stopped_at": s["steps"] / per_epoch if s["stopped_early"] else None,
                    "last_val_loss": run.eval_loss[-1][1] if run.eval_loss else None,
                    "first_train_loss": run.train_loss[0][1] if run.train_loss else None,
                    "last_train_loss": run.train_loss[-1][1] if run.train_loss else None}
    return out


def batch_summary(runs: dict, plan=None) -> dict[str, dict]:
    """Per batch arm: examples, updates, training seconds per example, curve roughness, best val loss."""
    out = {}
    for arm, run in runs.items():
        s, batch = run.summary, run.config.batch_size
        examples = s["steps"] * batch
        per_example = seconds_per_example(run.history, examples)
        out[arm] = {"batch": batch, "updates": s["steps"], "examples": examples,
                    "train_seconds": per_example * examples if per_example else None,
                    "seconds_per_example": per_example, "roughness": late_roughness(run.train_loss, batch),
                    "best_val_loss": s["best_eval_loss"]}
    return out


# ---------------------------------------------------------------------------------------------
# the seed's claims, next to the paper's and ours; each verdict one threshold


def lima_verdict(clean: dict, noisy: dict) -> str:
    """Held when the clean small set is ahead on fields right by at least 2 points."""
    if max(clean["partial_credit"], noisy["partial_credit"]) < 0.10:
        return NO_SIGNAL
    gap = clean["partial_credit"] - noisy["partial_credit"]
    return "held" if gap >= 0.02 else \
        f"did not hold: the noisy set is ahead by {-100 * gap:.0f} points" if gap <= -0.02 else \
        "partly: a tie within 2 points of fields right"


def epochs_verdict(best_epoch: float | None) -> str:
    """Held when the lowest validation loss falls in epochs 2-3."""
    if best_epoch is None:
        return NO_SIGNAL
    return "held" if 2 <= best_epoch <= 3 else f"did not hold: best at epoch {best_epoch:g}"


def lr_verdict(best_loss: dict[float, float], article_lr: float) -> str:
    """Held when the article's rate ends within 10% of the best rate's validation loss."""
    best_lr = min(best_loss, key=best_loss.get)
    ratio = best_loss[article_lr] / best_loss[best_lr]
    return "held" if ratio <= 1.10 else \
        f"did not hold at 135M in a short run: {_lr(best_lr)} did best; {_lr(article_lr)} ends {ratio:.1f}x higher"


def batch_verdict(b1: dict, b8: dict) -> str:
    """Held when batch 8 is both faster per example and smoother than batch 1."""
    faster = b8["seconds_per_example"] < b1["seconds_per_example"]
    smoother = b8["roughness"] < b1["roughness"]
    return "held" if faster and smoother else \
        "did not hold: batch 1 was faster and smoother" if not (faster or smoother) else \
        "partly: " + ("faster per example but not smoother" if faster else "smoother but not faster per example")


def split_verdict(stops: dict[str, dict]) -> str:
    """Held when every split's early stopping fires and their best epochs agree within one epoch."""
    points = list(stops.values())
    if not points or any(p["stop_epoch"] is None for p in points):
        return "did not hold: validation loss never turned up enough to stop"
    best = [p["best_epoch"] for p in points]
    return "held" if max(best) - min(best) <= 1 else \
        f"partly: both stop, but the best epochs differ ({', '.join(f'{b:g}' for b in best)})"


def size_verdict(small: dict, baseline: dict) -> str:
    """Held when a few hundred rows beat the best prompt by 10+ points of fields right and of schema validity."""
    return "held" if (small["partial_credit"] - baseline["partial_credit"] >= 0.10
                      and small["schema_valid"] - baseline["schema_valid"] >= 0.10) else "did not hold"


def tier_verdict(points: list[tuple[int, dict]], baseline: dict) -> str:
    """The first tier's claim over every data size inside it: held when each size in 200-500 rows clears
    :func:`size_verdict`, partly when only some do (saying which), did not hold when none does."""
    cleared = [rows for rows, ev in points if size_verdict(ev, baseline) == "held"]
    if points and len(cleared) == len(points):
        return "held"
    if cleared:
        missed = [rows for rows, _ in points if rows not in cleared]
        return (f"partly: {', '.join(map(str, cleared))} rows beat the best prompt by 10+ points on both, "
                f"{', '.join(map(str, missed))} did not")
    return "did not hold"


def _lr_arms(plan) -> dict[float, str]:
    return dict(zip(plan.learning_rates, plan.lr_arms()))


def _best_losses(plan, runs) -> dict[float, float]:
    """Best validation loss per rate; a run that blew up to nan/inf counts as infinitely bad."""
    out = {}
    for lr, arm in _lr_arms(plan).items():
        if arm in runs:
            best = runs[arm].summary["best_eval_loss"]
            out[lr] = best if _finite(best) else math.inf
    return out


def _size_point(plan, runs, evals) -> str | None:
    """The first data-size arm inside the article's first tier (200-500 rows), else the largest."""
    tier = _tier_points(plan, runs, evals)
    sizes = [a for a in plan.size_arms() if a in evals and a in runs]
    return tier[0] if tier else (sizes[-1] if sizes else None)


def _tier_points(plan, runs, evals) -> list[str]:
    """The data-size arms inside the article's first tier (200-500 rows)."""
    return [a for a in plan.size_arms() if a in evals and a in runs and 200 <= runs[a].summary["train_rows"] <= 500]


def claims(results: dict) -> list[Claim]:
    """Article figure | paper figure | our figure | verdict, each verdict computed from our numbers."""
    plan, evals, runs = results["plan"], results["evals"], results["runs"]
    rows = []
    clean, noisy = plan.clean_arm, "noisy"
    if clean in evals and noisy in evals:
        c, n = evals[clean], evals[noisy]
        steps = runs[clean].summary["steps"] if clean in runs else "?"
        noisy_rows = runs[noisy].summary["train_rows"] if noisy in runs else "?"
        rows.append(_claim(
            "a small clean set beats a large noisy one (LIMA)",
            "1,000 curated examples competed with models trained on 52,000",
            "LIMA: LLaMa 65B tuned on 1,000 curated examples; answers equal to or preferred over GPT-4's in 43% "
            "of cases, and preferred over Alpaca 65B (tuned on 52,000)",
            f"{plan.clean_rows} clean vs {noisy_rows} noisy rows, {steps} steps each: fields right "
            f"{_pct(c['partial_credit'])} vs {_pct(n['partial_credit'])}, schema-valid {_pct(c['schema_valid'])} vs "
            f"{_pct(n['schema_valid'])}",
            lima_verdict(c, n)))
    small = _size_point(plan, runs, evals)
    if small and any(k.startswith("base-") for k in evals):
        base = evals[best_base(evals)]
        sizes = [a for a in plan.size_arms() if a in evals and a in runs]
        rows.append(_claim(
            "200-500 examples show whether fine-tuning helps",
            "200-500 proof of concept; 1,000-3,000 production; 5,000-50,000 enterprise",
            "LIMA's ablations: sharply diminishing returns from more data of the same kind",
            "fields right / schema-valid: best base prompt " + f"{_pct(base['partial_credit'])} / "
            f"{_pct(base['schema_valid'])}; " + ", ".join(
                f"{runs[a].summary['train_rows']} rows {_pct(evals[a]['partial_credit'])} / {_pct(evals[a]['schema_valid'])}"
                for a in sizes),
            tier_verdict([(runs[a].summary["train_rows"], evals[a]) for a in _tier_points(plan, runs, evals)]
                         or [(runs[small].summary["train_rows"], evals[small])], base)))
    epochs = results.get("epochs", {})
    if epochs:
        first = epochs[plan.epoch_arms()[0]]
        rows.append(_claim(
            "2-3 epochs is the sweet spot; more overfits",
            "2-3 epochs for most tasks; more than 4 almost always overfits small sets",
            "-",
            f"{first['train_rows']} rows: validation loss lowest at epoch {first['best_epoch']:g}"
            + (f", early stopping (patience {plan.patience}) stops at epoch {first['stop_epoch']:g}"
               if first["stop_epoch"] is not None else ", never turned up")
            + f"; training loss {first['first_train_loss']:.2f} -> {first['last_train_loss']:.2f}",
            epochs_verdict(first["best_epoch"])))
        rows.append(_claim(
            "hold out 10-20% for validation and stop when it turns up",
            "10-20% of the data held out; stop when validation loss rises while training loss falls",
            "LIMA kept a separate 50-example development set beside its 300 test prompts",
            "; ".join(f"{v['val_rows']} of {v['train_rows'] + v['val_rows']} rows held out: best epoch "
                      f"{v['best_epoch']:g}, stop at {'-' if v['stop_epoch'] is None else format(v['stop_epoch'], 'g')}"
                      for v in epochs.values()),
            split_verdict(epochs)))
    best = _best_losses(plan, runs)
    article = SEED_LEARNING_RATES["lora"]
    if article in best and len(best) >= 2:
        rows.append(_claim(
            "learning-rate baselines (LoRA 5e-5)",
            "full fine-tuning 2e-5, LoRA 5e-5, QLoRA 1e-5 to 2e-5",
            "QLoRA (Guanaco): 2e-4 for 7B, 1e-4 for 65B, effective batch 16, 1,875 steps",
            "best val loss: " + ", ".join(f"{_lr(lr)} {best[lr]:.3f}" for lr in sorted(best)),
            lr_verdict(best, article)))
    batch = results.get("batch", {})
    if len(batch) == 2 and all(v["seconds_per_example"] and v["roughness"] is not None for v in batch.values()):
        b8, b1 = sorted(batch.values(), key=lambda v: -v["batch"])
        rows.append(_claim(
            *BATCH_CLAIM,
            f"batch {b1['batch']} vs {b8['batch']} over the same {b8['examples']} examples: "
            f"{b1['seconds_per_example']:.2f} vs {b8['seconds_per_example']:.2f} s per example, roughness "
            f"{b1['roughness']:.3f} vs {b8['roughness']:.3f}, best val loss {b1['best_val_loss']:.3f} vs "
            f"{b8['best_val_loss']:.3f}",
            batch_verdict(b1, b8)))
    elif not getattr(plan, "go_further", True):
        rows.append(_claim(*BATCH_CLAIM, "batch 1 vs 8 is a go-further arm: not run by default", "not run (go further)"))
    return rows


#: the batch claim, the article's figure and the paper's (one row whether or not batch 1 ran)
BATCH_CLAIM = ("batch 4-8 is the usual choice", "4-8 typical; 1-2 when memory is tight; 16-32 may need a different rate",
               "QLoRA (Guanaco): batch 4 x 4 accumulation steps = 16")


def _claim(claim: str, article: str, paper: str, ours: str, verdict: str) -> Claim:
    held = True if verdict == "held" else False if verdict.startswith("did not hold") else None
    return Claim(claim, article, paper, ours, verdict, held)
