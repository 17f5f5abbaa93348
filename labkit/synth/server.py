"""Start and stop a real OpenAI-compatible server on this machine: ``transformers serve``.

transformers 5 ships one (``pip install "transformers[serving]"``: FastAPI + uvicorn). It serves a
model folder offline, and the :class:`~labkit.synth.teachers.EndpointTeacher` talks to it exactly
as it would talk to vLLM, llama.cpp's server or a hosted API. labkit does not write a server of
its own; this module only launches that one in a child process and waits until it answers.

How it is started (verified offline with ``HF_HUB_OFFLINE=1``)::

    cd <folder that holds the model folder>
    transformers serve <model folder name> --host 127.0.0.1 --port N --device cpu

The server is pinned to the model it was started with, and requests must name that model exactly
as it was given. Starting it from the parent folder with the bare folder name makes that name
short and free of machine paths (``smollm2-135m-instruct`` for labkit's cached SmolLM2).

>>> with serve("smollm2-135m-instruct") as server:              # doctest: +SKIP
...     teacher = EndpointTeacher(server.base_url, server.model)
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from labkit.errors import LabkitError


class ServerError(LabkitError, RuntimeError):
    """The server did not come up (its log's last lines are in the message)."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass
class Server:
    process: subprocess.Popen
    host: str
    port: int
    model: str
    log_path: Path
    started_seconds: float = 0.0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What an OpenAI client takes as ``base_url``."""
        return self.url + "/v1"

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=2) as reply:
                return reply.status == 200
        except OSError:
            return False

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 20.0) -> None:
        """Terminate the server (and only it), then kill it if it lingers."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)


def model_folder(model: str) -> Path:
    """An embedded model's cached folder (converted on first use), or a local folder as given."""
    from labkit import models

    if model in models.EMBEDDED:
        return models.prepare(model)[0]
    path = Path(model).expanduser()
    if not (path / "config.json").is_file():
        raise ServerError(f"{model}: not an embedded model name nor a model folder with a config.json")
    return path.resolve()


def start(model: str = "smollm2-135m-instruct", port: int | None = None, host: str = "127.0.0.1",
          device: str = "cpu", wait_s: float = 300.0, extra_args: tuple[str, ...] = ()) -> Server:
    """Launch ``transformers serve`` for ``model`` and wait until ``/health`` answers and a first
    request to the model has loaded it. Remember to :meth:`Server.stop` it (or use :func:`serve`)."""
    folder = model_folder(model)
    port = port or free_port(host)
    log_path = Path(tempfile.mkstemp(prefix="labkit-serve-", suffix=".log")[1])
    cli = Path(sys.executable).with_name("transformers")
    command = [str(cli) if cli.is_file() else "transformers", "serve", folder.name, "--host", host,
               "--port", str(port), "--device", device, *extra_args]
    env = {**os.environ, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}
    began = time.perf_counter()
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, cwd=folder.parent, stdout=log, stderr=subprocess.STDOUT, env=env,
                                   stdin=subprocess.DEVNULL)
    server = Server(process, host, port, folder.name, log_path)
    try:
        while not server.healthy():
            if process.poll() is not None:
                raise ServerError(f"transformers serve exited with code {process.returncode}:\n{server.log_tail()}")
            if time.perf_counter() - began > wait_s:
                raise ServerError(f"transformers serve did not answer /health within {wait_s:.0f} s:\n"
                                  f"{server.log_tail()}")
            time.sleep(0.5)
    except BaseException:
        server.stop()
        raise
    server.started_seconds = time.perf_counter() - began
    return server


@contextlib.contextmanager
def serve(model: str = "smollm2-135m-instruct", **kwargs) -> Iterator[Server]:
    """``with serve(...) as server:`` - the server runs inside the block and is always stopped."""
    server = start(model, **kwargs)
    try:
        yield server
    finally:
        server.stop()
