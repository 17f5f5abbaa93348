"""compare(): every metric has a direction, and deltas print in the metric's own format."""

from __future__ import annotations

import pytest

from labkit.evaluate.table import HIGHER, LOWER, NEUTRAL, compare, direction

GREEN, RED = "#1a7f37", "#cf222e"


@pytest.mark.parametrize("metric, way", [
    ("accuracy", HIGHER), ("JSON valid", HIGHER), ("tokens/s", HIGHER), ("tokens_per_second", HIGHER),
    ("best val loss", LOWER), ("RMSE", LOWER), ("mean abs error", LOWER), ("relative error", LOWER),
    ("peak RSS MB", LOWER), ("train seconds", LOWER), ("wall_s", LOWER), ("peak_rss_mb", LOWER),
    ("estimate MB", NEUTRAL), ("trainable %", NEUTRAL),
])
def test_direction_read_from_the_name(metric, way):
    assert direction(metric) == way


def _colour(table, arm, metric):
    return table._cell(arm, metric)[2]


def test_lower_error_and_lower_memory_are_green():
    quant = compare({"int4": {"RMSE": 0.0204}, "nf4": {"RMSE": 0.0172}}, baseline="int4")
    assert _colour(quant, "nf4", "RMSE") == 1 and GREEN in quant._repr_html_()
    mem = compare({"r16": {"peak RSS MB": 3473.0}, "qlora": {"peak RSS MB": 1830.0}, "full": {"peak RSS MB": 4123.0}},
                  baseline="r16")
    assert _colour(mem, "qlora", "peak RSS MB") == 1 and _colour(mem, "full", "peak RSS MB") == -1


def test_neutral_metrics_get_no_colour_and_directions_can_be_given():
    table = compare({"a": {"estimate MB": 100.0, "score": 1.0}, "b": {"estimate MB": 300.0, "score": 2.0}},
                    baseline="a", directions={"score": "lower"})
    assert _colour(table, "b", "estimate MB") == 0
    assert _colour(table, "b", "score") == -1
    with pytest.raises(ValueError, match="expected higher, lower or neutral"):
        compare({"a": {"m": 1.0}}, baseline="a", directions={"m": "up"})


def test_deltas_print_in_the_metrics_own_format():
    table = compare({"r16": {"peak RSS MB": 3473.0}, "qlora": {"peak RSS MB": 1830.0}}, baseline="r16")
    assert "1,830 (-1,643)" in str(table)
    assert "e+03" not in str(table) and "e+03" not in table._repr_html_()
