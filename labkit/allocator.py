"""Make a CPU training process give freed activation memory back to the operating system.

PyTorch on a CPU allocates tensors with the C library's ``malloc``. glibc serves a large block
with its own ``mmap`` and unmaps it on ``free``, but only above a threshold that it raises at run
time: the first time a large block is freed the threshold jumps to that block's size (up to
32 MB). From then on a training step's activations (1-5 MB per tensor for SmolLM2 at batch 8)
come from the heap, and freed heap memory stays in the process, fragmented, so the next step's
forward pass takes fresh pages instead of reusing it.

Measured on lesson 2's LoRA r16 arm (fp32, batch 8 x 84 tokens, ~0.8 GB of saved activations):
with glibc's default the process sat at 1.9-2.6 GB *between* steps and peaked at 2.8 GB; with
the threshold pinned at 128 KB it returns to 1.2 GB between steps and peaks at 2.15 GB
(``/work`` notes in ``benchmarks/train_throughput.py``'s ``lora-fp32-glibc`` arm measure the same
lever against its speed cost). Setting the threshold explicitly is glibc's documented way to turn
the dynamic adjustment off (``mallopt(3)``, ``M_MMAP_THRESHOLD``); it also fixes the trim
threshold, so the heap's free top is returned too.

Nothing here changes results: it only decides where freed memory goes. On other C libraries
(macOS, musl) and on CUDA, whose caching allocator is torch's own, it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

#: glibc's ``M_MMAP_THRESHOLD`` parameter number (malloc.h)
M_MMAP_THRESHOLD = -3
#: blocks at least this large get their own mapping, returned to the OS on free (glibc's own default)
MMAP_THRESHOLD_BYTES = 128 * 1024
#: set to ``glibc`` to keep the C library's dynamic threshold (to measure what this module saves)
ENV = "LABKIT_MALLOC"

_applied: bool | None = None


def return_freed_memory() -> bool:
    """Pin glibc's mmap threshold so freed tensors leave the process; True when it took effect.

    Idempotent and safe to call anywhere: it does nothing (and returns False) off Linux/glibc or
    when ``LABKIT_MALLOC=glibc`` asks for the C library's default behaviour.
    """
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if os.environ.get(ENV, "").strip().lower() == "glibc" or platform.system() != "Linux":
        return False
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        _applied = bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    except (OSError, AttributeError):  # no mallopt in this C library
        _applied = False
    return _applied


def mode() -> str:
    """How this process's CPU allocator treats freed tensors (for ``labkit doctor``)."""
    if os.environ.get(ENV, "").strip().lower() == "glibc":
        return f"glibc default (dynamic mmap threshold, {ENV}=glibc): freed activations stay in the process"
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return "the platform's allocator (not glibc: labkit leaves it alone)"
    return (f"glibc with the mmap threshold pinned at {MMAP_THRESHOLD_BYTES // 1024} KB during training: "
            "freed activations go back to the OS")
