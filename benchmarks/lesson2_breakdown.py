"""Where lesson 2's wait goes: one cold full-profile run, phase by phase, in seconds and shares.

Runs exactly what ``labkit run lesson2`` runs (the same functions, in the same order) and times
each phase from outside, then splits every arm's time with what the run itself recorded:

* ``base evaluation``: the untouched model answering the test questions under each prompt;
* per arm, ``process + load + save``: the arm's wall time in ``train_isolated`` minus the training
  loop (spawning the child, importing torch/transformers, loading the model, tokenising, saving
  the adapter or model, the loss figure);
* ``training steps``: the training loop minus its validation passes;
* ``in-training validation``: the sum of the Trainer's ``eval_runtime`` over the run's evaluations;
* ``test generation``: loading the fine-tuned model and answering the test questions.

Cold means a runs folder with nothing in it: pass an empty ``--runs`` folder (default: the
configured runs folder, which must then not hold a ``lesson2-*`` run). Writes the table as
markdown and JSON to ``--out`` (default ``benchmarks/results/lesson2_breakdown.{md,json}``).

usage: LABKIT_PROFILE=full python benchmarks/lesson2_breakdown.py [--runs DIR] [--out PREFIX]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", help="runs folder (must hold no lesson2 run: this measures a cold run)")
    ap.add_argument("--profile", default="full")
    ap.add_argument("--out", default="benchmarks/results/lesson2_breakdown")
    args = ap.parse_args()
    if args.runs:
        os.environ["LABKIT_RUNS_DIR"] = str(Path(args.runs).resolve())
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from labkit import paths
    from labkit.lessons import lesson2 as L

    runs_dir = paths.runs_dir()
    stale = sorted(p.name for p in runs_dir.glob("lesson2-*")) + sorted(p.name for p in runs_dir.glob("base-evals/*"))
    if stale:
        raise SystemExit(f"{runs_dir} already holds {stale[:3]}...: not a cold run; pass an empty --runs folder")

    plan = L.Plan.for_profile(args.profile)
    print(plan.describe(), flush=True)
    phases: list[dict] = []
    start = time.perf_counter()

    def timed(fn):
        t = time.perf_counter()
        out = fn()
        return out, time.perf_counter() - t

    for prompt in L.PROMPTS:
        result, s = timed(lambda: L.evaluate_base(plan, prompt))
        phases.append({"phase": "base evaluation", "arm": prompt, "seconds": s})
        print(f"base {prompt}: {s:.0f} s ({result['n']} answers)", flush=True)
    for arm in L.ARMS:
        run, total = timed(lambda: L.train_arms(plan, [arm])[arm])
        loop = run.summary["wall_seconds"]
        evals = sum(m.get("eval_runtime", 0.0) for m in run.history)
        phases += [{"phase": "process + load + save", "arm": arm, "seconds": total - loop},
                   {"phase": "training steps", "arm": arm, "seconds": loop - evals,
                    "steps": run.summary["steps"], "tokens_per_s": run.summary["tokens_per_second"]},
                   {"phase": "in-training validation", "arm": arm, "seconds": evals,
                    "passes": sum("eval_loss" in m for m in run.history)}]
        _, s = timed(lambda: L.evaluate_run(run, plan))
        phases.append({"phase": "test generation", "arm": arm, "seconds": s})
        print(f"{arm}: {total:.0f} s training ({loop:.0f} s loop, {evals:.0f} s of it validation), "
              f"{s:.0f} s test generation", flush=True)
    wall = time.perf_counter() - start

    by_phase: dict[str, float] = {}
    for p in phases:
        by_phase[p["phase"]] = by_phase.get(p["phase"], 0.0) + p["seconds"]
    lines = [f"Lesson 2, {plan.profile} profile, cold: {wall:.0f} s ({wall / 60:.1f} min) on "
             f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}", "",
             "| phase | seconds | share |", "|---|---:|---:|"]
    for name, s in sorted(by_phase.items(), key=lambda kv: -kv[1]):
        lines.append(f"| {name} | {s:.0f} | {s / wall:.0%} |")
    lines.append(f"| (unaccounted: imports, data) | {wall - sum(by_phase.values()):.0f} | "
                 f"{(wall - sum(by_phase.values())) / wall:.0%} |")
    lines += ["", "| arm | phase | seconds |", "|---|---|---:|"]
    lines += [f"| {p['arm']} | {p['phase']} | {p['seconds']:.0f} |" for p in phases]
    text = "\n".join(lines)
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(text + "\n")
    out.with_suffix(".json").write_text(json.dumps({"wall_seconds": wall, "by_phase": by_phase, "phases": phases},
                                                   indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
