"""Test-wide rules: offline, no outbound sockets, smoke profile, writes kept in tmp folders."""

from __future__ import annotations

import ipaddress
import os
import socket

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("LABKIT_PROFILE", "smoke")
os.environ.setdefault("MPLBACKEND", "Agg")


class OutboundConnectionBlocked(RuntimeError):
    """Raised when code under test tries to reach anything but this machine."""


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
attempts: list[str] = []


def _is_local(sock: socket.socket, address) -> bool:
    if sock.family == getattr(socket, "AF_UNIX", None):
        return True
    host = address[0] if isinstance(address, tuple) else address
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _guard(real):
    def connect(self, address):
        if not _is_local(self, address):
            attempts.append(repr(address))
            raise OutboundConnectionBlocked(f"test tried to connect to {address!r}")
        return real(self, address)

    return connect


@pytest.fixture(autouse=True, scope="session")
def block_outbound_sockets():
    """Every test runs with outbound connections refused; loopback (Jupyter, gloo) is allowed."""
    socket.socket.connect = _guard(_real_connect)
    socket.socket.connect_ex = _guard(_real_connect_ex)
    yield attempts
    socket.socket.connect = _real_connect
    socket.socket.connect_ex = _real_connect_ex
    assert not attempts, f"code under test tried to reach the network: {attempts}"


@pytest.fixture(scope="session")
def smollm():
    """The embedded SmolLM2 at fp32, loaded once per session."""
    from labkit import models

    return models.load("smollm2-135m-instruct", precision="fp32")


@pytest.fixture
def isolated_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_RUNS_DIR", str(tmp_path / "runs"))
    return tmp_path / "runs"
