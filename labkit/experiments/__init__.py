"""The course's experiments, runnable headless: ``labkit run <id>`` trains and evaluates every arm
and caches the runs, so a notebook (or a whole workshop room) later just reads them.
"""

from __future__ import annotations

import os
import time
from typing import Callable


def _lesson2() -> dict:
    from labkit.experiments import lora_lesson as L

    plan = L.Plan.for_profile()
    print(plan.describe(), flush=True)
    out = {}
    for prompt in ("dataset", "careful"):
        base = L.evaluate_base(plan, prompt)
        print(f"  base model, {prompt} prompt: accuracy {base['accuracy']:.1%}, JSON-valid {base['json_valid']:.1%}")
        out[f"base-{prompt}"] = base
    for arm in L.ARMS:
        start = time.perf_counter()
        run = L.train_arms(plan, [arm])[arm]
        result = L.evaluate_run(run, plan)
        print(f"  {arm:<6} {'reused' if run.reused else 'trained'} {run.path.name}: best val loss "
              f"{run.summary['best_eval_loss']:.3f}, accuracy {result['accuracy']:.1%}, JSON-valid "
              f"{result['json_valid']:.1%} ({time.perf_counter() - start:.0f} s)", flush=True)
        out[arm] = result
    return out


#: id -> (what it measures, function)
EXPERIMENTS: dict[str, tuple[str, Callable[[], dict]]] = {
    "lesson2": ("E2 format control, E3 rank sweep, E4 QLoRA memory (notebook 02)", _lesson2),
}


def cli_run(args) -> int:
    if args.profile:
        os.environ["LABKIT_PROFILE"] = args.profile
    if not args.experiment:
        for name, (what, _) in EXPERIMENTS.items():
            print(f"{name:<10} {what}")
        return 0
    names = list(EXPERIMENTS) if args.experiment == "all" else [args.experiment]
    for name in names:
        if name not in EXPERIMENTS:
            raise LookupError(f"unknown experiment {name!r}; known: {', '.join(EXPERIMENTS)}, all")
        print(f"== {name}: {EXPERIMENTS[name][0]}", flush=True)
        start = time.perf_counter()
        EXPERIMENTS[name][1]()
        print(f"== {name} done in {time.perf_counter() - start:.0f} s", flush=True)
    return 0
