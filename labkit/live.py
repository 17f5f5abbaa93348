"""Live loss curves: one small board that redraws in place, and a TrainerCallback that feeds it.

In a notebook the figure is shown once with a display id and then *updated* (not re-displayed),
throttled to one redraw every ``every_s`` seconds, so a long run does not flood the output.
Headless (CLI, CI, nbval in the smoke profile) nothing streams: :meth:`LiveBoard.finish` shows
one final figure and saves it as PNG.

>>> board = LiveBoard(title="r16 on the formulary")            # doctest: +SKIP
>>> trainer.add_callback(LiveLossCallback(board, label="r16"))  # doctest: +SKIP
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from pathlib import Path

try:  # the callback base class; the board itself works without transformers
    from transformers import TrainerCallback
except ImportError:  # pragma: no cover
    TrainerCallback = object  # type: ignore[misc,assignment]


def in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def streaming_enabled() -> bool:
    """Stream only for a person watching: in a kernel, not in the smoke profile, not disabled."""
    if os.environ.get("LABKIT_LIVE", "").strip() == "0":
        return False
    if os.environ.get("LABKIT_PROFILE", "full") == "smoke":
        return False
    return in_notebook()


class LiveBoard:
    """Curves that draw themselves as points arrive (after d2l's ProgressBoard).

    Args:
        title: figure title.
        xlabel, ylabel: axis labels.
        every_s: minimum seconds between redraws while streaming.
        live: force streaming on/off; default :func:`streaming_enabled`.
        figsize: fixed so that updates do not make the cell jump.
    """

    def __init__(self, title: str = "", xlabel: str = "step", ylabel: str = "loss",
                 every_s: float = 2.0, live: bool | None = None, figsize=(7.5, 4.0), logy: bool = False):
        self.title, self.xlabel, self.ylabel = title, xlabel, ylabel
        self.every_s = every_s
        self.live = streaming_enabled() if live is None else live
        self.figsize = figsize
        self.logy = logy
        self.series: dict[str, list[tuple[float, float]]] = defaultdict(list)
        self.marks: list[tuple[float, str, str]] = []
        self._handle = None
        self._last_draw = 0.0
        self.draws = 0

    def add(self, series: str, x: float, y: float) -> None:
        self.series[series].append((float(x), float(y)))
        if self.live and time.monotonic() - self._last_draw >= self.every_s:
            self._show()

    def mark(self, x: float, label: str, color: str = "gray") -> None:
        """A vertical line: the best step, the point where early stopping fired."""
        self.marks.append((float(x), label, color))

    def figure(self):
        import matplotlib

        if not in_notebook():
            matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=self.figsize)
        for name, points in self.series.items():
            if not points:
                continue
            xs, ys = zip(*points)
            style = "--" if "train" in name else "-"
            ax.plot(xs, ys, style, marker="o" if len(xs) < 30 else None, markersize=3, label=name)
        for x, label, color in self.marks:
            ax.axvline(x, color=color, linestyle=":", linewidth=1.2)
            ax.annotate(label, (x, 1.0), xycoords=("data", "axes fraction"), rotation=90,
                        va="top", ha="right", fontsize=8, color=color)
        if self.logy:
            ax.set_yscale("log")
        ax.set_xlabel(self.xlabel)
        ax.set_ylabel(self.ylabel)
        ax.set_title(self.title)
        if self.series:
            ax.legend(fontsize=8, loc="best")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        return fig

    def _show(self) -> None:
        import matplotlib.pyplot as plt
        from IPython.display import display

        fig = self.figure()
        if self._handle is None:
            self._handle = display(fig, display_id=True)
        else:
            self._handle.update(fig)
        plt.close(fig)
        self._last_draw = time.monotonic()
        self.draws += 1

    def finish(self, path: str | Path | None = None, show: bool = True):
        """Final draw: update the live figure (or show it once headless) and save a PNG."""
        import matplotlib.pyplot as plt

        fig = self.figure()
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(path, dpi=110)
        if show and in_notebook():
            from IPython.display import display

            if self._handle is not None:
                self._handle.update(fig)
            else:
                display(fig)
            self.draws += 1
        plt.close(fig)
        return fig


class LiveLossCallback(TrainerCallback):
    """Feeds a :class:`LiveBoard` from a transformers/TRL Trainer's logs.

    Train loss goes to ``"<label> train"``, validation loss to ``"<label> val"``. At the end it
    marks the best step (lowest validation loss) and, if early stopping fired, where it did.
    Several callbacks may share one board to overlay runs (a rank sweep on one plot).
    """

    def __init__(self, board: LiveBoard | None = None, label: str = "", png_path: str | Path | None = None,
                 finish: bool = True):
        self.board = board or LiveBoard()
        self.label = label
        self.png_path = png_path
        self.finish_on_end = finish
        self.best: tuple[int, float] | None = None
        self.stopped_early_at: int | None = None

    def _name(self, kind: str) -> str:
        return f"{self.label} {kind}".strip()

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        step = state.global_step
        if "loss" in logs:
            self.board.add(self._name("train"), step, logs["loss"])
        if "eval_loss" in logs:
            self.board.add(self._name("val"), step, logs["eval_loss"])
            if self.best is None or logs["eval_loss"] < self.best[1]:
                self.best = (step, logs["eval_loss"])

    def on_train_end(self, args, state, control, **kwargs):
        if self.best is not None:
            self.board.mark(self.best[0], f"{self.label} best".strip(), "tab:green")
        if state.max_steps and state.global_step < state.max_steps:
            self.stopped_early_at = state.global_step
            self.board.mark(state.global_step, f"{self.label} early stop".strip(), "tab:red")
        if self.finish_on_end:
            self.board.finish(self.png_path)
