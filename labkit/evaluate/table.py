"""Side-by-side results: one row per arm, one column per metric, each with its change vs the baseline.

"Baseline first, always": every lesson evaluates the untouched model before training, then shows
what each arm (LoRA r4, r16, full fine-tuning, ...) changed. :func:`compare` builds that table; it
renders as HTML in a notebook, as plain text in a terminal and as Markdown for a report.

Rates (accuracy, JSON-valid, hit@k ...) print as percentages and their changes in percentage
points; other deltas print in their metric's own format (``-1,640``, not ``-1.64e+03``). Every
metric has a direction: ``higher`` is better (accuracy, tokens/s), ``lower`` is better (loss, error,
seconds, memory: a fall is green) or ``neutral`` (an estimate, a parameter count: no colour). The
direction is read from the metric's name; pass ``directions=`` to say it outright.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

HIGHER, LOWER, NEUTRAL = "higher", "lower", "neutral"
_RATE_WORDS = ("acc", "valid", "rate", "hit", "recall", "ndcg", "mrr", "credit", "chance", "precision", "f1")
_LOWER_TOKENS = {"loss", "error", "err", "rmse", "mae", "mse", "second", "seconds", "s", "sec", "time", "latency",
                 "memory", "mem", "rss", "bytes", "mb", "mib", "gb", "gib", "perplexity", "ppl", "wall"}
_NEUTRAL_TOKENS = {"estimate", "estimated", "trainable", "params", "parameters", "rows", "steps", "rank", "n"}


def direction(metric: str) -> str:
    """``higher``, ``lower`` or ``neutral``, read from a metric's name."""
    name = metric.lower()
    if re.search(r"/\s*s\b|per[ _]s(ec(ond)?)?\b|throughput|speed", name):  # tokens/s, rows per second
        return HIGHER
    tokens = set(re.findall(r"[a-z0-9]+", name))
    if tokens & _NEUTRAL_TOKENS:
        return NEUTRAL
    if tokens & _LOWER_TOKENS:
        return LOWER
    return HIGHER


def lower_is_better(metric: str) -> bool:
    return direction(metric) == LOWER


@dataclass
class Comparison:
    arms: dict[str, dict[str, float]]
    baseline: str | None
    metrics: list[str]
    digits: int = 3
    directions: dict[str, str] = field(default_factory=dict)

    def direction(self, metric: str) -> str:
        return self.directions.get(metric) or direction(metric)

    def value(self, arm: str, metric: str) -> float | None:
        return self.arms[arm].get(metric)

    def delta(self, arm: str, metric: str) -> float | None:
        if self.baseline is None:
            return None
        a, b = self.value(arm, metric), self.value(self.baseline, metric)
        return None if a is None or b is None else a - b

    def is_rate(self, metric: str) -> bool:
        values = [v[metric] for v in self.arms.values() if v.get(metric) is not None]
        return any(w in metric.lower() for w in _RATE_WORDS) and all(0 <= v <= 1 for v in values)

    def records(self) -> list[dict]:
        """Tidy rows: ``{"arm", "metric", "value", "delta"}`` (delta vs the baseline, None for it)."""
        return [{"arm": arm, "metric": m, "value": self.value(arm, m),
                 "delta": None if arm == self.baseline else self.delta(arm, m)}
                for arm in self.arms for m in self.metrics]

    def to_pandas(self):
        import pandas as pd

        return pd.DataFrame(self.records())

    # -- rendering ------------------------------------------------------------------------------

    def _fmt(self, metric: str, value: float | None) -> str:
        if value is None:
            return "–"
        if self.is_rate(metric):
            return f"{value:.1%}"
        return f"{value:.{self.digits}g}" if abs(value) < 10 ** self.digits else f"{value:,.0f}"

    def _fmt_delta(self, metric: str, delta: float | None) -> str:
        if delta is None:
            return ""
        if self.is_rate(metric):
            return f"{delta * 100:+.1f} pts"
        if abs(delta) >= 10 ** self.digits:
            return f"{delta:+,.0f}"
        return f"{delta:+.{self.digits}g}"

    def _cell(self, arm: str, metric: str) -> tuple[str, str, int]:
        """(value text, delta text, sign: +1 better, -1 worse, 0 same/none)."""
        value, delta = self.value(arm, metric), self.delta(arm, metric)
        if arm == self.baseline or delta is None:
            return self._fmt(metric, value), "", 0
        way = self.direction(metric)
        if way == NEUTRAL:
            return self._fmt(metric, value), self._fmt_delta(metric, delta), 0
        better = -delta if way == LOWER else delta
        return self._fmt(metric, value), self._fmt_delta(metric, delta), (better > 1e-12) - (better < -1e-12)

    def _grid(self) -> list[list[str]]:
        header = ["arm", *self.metrics]
        rows = [header]
        for arm in self.arms:
            label = f"{arm} (baseline)" if arm == self.baseline else arm
            cells = []
            for metric in self.metrics:
                value, delta, _ = self._cell(arm, metric)
                cells.append(f"{value} ({delta})" if delta else value)
            rows.append([label, *cells])
        return rows

    def __str__(self) -> str:
        grid = self._grid()
        widths = [max(len(row[i]) for row in grid) for i in range(len(grid[0]))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in grid]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def to_markdown(self) -> str:
        grid = self._grid()
        lines = ["| " + " | ".join(grid[0]) + " |", "|" + "---|" * len(grid[0])]
        lines += ["| " + " | ".join(row) + " |" for row in grid[1:]]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        colours = {1: "#1a7f37", -1: "#cf222e", 0: "#57606a"}
        head = "".join(f"<th>{html.escape(m)}</th>" for m in self.metrics)
        body = []
        for arm in self.arms:
            label = html.escape(arm) + (" <i>(baseline)</i>" if arm == self.baseline else "")
            cells = []
            for metric in self.metrics:
                value, delta, sign = self._cell(arm, metric)
                extra = f" <span style='color:{colours[sign]}'>({html.escape(delta)})</span>" if delta else ""
                cells.append(f"<td>{html.escape(value)}{extra}</td>")
            body.append(f"<tr><td style='text-align:left'>{label}</td>{''.join(cells)}</tr>")
        return f"<table><tr><th>arm</th>{head}</tr>{''.join(body)}</table>"


def compare(arms: dict[str, dict[str, float]], baseline: str | None = "base", digits: int = 3,
            metrics: list[str] | None = None, directions: dict[str, str] | None = None) -> Comparison:
    """A table of ``arms`` (name -> {metric: value}) with each arm's change vs ``baseline``.

    ``baseline=None`` shows values only. ``metrics`` picks and orders the columns (default: every
    metric, in the order first seen). ``directions`` maps a metric to ``higher``, ``lower`` or
    ``neutral`` where its name does not say. A missing value shows as a dash.
    """
    for metric, way in (directions or {}).items():
        if way not in (HIGHER, LOWER, NEUTRAL):
            raise ValueError(f"directions[{metric!r}]={way!r}: expected higher, lower or neutral")
    if not arms:
        raise ValueError("compare: no arms to compare")
    if baseline is not None and baseline not in arms:
        raise KeyError(f"baseline {baseline!r} is not one of the arms: {', '.join(arms)}")
    if metrics is None:
        metrics = list(dict.fromkeys(m for values in arms.values() for m in values))
    ordered = dict(arms)
    if baseline is not None:  # the baseline always comes first, as it should be read first
        ordered = {baseline: arms[baseline], **{k: v for k, v in arms.items() if k != baseline}}
    return Comparison({k: dict(v) for k, v in ordered.items()}, baseline, list(metrics), digits, dict(directions or {}))
