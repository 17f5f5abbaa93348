"""Reading loss curves: where early stopping stops, how jumpy a curve is, and what training cost.

* :func:`early_stop` replays a validation-loss history under the rule transformers'
  ``EarlyStoppingCallback`` applies (stop once ``patience`` evaluations in a row fail to beat the
  best so far) and says which point was best and where training stops. It works on any history:
  a run's ``metrics.jsonl``, a list typed by hand, or the same run under another patience.
* :func:`roughness` puts a number on "this curve is noisier": the mean distance of each point
  from the average of its neighbours, so a steady downward trend counts for nothing.
* :func:`training_seconds` is a run's training time without its evaluations (the Trainer's
  ``train_runtime`` minus every ``eval_runtime``), so runs that evaluate differently compare fairly.
* :class:`Rescaled` lets a run draw on a board with another x axis (epochs, examples seen)
  instead of optimizer steps, so runs of different batch sizes line up.
* :func:`epoch_stop`, :func:`late_roughness` and :func:`seconds_per_example` read those three
  off a run's stored ``(step, loss)`` histories; :func:`plot_quality_vs_size` draws test quality
  against training rows with shaded bands (a guide's data tiers, say).

>>> early_stop([(1, 0.9), (2, 0.7), (3, 0.75), (4, 0.8), (5, 0.6)], patience=2)
StopPoint(best_x=2, best_loss=0.7, stop_x=4, patience=2)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence


@dataclass(frozen=True)
class StopPoint:
    """Where a validation curve was best and where early stopping would cut it.

    Attributes:
        best_x: x (step or epoch) of the lowest validation loss seen before stopping.
        best_loss: that loss; the checkpoint early stopping keeps.
        stop_x: x of the evaluation at which patience ran out, or ``None`` if it never did.
        patience: how many evaluations in a row without a new best were allowed.
    """

    best_x: float | None
    best_loss: float | None
    stop_x: float | None
    patience: int

    @property
    def stopped(self) -> bool:
        return self.stop_x is not None


def early_stop(history: Iterable[tuple[float, float]], patience: int, min_delta: float = 0.0) -> StopPoint:
    """Replay ``(x, val_loss)`` points in order under the patience rule.

    A point is a new best when it beats the best so far by more than ``min_delta`` (transformers'
    ``early_stopping_threshold``); otherwise a counter goes up, and when it reaches ``patience``
    training stops at that point. The best checkpoint is the one kept.
    """
    if not isinstance(patience, int) or isinstance(patience, bool) or patience < 1:
        raise ValueError(f"patience={patience!r}: expected a positive integer (evaluations without improvement)")
    best_x = best_loss = None
    waited = 0
    for x, loss in history:
        if best_loss is None or loss < best_loss - min_delta:
            best_x, best_loss, waited = x, loss, 0
            continue
        waited += 1
        if waited >= patience:
            return StopPoint(best_x, best_loss, x, patience)
    return StopPoint(best_x, best_loss, None, patience)


def roughness(values: Sequence[float], window: int = 5) -> float:
    """Mean absolute gap between each point and the mean of its ``window`` neighbours (centred).

    A smooth curve scores near 0 whatever its slope; a curve that jumps up and down from one
    step to the next scores high. Points without a full window on both sides are skipped.
    """
    if window < 3 or window % 2 == 0:
        raise ValueError(f"window={window}: expected an odd number >= 3")
    half = window // 2
    values = [float(v) for v in values]
    gaps = [abs(values[i] - sum(values[i - half:i + half + 1]) / window) for i in range(half, len(values) - half)]
    if not gaps:
        raise ValueError(f"roughness: need at least {window} points, got {len(values)}")
    return sum(gaps) / len(gaps)


def training_seconds(history: Sequence[dict]) -> float | None:
    """Seconds spent training, evaluations excluded, from a run's metric rows (None if unknown)."""
    total = next((row["train_runtime"] for row in reversed(history) if "train_runtime" in row), None)
    if total is None:
        return None
    return max(0.0, float(total) - sum(float(row.get("eval_runtime", 0.0)) for row in history))


class Rescaled:
    """A view of a board whose x values are multiplied by ``scale`` (steps -> epochs, examples).

    Pass it wherever a board is expected (``train(..., board=Rescaled(board, 8))``); it forwards
    every point and mark to the real board, whose ``finish()`` the caller still calls.
    """

    def __init__(self, board, scale: float):
        self.board, self.scale = board, float(scale)

    def add(self, series: str, x: float, y: float) -> None:
        self.board.add(series, x * self.scale, y)

    def mark(self, x: float, label: str, color: str = "gray") -> None:
        self.board.mark(x * self.scale, label, color)

    def __getattr__(self, name: str):
        return getattr(self.board, name)


def epoch_stop(eval_loss: Iterable[tuple[float, float]], steps_per_epoch: int, patience: int) -> StopPoint:
    """:func:`early_stop` on a run's ``(step, val_loss)`` history, with x read in epochs."""
    return early_stop([(step / steps_per_epoch, loss) for step, loss in eval_loss], patience)


def late_roughness(train_loss: Sequence[tuple[float, float]], batch: int, window: int = 3) -> float | None:
    """:func:`roughness` of a ``(step, loss)`` training curve over its second half of examples seen,
    where the steep early fall is over; ``None`` when that half has fewer than ``window`` points."""
    examples = max((step for step, _ in train_loss), default=0) * batch
    late = [loss for step, loss in train_loss if step * batch > examples / 2]
    return roughness(late, window=window) if len(late) >= window else None


def seconds_per_example(history: Sequence[dict], examples: int) -> float | None:
    """:func:`training_seconds` divided by the examples trained on (None if either is unknown)."""
    seconds = training_seconds(history)
    return seconds / examples if seconds and examples else None


def plot_quality_vs_size(points: Sequence[tuple[int, dict]], baseline: dict | None = None,
                         bands: Sequence[tuple[str, float, float]] = (), title: str = "",
                         xlabel: str = "training rows (log scale)", keys: Sequence[tuple[str, str]] = (("partial_credit", "field accuracy"),
                                                            ("schema_valid", "schema valid"))):
    """Test quality against training rows on a log axis: one line per metric in ``keys``, the
    baseline's value as a dotted line, and each ``(name, low, high)`` band shaded and labelled."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.0))
    xs = [n for n, _ in points]
    colours = ("tab:blue", "tab:orange", "tab:green", "tab:red")
    for (key, label), colour in zip(keys, colours):
        ax.plot(xs, [e[key] for _, e in points], "o-", color=colour, label=label)
        if baseline is not None:
            ax.axhline(baseline[key], color=colour, linestyle=":", linewidth=1.2, label=f"{label}, baseline")
    for (name, lo, hi), shade in zip(bands, ("#e8f1fb", "#eaf6ea", "#fbf0e6", "#f3e8fb")):
        ax.axvspan(lo, hi, color=shade, zorder=0)
        ax.annotate(f"{name}\n{lo:,.0f}-{hi:,.0f}", ((lo * hi) ** 0.5, 1.02), xycoords=("data", "axes fraction"),
                    ha="center", va="bottom", fontsize=8)
    ax.set_xscale("log")
    edges = list(xs) + [b for _, lo, hi in bands for b in (lo, hi)]
    ax.set_xlim(min(edges) / 2, max(edges) * 1.2)
    ax.set_ylim(0, 1.0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("share of test questions")
    ax.set_title(title, pad=24 if bands else 6)
    ax.legend(fontsize=8, loc="center right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
