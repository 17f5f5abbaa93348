"""The one run protocol: every training run (SFT or embedding) lives in a folder built the same way.

``runs/<name>-<hash>/`` holds ``config.yaml``, ``metrics.jsonl`` (one row per log), ``summary.json``
and the run's weights and pictures. The rules, for every kind of run:

* **Staged, then renamed.** A run trains in ``<folder>.partial/`` and is renamed to ``<folder>``
  only after ``summary.json`` (written last, atomically) is there. So a folder without ``.partial``
  is always finished, and an interrupted run is visibly unfinished (and resumable, for SFT).
* **Reused by hash.** The hash covers everything that changes the result (config and data), so a
  finished folder with the same name is reused instead of retrained.
* **Never overwritten silently.** Retraining, or starting over from an interrupted run, moves the
  old folder aside to ``<folder>.old-<time>``; nothing a learner had is deleted.
* **Evaluations cached beside the run** with :func:`cached_json`, keyed by what they evaluated.

>>> run = SomeRun.open("runs/lesson2-r16-0123456789")          # doctest: +SKIP
>>> run.replay(board, label="r16")                              # doctest: +SKIP
>>> cached_json(run.path / "evals" / "domain-ab12.json", compute)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from labkit.errors import NotFinishedError
from labkit.files import cached_json, write_atomic  # noqa: F401  (cached_json: re-exported)
from labkit.live import TrainerCallback

SUMMARY = "summary.json"
METRICS = "metrics.jsonl"


def partial_path(folder: Path) -> Path:
    """Where the run for ``folder`` trains until it is finished."""
    return folder.with_name(folder.name + ".partial")


def is_finished(folder: Path) -> bool:
    return (Path(folder) / SUMMARY).is_file()


def move_aside(path: Path) -> Path:
    """Rename ``path`` to ``<path>.old-<time>`` (never onto an existing folder) and return the new name."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target, n = path.with_name(f"{path.name}.old-{stamp}"), 1
    while target.exists():
        target, n = path.with_name(f"{path.name}.old-{stamp}-{n}"), n + 1
    os.replace(path, target)
    return target


def begin(folder: Path, config_yaml: str, *, retrain: bool = False, resume: bool = False) -> Path:
    """Prepare the staging folder for a new run of ``folder`` and return it.

    A finished ``folder`` is moved aside first when ``retrain``; an interrupted ``.partial`` is
    kept for ``resume`` and otherwise moved aside, with a note saying so.
    """
    staging = partial_path(folder)
    if is_finished(folder) and retrain:
        move_aside(folder)
    if staging.exists() and not resume:
        moved = move_aside(staging)
        print(f"note: an unfinished run was moved aside to {moved.name}; resume=True (CLI: --resume) continues one")
    staging.mkdir(parents=True, exist_ok=True)
    write_atomic(staging / "config.yaml", config_yaml)
    return staging


def abandon(staging: Path) -> None:
    """A run that failed before its first step leaves nothing behind (only its config was written).

    A staging folder that already holds metrics or checkpoints is kept: it can be resumed.
    """
    import shutil

    if staging.is_dir() and {p.name for p in staging.iterdir()} <= {"config.yaml"}:
        shutil.rmtree(staging, ignore_errors=True)


def finish(staging: Path, folder: Path, summary: dict[str, Any]) -> Path:
    """Write ``summary.json`` last, then rename the staging folder to its final name."""
    write_atomic(staging / SUMMARY, json.dumps(summary, indent=1))
    if folder.exists():  # only a stray unfinished folder from an older labkit can be here
        move_aside(folder)
    os.replace(staging, folder)
    return folder


# ---------------------------------------------------------------------------------------------
# metrics


def read_metrics(path: Path) -> list[dict]:
    """The rows of ``metrics.jsonl`` in a run folder (or its staging folder)."""
    rows = []
    file = Path(path) / METRICS
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
    write_atomic(Path(path) / METRICS, "".join(json.dumps(r) + "\n" for r in rows))


class MetricsLogger(TrainerCallback):
    """Appends every Trainer log row to ``metrics.jsonl`` as it happens, so a killed run keeps its history."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / METRICS

    def write(self, row: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        values = {k: v for k, v in logs.items() if isinstance(v, (int, float, str))}
        self.write({"step": state.global_step, "epoch": round(state.epoch or 0.0, 4), **values})


# ---------------------------------------------------------------------------------------------
# evaluations


# ---------------------------------------------------------------------------------------------
# a finished run, read back


@dataclass
class RunRecord:
    """A finished (or reused) run, read back from its folder. Subclasses name their config class."""

    path: Path
    config: Any
    summary: dict[str, Any]
    history: list[dict] = field(default_factory=list)
    reused: bool = False

    config_class: ClassVar[type] = object
    summary_keys: ClassVar[tuple[str, ...]] = ("steps", "wall_seconds", "peak_rss_bytes")

    @classmethod
    def open(cls, path: str | Path, reused: bool = False):
        import yaml

        path = Path(path)
        if not is_finished(path):
            raise NotFinishedError(f"{path}: not a finished run (no {SUMMARY})")
        source = path / "config.yaml"
        config = cls.config_class.from_dict(yaml.safe_load(source.read_text(encoding="utf-8")), str(source))
        summary = json.loads((path / SUMMARY).read_text(encoding="utf-8"))
        return cls(path=path, config=config, summary=summary, history=read_metrics(path), reused=reused)

    @property
    def train_loss(self) -> list[tuple[int, float]]:
        return [(r["step"], r["loss"]) for r in self.history if "loss" in r]

    @property
    def eval_loss(self) -> list[tuple[int, float]]:
        return [(r["step"], r["eval_loss"]) for r in self.history if "eval_loss" in r]

    def replay(self, board, label: str | None = None) -> None:
        """Draw this run's stored curves (and its best step) onto a board, as if it had just trained."""
        if board is None:
            return
        label = self.path.name if label is None else label
        for step, loss in self.train_loss:
            board.add(f"{label} train".strip(), step, loss)
        for step, loss in self.eval_loss:
            board.add(f"{label} val".strip(), step, loss)
        mark_end(board, self.summary, label)

    def __getattr__(self, name: str) -> Any:
        # summary keys (wall_seconds, tokens_per_second, peak_rss_bytes, best_step, ...) as attributes
        summary = self.__dict__.get("summary", {})
        if name in summary:
            return summary[name]
        raise AttributeError(name)

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><td>{k}</td><td>{_fmt(self.summary.get(k))}</td></tr>" for k in self.summary_keys)
        note = " (reused: identical config already trained)" if self.reused else ""
        return f"<b>{self.path.name}</b>{note}<table>{rows}</table>"


def mark_end(board, summary: dict, label: str) -> None:
    """Mark the best step and, if it fired, where early stopping stopped."""
    if summary.get("best_step") is not None:
        board.mark(summary["best_step"], f"{label} best".strip(), "tab:green")
    if summary.get("stopped_early"):
        board.mark(summary["steps"], f"{label} early stop".strip(), "tab:red")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int) and value > 10_000:
        return f"{value:,}"
    return str(value)
