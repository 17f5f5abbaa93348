"""Reading loss curves: the early-stop point matches transformers' rule, roughness, training time, rescaling."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from labkit.evaluate.curves import Rescaled, StopPoint, early_stop, roughness, training_seconds
from labkit.live import LiveBoard

# validation loss per epoch: falls to epoch 3, then turns up while (we imagine) training loss keeps falling
TURNS_UP = [(1, 1.20), (2, 0.80), (3, 0.65), (4, 0.70), (5, 0.78), (6, 0.90), (7, 1.05)]


def test_early_stop_on_a_curve_that_turns_up():
    assert early_stop(TURNS_UP, patience=2) == StopPoint(best_x=3, best_loss=0.65, stop_x=5, patience=2)
    assert early_stop(TURNS_UP, patience=1).stop_x == 4
    assert early_stop(TURNS_UP, patience=3).stop_x == 6
    never = early_stop(TURNS_UP, patience=5)
    assert not never.stopped and never.best_x == 3


def test_early_stop_resets_on_a_new_best_and_respects_min_delta():
    wobbly = [(1, 1.0), (2, 1.1), (3, 0.9), (4, 0.95), (5, 0.97)]
    assert early_stop(wobbly, patience=2) == StopPoint(3, 0.9, 5, 2)
    # 0.9 beats 1.0 by 0.1: not enough when at least 0.15 is asked for, so the counter runs from epoch 2
    assert early_stop(wobbly, patience=2, min_delta=0.15) == StopPoint(1, 1.0, 3, 2)
    assert early_stop([], patience=1) == StopPoint(None, None, None, 1)
    with pytest.raises(ValueError, match="patience=0"):
        early_stop(TURNS_UP, patience=0)


@pytest.mark.parametrize("patience", [1, 2, 3])
def test_early_stop_agrees_with_transformers_callback(patience):
    from transformers import EarlyStoppingCallback

    callback = EarlyStoppingCallback(early_stopping_patience=patience)
    args = SimpleNamespace(greater_is_better=False, metric_for_best_model="eval_loss")
    state = SimpleNamespace(best_metric=None)
    stopped_at = None
    for x, loss in TURNS_UP:
        control = SimpleNamespace(should_training_stop=False)
        callback.on_evaluate(args, state, control, metrics={"eval_loss": loss})
        if state.best_metric is None or loss < state.best_metric:  # what the Trainer does after on_evaluate
            state.best_metric = loss
        if control.should_training_stop:
            stopped_at = x
            break
    assert early_stop(TURNS_UP, patience).stop_x == stopped_at


def test_roughness_ignores_a_steady_trend_and_sees_jitter():
    steady = [3.0 - 0.1 * i for i in range(20)]
    jumpy = [v + (0.3 if i % 2 else -0.3) for i, v in enumerate(steady)]
    assert roughness(steady) == pytest.approx(0.0, abs=1e-12)
    assert roughness(jumpy) > 0.2
    with pytest.raises(ValueError, match="at least 5"):
        roughness([1.0, 2.0])
    with pytest.raises(ValueError, match="odd"):
        roughness(steady, window=4)


def test_training_seconds_leaves_out_evaluations():
    history = [{"step": 4, "eval_loss": 1.0, "eval_runtime": 2.5}, {"step": 8, "eval_loss": 0.9, "eval_runtime": 3.0},
               {"step": 8, "train_runtime": 20.0, "train_loss": 1.1}]
    assert training_seconds(history) == pytest.approx(14.5)
    assert training_seconds(history[:2]) is None


def test_rescaled_board_moves_points_and_marks():
    board = LiveBoard(live=False)
    view = Rescaled(board, 8)
    view.add("b8 train", 3, 1.5)
    view.mark(4, "b8 best", "tab:green")
    assert board.series["b8 train"] == [(24.0, 1.5)]
    assert board.marks == [(32.0, "b8 best", "tab:green")]
    assert view.title == board.title  # everything else is the real board's
