"""Live loss curves and one progress line: what a learner watches while a model trains.

In a notebook the figure is shown once with a display id and then *updated* (not re-displayed),
throttled to one redraw every ``every_s`` seconds, so a long run does not flood the output.
Headless (CLI, CI, nbval in the smoke profile) nothing streams: :meth:`LiveBoard.finish` shows
one final figure and saves it as PNG.

:class:`ProgressLine` is the one line of text beside the board (steps, ETA, last train and
validation loss): updated in place in a notebook, a tqdm bar in a terminal. The Trainer's raw log
dicts never reach the screen; they are in the run's ``metrics.jsonl``.

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
        # -inf, not 0.0: time.monotonic() starts near zero on a freshly booted machine (CI, Binder),
        # and the first point must always draw.
        self._last_draw = float("-inf")
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


class ProgressLine:
    """One line of training progress: ``label: step 12/60 (20%) · ETA 2m 10s · train 1.23 · val 1.41``.

    In a notebook the line is displayed once and updated in place (at most every ``every_s``
    seconds); in a terminal it is a tqdm bar with the same fields; headless with no terminal
    (CI, nbval smoke) only :meth:`close` writes one final line.

    Args:
        label: what is training (a run or arm name).
        total: planned optimizer steps (may be set later with :meth:`start`).
        live: force in-place updates on/off; default :func:`streaming_enabled`.
        silent: show nothing at all (benchmarks, non-zero ranks); the fields still update.
    """

    def __init__(self, label: str, total: int | None = None, live: bool | None = None, every_s: float = 1.0,
                 silent: bool = False):
        self.label, self.total = label, total
        self.silent = silent
        self.live = not silent and (streaming_enabled() if live is None else live)
        self.every_s = every_s
        self.step, self.loss, self.val = 0, None, None
        self.status = "starting"
        self._t0 = time.monotonic()
        self._t_first_step: float | None = None
        self._last = float("-inf")
        self._handle = None
        self._bar = None
        self.closed = False
        if self.live:
            self._render(force=True)
        elif not silent and not in_notebook() and _is_terminal():
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=label, unit="step", dynamic_ncols=True, leave=True)

    def start(self, total: int) -> None:
        """Training proper begins (model loaded, data tokenized): ETA counts from here."""
        self.total, self.status = total, "training"
        self._t_first_step = time.monotonic()
        if self._bar is not None:
            self._bar.total = total
            self._bar.refresh()
        self._render(force=True)

    def note(self, status: str) -> None:
        """A phase before the first step (loading the model, tokenizing), so the wait is explained."""
        self.status = status
        self._render(force=True)

    def update(self, step: int, loss: float | None = None, val: float | None = None) -> None:
        if self._bar is not None and step > self.step:
            self._bar.update(step - self.step)
        self.step = max(self.step, int(step))
        self.loss = self.loss if loss is None else float(loss)
        self.val = self.val if val is None else float(val)
        if self._bar is not None:
            self._bar.set_postfix_str(self._losses(), refresh=False)
        self._render()

    def eta_seconds(self) -> float | None:
        if not self.total or not self._t_first_step or self.step <= 0:
            return None
        rate = (time.monotonic() - self._t_first_step) / self.step
        return max(0.0, rate * (self.total - self.step))

    def _losses(self) -> str:
        parts = [f"train {self.loss:.3f}" if self.loss is not None else "",
                 f"val {self.val:.3f}" if self.val is not None else ""]
        return " · ".join(p for p in parts if p)

    def text(self) -> str:
        elapsed = time.monotonic() - self._t0
        if self.closed:
            head = f"{self.label}: {self.step} steps in {_duration(elapsed)}"
        elif self.status != "training":
            head = f"{self.label}: {self.status} ({_duration(elapsed)})"
        else:
            pct = f" ({100 * self.step / self.total:.0f}%)" if self.total else ""
            eta = self.eta_seconds()
            head = f"{self.label}: step {self.step}/{self.total or '?'}{pct}"
            head += f" · ETA {_duration(eta)}" if eta is not None else ""
        losses = self._losses()
        return f"{head} · {losses}" if losses else head

    def _render(self, force: bool = False) -> None:
        if not self.live or (not force and time.monotonic() - self._last < self.every_s):
            return
        from IPython.display import display

        bundle = {"text/plain": self.text()}
        if self._handle is None:
            self._handle = display(bundle, raw=True, display_id=True)
        else:
            self._handle.update(bundle, raw=True)
        self._last = time.monotonic()

    def close(self, status: str | None = None) -> None:
        """The final line: total steps and time (and ``status``, e.g. "stopped early at step 40")."""
        if self.closed:
            return
        self.closed = True
        if status:
            self.status = status
        if self._bar is not None:
            self._bar.close()
            return
        line = self.text() + (f" · {status}" if status else "")
        if self.silent:
            return
        if self.live:
            self._handle.update({"text/plain": line}, raw=True)
        else:
            print(line, flush=True)


class ProgressCallback(TrainerCallback):
    """Feeds a :class:`ProgressLine` from a Trainer (replaces the Trainer's own printer and bar)."""

    def __init__(self, line: ProgressLine):
        self.line = line

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.line.start(state.max_steps)

    def on_step_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.line.update(state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            self.line.update(state.global_step, logs.get("loss"), logs.get("eval_loss"))

    def on_train_end(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        early = state.max_steps and state.global_step < state.max_steps
        self.line.close(f"stopped early at step {state.global_step}" if early else None)


def quiet_trainer(trainer) -> None:
    """Remove the Trainer's own console output (raw log dicts, its tqdm bar): ours replaces it."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback as HFProgress

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(HFProgress)


def _is_terminal() -> bool:
    import sys

    return hasattr(sys.stderr, "isatty") and sys.stderr.isatty()


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 60}m {seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
