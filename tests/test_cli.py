"""The `labkit` command: doctor passes here, bad input gets one clear line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def _labkit(*args, **kw):
    return subprocess.run([sys.executable, "-m", "labkit.cli", *args], capture_output=True,
                          text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, **kw)


def test_doctor_passes_here():
    result = _labkit("doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "smollm2-135m-instruct loads" in result.stdout
    assert "[FAIL]" not in result.stdout


def test_doctor_fails_on_a_broken_install(monkeypatch):
    from labkit import doctor

    monkeypatch.setattr(doctor, "LIBRARIES", ("torch", "a-library-that-does-not-exist"))
    checks = doctor.run_checks(load_models=False)
    failed = [c for c in checks if c.status == "FAIL"]
    assert [c.item for c in failed] == ["a-library-that-does-not-exist"]
    assert doctor.main(load_models=False) == 1


def test_models_list():
    result = _labkit("models")
    assert result.returncode == 0
    assert "smollm2-135m-instruct" in result.stdout and "minilm-l6" in result.stdout


def test_train_from_yaml_prints_a_summary(tmp_path):
    import json

    rows = [{"messages": [{"role": "user", "content": f"Tag {c}"},
                          {"role": "assistant", "content": json.dumps({"color": c})}]}
            for c in ("red", "blue", "green", "teal", "plum", "rust", "navy", "olive")]
    (tmp_path / "chats.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "run.yaml").write_text("run_name: cli-test\nmethod: lora\nrank: 4\nmax_steps: 2\n"
                                       "batch_size: 4\neval_fraction: 0.25\ntrain_file: chats.jsonl\n")
    env_runs = {"LABKIT_RUNS_DIR": str(tmp_path / "runs")}
    result = subprocess.run([sys.executable, "-m", "labkit.cli", "train", "--config", str(tmp_path / "run.yaml")],
                            capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1", **env_runs})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "finished:" in result.stdout and "tokens_per_second" in result.stdout
    again = subprocess.run([sys.executable, "-m", "labkit.cli", "train", "--config", str(tmp_path / "run.yaml")],
                           capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1", **env_runs})
    assert "reused finished run" in again.stdout


def test_train_with_a_bad_config_gives_one_line(tmp_path):
    (tmp_path / "bad.yaml").write_text("method: lora\nrank: 0\n")
    result = _labkit("train", "--config", str(tmp_path / "bad.yaml"))
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: ") and "rank=0" in result.stderr
    assert "Traceback" not in result.stderr
