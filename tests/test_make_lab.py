"""`make lab` really serves the course: start it, ask the server over HTTP, stop it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_lab_serves_the_notebooks(tmp_path):
    port = _free_port()
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"), "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg")}
    proc = subprocess.Popen(
        ["make", "-s", "lab", f"LAB_PORT={port}", "LAB_ARGS=--no-browser --IdentityProvider.token= "
         "--ServerApp.password="], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    try:
        listing = None
        deadline = time.time() + 180
        while time.time() < deadline and listing is None:
            assert proc.poll() is None, "make lab exited early"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents/", timeout=5) as resp:
                    listing = json.load(resp)
            except OSError:
                time.sleep(1)
        assert listing is not None, "JupyterLab did not answer within 3 minutes"
        names = {item["name"] for item in listing["content"]}
        assert {"00_start_here.ipynb", "02_lora_and_qlora.ipynb"} <= names
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab", timeout=10) as resp:
            assert resp.status == 200 and b"JupyterLab" in resp.read()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
