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

A server must not outlive the Python process that started it (a killed notebook kernel would
otherwise leave a model loaded and a port taken). :func:`spawn` makes sure of that three ways:
the child runs in its own session (its own process group, so :meth:`Server.stop` ends the group
and a Ctrl-C aimed at the parent's terminal does not half-kill it); on Linux the kernel sends it
SIGTERM when the parent dies, even by SIGKILL (``PR_SET_PDEATHSIG``); and an ``atexit`` hook plus a
SIGTERM handler (installed only where none was set) stop every child still running when the
parent exits normally or is terminated.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
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
        """Terminate the server and its process group (and only those), then kill what lingers."""
        stop_process(self.process, timeout)


# ---------------------------------------------------------------------------------------------
# children that do not outlive their parent

_LIVE: set[subprocess.Popen] = set()
_HOOKED = False


def _set_parent_death_signal(parent: int):
    """What the child runs between fork and exec (Linux): SIGTERM me when my parent dies."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    prctl = getattr(libc, "prctl", None)
    if prctl is None:
        return None

    def preexec() -> None:
        prctl(1, signal.SIGTERM, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before the line above: go now
            os._exit(1)

    return preexec


def _stop_all() -> None:
    for process in list(_LIVE):
        stop_process(process, timeout=5.0)


def _on_sigterm(signum, frame) -> None:  # pragma: no cover - exercised in a child process by the tests
    _stop_all()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _hook() -> None:
    """Once per process: stop live children at exit, and on SIGTERM when nobody else handles it."""
    global _HOOKED
    if _HOOKED:
        return
    _HOOKED = True
    atexit.register(_stop_all)
    import threading

    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) in (
            signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _on_sigterm)


def spawn(command: list[str], **popen_kwargs) -> subprocess.Popen:
    """``subprocess.Popen(command, ...)`` for a long-lived helper that must die with this process:
    its own session, the parent-death signal on Linux, and the exit/SIGTERM hooks."""
    _hook()
    preexec = _set_parent_death_signal(os.getpid()) if sys.platform.startswith("linux") else None
    process = subprocess.Popen(command, start_new_session=True, preexec_fn=preexec, **popen_kwargs)
    _LIVE.add(process)
    return process


def stop_process(process: subprocess.Popen, timeout: float = 20.0) -> None:
    """SIGTERM to the process's group (its own session, from :func:`spawn`), SIGKILL after
    ``timeout`` seconds; a process that already ended is left alone (its pid may be reused)."""
    def signal_group(sig) -> None:
        try:
            os.killpg(process.pid, sig)  # the session leader's pid is its group id
        except (ProcessLookupError, PermissionError):
            try:
                process.send_signal(sig)
            except ProcessLookupError:
                pass

    if process.poll() is None:
        signal_group(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            signal_group(signal.SIGKILL)
            process.wait(timeout)
    _LIVE.discard(process)


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
        process = spawn(command, cwd=folder.parent, stdout=log, stderr=subprocess.STDOUT, env=env,
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
