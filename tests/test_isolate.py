"""train_arm: the same run whether a lesson trains it in a child process or in this one."""

from __future__ import annotations

from helpers.tiny import pattern_rows
from labkit import runs
from labkit.config import TrainConfig
from labkit.sft import train_arm


def test_isolated_arm_trains_in_a_child_and_the_in_process_path_reuses_its_folder(isolated_runs):
    cfg = TrainConfig(run_name="tiny-arm", method="lora", max_steps=4, learning_rate=2e-3, batch_size=4,
                      max_length=64, eval_every=2, log_every=1, early_stopping_patience=None)
    child = train_arm(cfg, pattern_rows(16), pattern_rows(4, seed=1), isolate=True)
    assert not child.reused and runs.is_finished(child.path)
    losses = [row["loss"] for row in runs.read_metrics(child.path) if "loss" in row]
    assert len(losses) == 4 and losses[-1] < losses[0]
    here = train_arm(cfg, pattern_rows(16), pattern_rows(4, seed=1), isolate=False)
    assert here.reused and here.path == child.path
