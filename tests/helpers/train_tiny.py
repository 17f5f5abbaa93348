"""Run a tiny LoRA training in its own process (for the kill -9 resume test and the DDP test).

usage: python train_tiny.py RUNS_DIR [--resume] [--steps N]
Prints the summary as JSON on the last line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from helpers.tiny import pattern_rows  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("runs_dir")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()
    os.environ["LABKIT_RUNS_DIR"] = args.runs_dir

    from labkit.config import TrainConfig
    from labkit.sft.train import train

    cfg = TrainConfig(run_name="tiny", method="lora", max_steps=args.steps, learning_rate=2e-3, batch_size=4,
                      max_length=64, eval_every=2, log_every=1, early_stopping_patience=None)
    run = train(cfg, pattern_rows(32), pattern_rows(8, seed=1), resume=args.resume)
    print(json.dumps({k: run.summary.get(k) for k in
                      ("final_train_loss", "last_eval_loss", "steps", "resumed_from", "processes")}
                     | {"history": run.history, "reused": run.reused, "folder": run.path.name}), flush=True)


if __name__ == "__main__":
    main()
