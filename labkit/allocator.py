"""Where a CPU training process's freed memory goes: back to the OS, or kept by the C library.

PyTorch on a CPU allocates tensors with the C library's ``malloc``. glibc serves a large block
with its own ``mmap`` and unmaps it on ``free``, but only above a threshold that it raises at run
time: the first time a large block is freed the threshold jumps to that block's size (up to
32 MB). From then on a step's activations (1-5 MB per tensor for SmolLM2 at batch 8) come from
the heap, and memory freed there stays in the process between steps.

Three behaviours, chosen with ``LABKIT_MALLOC`` (measured on lesson 2's LoRA r16 step, bf16
autocast, batch 8 x 84 tokens, 8 steps; ``benchmarks/train_throughput.py`` measures the same in
whole runs):

- ``trim`` (default): after every optimizer step and evaluation, ``malloc_trim(0)`` hands the
  heap's free pages back. In the 8-step probe: between steps 1.9 GB -> 0.9 GB, peak 2.33 -> 2.22
  GB, same speed. In whole runs the peak falls more, because without it the leftovers grow over
  steps and evaluations: lesson 2's arms -12 to -25%; the training benchmark -13% for 7-11% fewer
  tokens/s (the next step's pages are faulted in again). Within a step the heap still reuses
  freed blocks.
- ``mmap``: pin the mmap threshold at 128 KB (``mallopt(M_MMAP_THRESHOLD)``, which also turns
  the dynamic adjustment off), so every large tensor is unmapped the moment it is freed. Peak
  2.33 -> 1.93 GB (-17%), but 1.6x slower steps: every temporary is a fresh mapping whose pages
  the kernel must zero. For a machine where memory, not time, is what runs out.
- ``glibc``: leave the C library alone (to measure what the other two change).

Nothing here changes results, only where freed memory goes. Off glibc (macOS, musl) and on CUDA,
whose caching allocator is torch's own, it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

#: glibc's ``M_MMAP_THRESHOLD`` parameter number (malloc.h)
M_MMAP_THRESHOLD = -3
#: the ``mmap`` mode's threshold: glibc's own starting value, kept fixed
MMAP_THRESHOLD_BYTES = 128 * 1024
ENV = "LABKIT_MALLOC"
MODES = ("trim", "mmap", "glibc")

_libc = None
_pinned = False


def chosen() -> str:
    """The mode ``LABKIT_MALLOC`` asks for (default ``trim``); an unknown value is an error."""
    value = os.environ.get(ENV, "").strip().lower() or "trim"
    if value not in MODES:
        from labkit.errors import UsageError

        raise UsageError(f"{ENV}={value!r}: expected one of {', '.join(MODES)}")
    return value


def _glibc():
    global _libc
    if _libc is None:
        _libc = False
        if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
            try:
                _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            except OSError:
                pass
    return _libc


def setup() -> str:
    """Apply the chosen mode to this process; returns what is in effect (``none`` off glibc).

    Call once before training; idempotent."""
    global _pinned
    libc = _glibc()
    if not libc:
        return "none"
    mode = chosen()
    if mode == "mmap" and not _pinned:
        _pinned = bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    return mode


def release() -> bool:
    """Return the heap's free pages to the OS now, in ``trim`` mode; True when something was."""
    libc = _glibc()
    if not libc or chosen() != "trim":
        return False
    return bool(libc.malloc_trim(0))


def trainer_callback():
    """A TrainerCallback that calls :func:`release` after each optimizer step and evaluation."""
    from transformers import TrainerCallback

    class ReleaseFreedMemory(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            release()

        def on_evaluate(self, args, state, control, **kwargs):
            release()

    return ReleaseFreedMemory()


def mode() -> str:
    """How this machine's training processes treat freed tensors (for ``labkit doctor``)."""
    if not _glibc():
        return "the platform's allocator (not glibc: labkit leaves it alone)"
    try:
        current = chosen()
    except ValueError as exc:
        return str(exc)
    return {
        "trim": "glibc, free heap pages returned after every step and evaluation (LABKIT_MALLOC=trim, default)",
        "mmap": f"glibc, mmap threshold pinned at {MMAP_THRESHOLD_BYTES // 1024} KB (LABKIT_MALLOC=mmap): "
                "lowest peak memory, slower steps",
        "glibc": "glibc default (LABKIT_MALLOC=glibc): freed activations stay in the process between steps",
    }[current]
