"""Train in a fresh process while the notebook draws its curves live.

Why: a notebook kernel that has already loaded models keeps that memory, so a second run's peak
RSS would be blurred by the first. Comparing the memory of LoRA, QLoRA and full fine-tuning
honestly needs each in its own process. The child is ``labkit train``; the parent tails the run
folder's ``metrics.jsonl`` and feeds the same :class:`~labkit.live.LiveBoard`, so the lesson looks
exactly like an in-process run. Finished runs are reused exactly as :func:`labkit.sft.train.train` does.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from labkit import runs
from labkit.config import TrainConfig
from labkit.data.chat import write_chat_jsonl
from labkit.files import write_atomic
from labkit.live import LiveBoard, ProgressLine
from labkit.sft.run import Run
from labkit.sft.train import planned_steps, read_train_eval, run_dir


def train_isolated(
    config: TrainConfig,
    train_data: Any,
    eval_data: Any = None,
    *,
    board: LiveBoard | None = None,
    label: str | None = None,
    retrain: bool = False,
    resume: bool = False,
    poll_s: float = 1.0,
) -> Run:
    """Like :func:`labkit.sft.train.train`, but the training runs in a child process."""
    train_rows, eval_rows, _ = read_train_eval(config, train_data, eval_data, announce=False)
    label = config.run_name if label is None else label
    folder = run_dir(config, train_rows, eval_rows)
    own_board = board is None
    board = board or LiveBoard(title=f"{config.run_name}: {config.method}")

    if runs.is_finished(folder) and not retrain:
        run = Run.open(folder, reused=True)
        run.replay(board, label)
        if own_board:
            board.finish()
        return run

    progress = ProgressLine(label or config.run_name)
    progress.note("starting a training process")
    total = planned_steps(config, len(train_rows))

    with tempfile.TemporaryDirectory(prefix="labkit-isolated-") as tmp:
        tmp_path = Path(tmp)
        write_chat_jsonl(train_rows, tmp_path / "train.jsonl")
        write_chat_jsonl(eval_rows, tmp_path / "eval.jsonl")
        child = config.replace(train_file=str(tmp_path / "train.jsonl"), eval_file=str(tmp_path / "eval.jsonl"))
        write_atomic(tmp_path / "config.yaml", child.to_yaml())
        cmd = [sys.executable, "-m", "labkit.cli", "train", "--config", str(tmp_path / "config.yaml")]
        cmd += ["--retrain"] if retrain else []
        cmd += ["--resume"] if resume else []
        log_path = tmp_path / "train.log"
        with open(log_path, "w", encoding="utf-8") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
            seen = 0
            staging = runs.partial_path(folder)
            try:
                while True:
                    done = proc.poll() is not None
                    rows = runs.read_metrics(staging if staging.exists() else folder)
                    if len(rows) < seen:  # the child rewound its history to resume
                        seen = 0
                    if rows and progress.status != "training":
                        progress.start(total)
                    for row in rows[seen:]:
                        if "loss" in row:
                            board.add(f"{label} train".strip(), row["step"], row["loss"])
                        if "eval_loss" in row:
                            board.add(f"{label} val".strip(), row["step"], row["eval_loss"])
                        progress.update(row["step"], row.get("loss"), row.get("eval_loss"))
                    seen = len(rows)
                    if done:
                        break
                    time.sleep(poll_s)
            except BaseException:
                proc.kill()  # an interrupted kernel must not leave a trainer running
                proc.wait()
                raise
        if proc.returncode != 0:
            tail = "\n".join(log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-15:])
            raise RuntimeError(f"training {config.run_name} failed in its own process (exit {proc.returncode}):\n{tail}")

    run = Run.open(folder)
    progress.update(run.summary["steps"])
    progress.close(f"stopped early at step {run.summary['steps']}" if run.summary.get("stopped_early") else None)
    runs.mark_end(board, run.summary, label)
    if own_board:
        board.finish()
    return run


def train_arm(config: TrainConfig, train_data: Any, eval_data: Any = None, *, isolate: bool = True, **kwargs) -> Run:
    """One lesson arm: :func:`train_isolated` when ``isolate`` (its peak memory is its own), else
    :func:`labkit.sft.train.train` in this process (no child's ~18 s of imports on 2 cores; smoke
    plans read no memory). The run folder is the same either way: its hash is config and rows."""
    if isolate:
        return train_isolated(config, train_data, eval_data, **kwargs)
    from labkit.sft.train import train

    return train(config, train_data, eval_data, **kwargs)
