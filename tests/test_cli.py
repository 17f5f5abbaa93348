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
