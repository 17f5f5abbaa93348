"""Honest memory figures: the peak resident memory of a block of code, sampled while it runs.

>>> with PeakMemory() as mem:                                     # doctest: +SKIP
...     trainer.train()
>>> mem.peak_rss - mem.start_rss                                  # doctest: +SKIP
"""

from __future__ import annotations

import threading


class PeakMemory:
    """Peak resident memory of this process while the block runs (sampled every 20 ms).

    On CUDA the peak allocated device memory is read from torch as well.
    """

    def __init__(self, interval: float = 0.02):
        self.interval = interval
        self.peak_rss = 0
        self.start_rss = 0
        self.peak_cuda = 0
        self._stop = threading.Event()

    def _sample(self) -> None:
        import psutil

        proc = psutil.Process()
        while not self._stop.is_set():
            self.peak_rss = max(self.peak_rss, proc.memory_info().rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> "PeakMemory":
        import psutil
        import torch

        self.start_rss = self.peak_rss = psutil.Process().memory_info().rss
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        import torch

        self._stop.set()
        self._thread.join()
        if torch.cuda.is_available():
            self.peak_cuda = int(torch.cuda.max_memory_allocated())

