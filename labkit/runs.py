"""Run folders: ``runs/<name>-<hash>/`` with config, metrics, summary, loss plot and weights.

A folder is *finished* once ``summary.json`` exists (it is written last, atomically). A finished
run with the same hash is reused instead of retrained; asking to retrain moves the old folder
aside (``<folder>.old-<time>``) rather than deleting it, so nothing a learner had is lost.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit.config import TrainConfig
from labkit.files import write_atomic  # noqa: F401  (re-exported: runs write their files with it)


def move_aside(path: Path) -> Path:
    target = path.with_name(f"{path.name}.old-{time.strftime('%Y%m%d-%H%M%S')}")
    os.replace(path, target)
    return target


def read_metrics(path: Path) -> list[dict]:
    rows = []
    file = path / "metrics.jsonl"
    if file.is_file():
        for line in file.read_text(encoding="utf-8").splitlines():
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    break  # a line cut by a kill -9: everything before it is intact
    return rows


def truncate_metrics(path: Path, last_step: int) -> None:
    """On resume, forget rows logged after the checkpoint we go back to (they will be redone)."""
    rows = [r for r in read_metrics(path) if r.get("step", 0) <= last_step]
    write_atomic(path / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in rows))


@dataclass
class Run:
    """A finished (or reused) training run, read back from its folder."""

    path: Path
    config: TrainConfig
    summary: dict[str, Any]
    history: list[dict] = field(default_factory=list)
    reused: bool = False

    @classmethod
    def open(cls, path: str | Path, reused: bool = False) -> "Run":
        import yaml

        path = Path(path)
        if not (path / "summary.json").is_file():
            raise FileNotFoundError(f"{path}: not a finished run (no summary.json)")
        config = TrainConfig.from_dict(yaml.safe_load((path / "config.yaml").read_text()), str(path / "config.yaml"))
        summary = json.loads((path / "summary.json").read_text())
        return cls(path=path, config=config, summary=summary, history=read_metrics(path), reused=reused)

    # The numbers a lesson quotes -------------------------------------------------------------
    @property
    def train_loss(self) -> list[tuple[int, float]]:
        return [(r["step"], r["loss"]) for r in self.history if "loss" in r]

    @property
    def eval_loss(self) -> list[tuple[int, float]]:
        return [(r["step"], r["eval_loss"]) for r in self.history if "eval_loss" in r]

    def __getattr__(self, name: str) -> Any:
        # summary keys (wall_seconds, tokens_per_second, peak_rss_bytes, best_step, ...) as attributes
        summary = self.__dict__.get("summary", {})
        if name in summary:
            return summary[name]
        raise AttributeError(name)

    @property
    def weights_dir(self) -> Path:
        return self.path / ("model" if self.config.method == "full" else "adapter")

    def load(self, precision: str | None = None):
        """The fine-tuned model for inference (base + adapter, or the full model)."""
        from labkit import models

        if self.config.method == "full":
            return models.load(str(self.weights_dir), precision=precision or "fp32")
        from peft import PeftModel

        base_precision = precision or ("nf4" if self.config.method == "qlora" else "fp32")
        loaded = models.load(self.config.model, precision=base_precision)
        loaded.model = PeftModel.from_pretrained(loaded.model, str(self.weights_dir))
        loaded.model.eval()
        loaded.name = f"{self.config.model}+{self.path.name}"
        return loaded

    def merge(self, out_dir: str | Path) -> Path:
        """Fold the adapter into fp32 base weights and save a standalone model (for export)."""
        from peft import PeftModel

        from labkit import models

        out_dir = Path(out_dir)
        if self.config.method == "full":
            raise ValueError(f"{self.path.name}: a full fine-tune has no adapter to merge; use {self.weights_dir}")
        loaded = models.load(self.config.model, precision="fp32")
        merged = PeftModel.from_pretrained(loaded.model, str(self.weights_dir)).merge_and_unload()
        merged.save_pretrained(out_dir, safe_serialization=True)
        loaded.tokenizer.save_pretrained(out_dir)
        return out_dir

    def _repr_html_(self) -> str:
        s = self.summary
        rows = "".join(
            f"<tr><td>{k}</td><td>{_fmt(s.get(k))}</td></tr>"
            for k in ("method", "best_eval_loss", "best_step", "steps", "stopped_early", "wall_seconds",
                      "tokens_per_second", "peak_rss_bytes", "trainable_params", "total_params")
        )
        note = " (reused: identical config already trained)" if self.reused else ""
        return f"<b>{self.path.name}</b>{note}<table>{rows}</table>"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int) and value > 10_000:
        return f"{value:,}"
    return str(value)
