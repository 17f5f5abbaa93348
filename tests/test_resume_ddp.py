"""Runs survive a kill -9, and the same code runs as two processes under accelerate (gloo DDP)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent / "helpers" / "train_tiny.py"


def _env():
    return {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


def _summary(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def _objects(stdout: str) -> list[dict]:
    """Every JSON object printed, even when two processes' lines ran into each other."""
    decoder, out, i = json.JSONDecoder(), [], stdout.find("{")
    while i != -1:
        try:
            obj, end = decoder.raw_decode(stdout, i)
        except json.JSONDecodeError:
            i = stdout.find("{", i + 1)
            continue
        if isinstance(obj, dict) and "steps" in obj:
            out.append(obj)
        i = stdout.find("{", end)
    return out


def test_killed_run_resumes_to_the_same_final_loss(tmp_path):
    straight = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "a"), "--steps", "6"], capture_output=True,
                              text=True, env=_env(), timeout=900)
    assert straight.returncode == 0, straight.stderr[-2000:]
    expected = _summary(straight.stdout)

    runs = tmp_path / "b"
    proc = subprocess.Popen([sys.executable, str(SCRIPT), str(runs), "--steps", "6"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=_env())
    deadline = time.time() + 900
    while time.time() < deadline:
        if list(runs.glob("*/checkpoints/checkpoint-2/trainer_state.json")):
            break
        assert proc.poll() is None, "the run ended before it could be killed"
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    folder = next(runs.iterdir())
    assert not (folder / "summary.json").exists(), "the killed run must not look finished"
    assert folder.name.endswith(".partial"), "an interrupted run trains in its staging folder"

    resumed = subprocess.run([sys.executable, str(SCRIPT), str(runs), "--steps", "6", "--resume"], capture_output=True,
                             text=True, env=_env(), timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    got = _summary(resumed.stdout)
    assert got["resumed_from"] and got["resumed_from"].startswith("checkpoint-")
    assert got["steps"] == expected["steps"]
    assert got["last_eval_loss"] == pytest.approx(expected["last_eval_loss"], rel=1e-5)
    # the history reads like one uninterrupted run: no step logged twice
    steps = [r["step"] for r in got["history"] if "loss" in r]
    assert steps == sorted(set(steps))


def test_two_process_accelerate_run(tmp_path):
    accelerate = Path(sys.executable).parent / "accelerate"
    # `--cpu` would make accelerate start a single process; `--multi_gpu` on a machine without
    # CUDA starts torchrun with two CPU ranks that talk over gloo, exactly DDP's code path.
    cmd = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29571",
           str(SCRIPT), str(tmp_path), "--steps", "4"]
    result = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = _objects(result.stdout)[-1]  # both ranks print; their lines may interleave
    assert summary["processes"] == 2
    assert summary["steps"] == 4
    assert len(list(tmp_path.glob("tiny-*/summary.json"))) == 1
    # the same command again: every rank takes rank 0's decision to reuse (it used to crash with rc=1
    # when rank 0 returned early and rank 1 waited at a barrier)
    again = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    reused = _objects(again.stdout)
    assert len(reused) == 2 and all(r["reused"] and r["folder"] == summary["folder"] for r in reused)
    assert len(list(tmp_path.glob("tiny-*"))) == 1


def test_the_world_size_is_part_of_the_run_hash():
    from helpers.tiny import pattern_rows
    from labkit.config import TrainConfig
    from labkit.sft.train import run_dir

    cfg, rows = TrainConfig(), pattern_rows(4)
    one, two = run_dir(cfg, rows, rows), run_dir(cfg, rows, rows, world=2)
    assert one != two and run_dir(cfg, rows, rows, world=1) == one
