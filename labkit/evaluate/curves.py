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
