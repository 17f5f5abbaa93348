"""Tiny, learnable chat datasets for fast training tests (not course data)."""

from __future__ import annotations

import json
import random

COLORS = ["red", "blue", "green", "amber", "violet", "teal", "coral", "ivory", "olive", "navy", "plum", "rust"]


def pattern_rows(n: int = 24, seed: int = 0) -> list[dict]:
    """A format a model picks up in a few steps: every answer is the same JSON shape."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        color = COLORS[i % len(COLORS)]
        level = rng.choice(["low", "high"])
        rows.append({"messages": [
            {"role": "user", "content": f"Tag {color} {level}"},
            {"role": "assistant", "content": json.dumps({"color": color, "level": level, "ok": True})},
        ]})
    return rows


def noise_rows(n: int, seed: int) -> list[dict]:
    """Random key -> random code: nothing to generalise, only to memorise (for early stopping)."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    return [{"messages": [
        {"role": "user", "content": "Key " + "".join(rng.choices(letters, k=6))},
        {"role": "assistant", "content": " ".join("".join(rng.choices(letters, k=5)) for _ in range(4))},
    ]} for _ in range(n)]
