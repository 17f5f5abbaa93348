"""labkit.allocator: freed tensors leave a CPU process in each mode that says so, and glibc's own
behaviour (what the modes exist to avoid) is still what the docstring describes.

Each case runs in a fresh interpreter because allocator settings are process-wide and sticky.
The workload is the pattern that kept training memory high: one large tensor freed (glibc then
raises its mmap threshold), then many activation-sized tensors, all freed except the last, which
pins the top of the heap so glibc's automatic trim cannot reach what lies below it.
"""

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                                reason="glibc's mallopt and malloc_trim only")

CHILD = r"""
import psutil, torch
from labkit import allocator
mode = allocator.setup()
rss = lambda: psutil.Process().memory_info().rss / 2**20
big = torch.ones(4 * 2**20)       # 16 MB, mmapped; freeing it raises glibc's dynamic threshold
del big
before = rss()
chunks = [torch.ones(2**20) for _ in range(100)]   # 100 x 4 MB, like one step's activations
last = chunks.pop()
del chunks                        # freed; `last` stays alive on top of them
allocator.release()               # what the trainer callback does after each step
print(mode, round(rss() - before))
"""


def _retained(mode: str) -> tuple[str, float]:
    env = {**os.environ, "LABKIT_MALLOC": mode}
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    applied, mb = out.stdout.split()[-2:]
    return applied, float(mb)


@pytest.mark.parametrize("mode", ["trim", "mmap"])
def test_freed_tensors_are_returned_to_the_os(mode):
    applied, kept = _retained(mode)
    assert applied == mode
    assert kept < 40, f"{mode}: {kept:.0f} MB of 396 MB freed stayed in the process"


def test_glibc_default_keeps_them():
    applied, kept = _retained("glibc")
    assert applied == "glibc"
    assert kept > 300, f"only {kept:.0f} MB retained: glibc's default no longer behaves as documented"


def test_trainer_callback_releases_after_steps_and_evaluations(monkeypatch):
    from labkit import allocator

    calls = []
    monkeypatch.setattr(allocator, "release", lambda: calls.append(1) or True)
    cb = allocator.trainer_callback()
    cb.on_step_end(None, None, None)
    cb.on_evaluate(None, None, None)
    assert len(calls) == 2


def test_a_bad_mode_names_the_variable_and_doctor_names_the_path(monkeypatch):
    from labkit import allocator

    monkeypatch.setenv("LABKIT_MALLOC", "jemalloc")
    with pytest.raises(ValueError, match="LABKIT_MALLOC='jemalloc': expected one of trim, mmap, glibc"):
        allocator.chosen()
    assert "LABKIT_MALLOC='jemalloc'" in allocator.mode()
    monkeypatch.setenv("LABKIT_MALLOC", "glibc")
    assert "glibc default" in allocator.mode()
    monkeypatch.delenv("LABKIT_MALLOC")
    assert "returned after every step" in allocator.mode()
