"""Synthetic-data generation speed: the same pipeline, a local teacher vs the same model behind a server.

Both arms run :func:`labkit.synth.run_pipeline` on the same tasks with the base SmolLM2 in every
role (writer, answerer, critic), in a fresh runs folder so nothing is reused:

* ``local``: the model loaded in this process, prompts batched (``LocalTeacher``, batch 16);
* ``endpoint``: ``transformers serve`` started on 127.0.0.1 with the same model folder, every call
  through the official ``openai`` client (``EndpointTeacher``, 4 requests in flight).

Reported per arm: generation seconds (questions and answers), pairs per minute, the whole
pipeline's seconds (with the critic, self-check and dedup), and the ratio local / endpoint. The
server's start-up time is reported apart. Interleaved ``--repeats`` times (the machine is shared).

usage: python benchmarks/synth_speed.py [--tasks 16] [--repeats 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from labkit.synth import SynthConfig, run_pipeline
    from labkit.synth.server import serve
    from labkit.synth.teachers import EndpointTeacher

    results: dict[str, list[dict]] = {"local": [], "endpoint": []}
    start = time.perf_counter()
    with serve("smollm2-135m-instruct") as server:
        print(f"server up in {time.perf_counter() - start:.0f} s at {server.base_url}, model {server.model!r}", flush=True)
        for rep in range(args.repeats):
            for arm in ("local", "endpoint"):
                os.environ["LABKIT_RUNS_DIR"] = tempfile.mkdtemp(prefix=f"synth-speed-{arm}-")
                config = SynthConfig(name=f"speed-{arm}", n_tasks=args.tasks, seed=rep,
                                     via="local" if arm == "local" else "endpoint",
                                     writer="smollm2-135m-instruct" if arm == "local" else server.model)
                teachers = None
                if arm == "endpoint":
                    t = EndpointTeacher(server.base_url, server.model)
                    teachers = {"writer": t, "answerer": t, "critic": t}
                run = run_pipeline(config, teachers=teachers, log=lambda line: None)
                s = run.summary
                results[arm].append(s)
                print(f"repeat {rep} {arm:<8}: generation {s['generation_seconds']:.0f} s for {s['generated']} pairs "
                      f"({s['pairs_per_minute']:.1f} pairs/min), whole pipeline {s['wall_seconds']:.0f} s, "
                      f"kept {s['kept']}", flush=True)

    def med(arm, key):
        return statistics.median(r[key] for r in results[arm])

    print(f"\n| teacher | pairs/min (generation) | pipeline s for {args.tasks} tasks |\n|---|---:|---:|")
    for arm in results:
        print(f"| {arm} | {med(arm, 'pairs_per_minute'):.1f} | {med(arm, 'wall_seconds'):.0f} |")
    print(f"\nlocal / endpoint, pairs per minute: {med('local', 'pairs_per_minute') / med('endpoint', 'pairs_per_minute'):.2f}x"
          f" ({os.cpu_count()} cores)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
