"""Reading a run's data: any accepted shape and source to chat rows, the validation split, and
the warnings worth giving before training (duplicates). Light: no torch, so the CLI can check data
(``labkit train --dry-run``) in a second."""

from __future__ import annotations

import json
import random
import warnings
from pathlib import Path
from typing import Any

from labkit.config import TrainConfig
from labkit.data.chat import DataError


class DuplicateRowsWarning(UserWarning):
    """Training rows that repeat an earlier row's question and answer (the linter's duplicate rule)."""


def load_data(data: Any, source: str = "dataset", config: TrainConfig | None = None, split: str | None = None):
    """A :class:`labkit.data.shapes.Loaded`: chat rows from any accepted shape and source (a
    JSONL/JSON/CSV/TSV/Parquet file, a save_to_disk folder, a Dataset/DatasetDict, a list of
    dicts), with the detected shape. ``config`` supplies the column names and system prompt."""
    from labkit.data.shapes import read_rows

    config = config or TrainConfig()
    return read_rows(data, source=source, split=split or config.train_split, question=config.question_column,
                     answer=config.answer_column, system=config.system_prompt)


def as_rows(data: Any, source: str = "dataset", config: TrainConfig | None = None, split: str | None = None) -> list[dict]:
    """Chat rows from a file, a folder, a list of dicts, or a ``datasets.Dataset`` / ``DatasetDict``."""
    return load_data(data, source, config, split).rows


def split_eval(rows: list[dict], fraction: float, seed: int, source: str = "train data") -> tuple[list[dict], list[dict]]:
    """Hold out ``fraction`` of the rows (at least one) for validation, reproducibly."""
    if len(rows) < 2:
        raise DataError(f"{source}: need at least 2 rows to hold some out for validation, got {len(rows)} "
                        "(add rows, or give eval data: eval_file / eval_data)")
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    n_eval = min(len(rows) - 1, max(1, round(len(rows) * fraction)))
    held = set(order[:n_eval])
    return [r for i, r in enumerate(rows) if i not in held], [r for i, r in enumerate(rows) if i in held]


def read_train_eval(config: TrainConfig, train_data: Any = None, eval_data: Any = None,
                    announce: bool = True) -> tuple[list[dict], list[dict], list[str]]:
    """(train rows, eval rows, one line per source saying the shape detected)."""
    train_src = train_data if train_data is not None else config.train_file
    loaded = load_data(train_src, shown(train_src, "train data"), config)
    notes = [loaded.describe()] if announce and (loaded.shape != "messages" or not isinstance(train_src, list)) else []
    if eval_data is not None or config.eval_file:
        eval_src = eval_data if eval_data is not None else config.eval_file
        eval_loaded = load_data(eval_src, shown(eval_src, "eval data"), config, split=_eval_split(config, eval_src))
        if announce and (eval_loaded.shape != "messages" or not isinstance(eval_src, list)):
            notes.append(eval_loaded.describe())
        return loaded.rows, eval_loaded.rows, notes
    train_rows, eval_rows = split_eval(loaded.rows, config.eval_fraction, config.seed, loaded.source)
    return train_rows, eval_rows, notes


def shown(data: Any, default: str) -> str:
    return str(data) if isinstance(data, (str, Path)) else default


def _eval_split(config: TrainConfig, data: Any) -> str | None:
    """The eval split: the config's, else the first of validation / test / eval that exists."""
    if config.eval_split:
        return config.eval_split
    from labkit.data.shapes import is_saved_dataset

    names: list[str] = []
    if isinstance(data, (str, Path)) and Path(data).is_dir() and is_saved_dataset(Path(data)):
        dd = Path(data) / "dataset_dict.json"
        names = json.loads(dd.read_text(encoding="utf-8")).get("splits", []) if dd.is_file() else []
    elif hasattr(data, "keys") and not hasattr(data, "column_names"):
        names = list(data.keys())
    return next((n for n in ("validation", "test", "eval", "train") if n in names), None)


def warn_duplicates(rows: list[dict], source: str) -> None:
    from labkit.data.shapes import duplicate_rows

    dups = duplicate_rows(rows)
    if dups:
        examples = ", ".join(f"row {i + 1} repeats row {j + 1}" for i, j in dups[:3])
        warnings.warn(f"{source}: {len(dups)} of {len(rows)} training rows repeat an earlier row's question and "
                      f"answer ({examples}{', ...' if len(dups) > 3 else ''}); duplicates weigh those answers "
                      "more (labkit.data.lint lists them all)", DuplicateRowsWarning, stacklevel=3)


def cli_check_data(args, config: TrainConfig) -> int:
    """``labkit train --dry-run``: what would be trained on, without loading a model."""
    data = args.data or config.train_file
    if not data:
        raise DataError(f"{args.config}: no training data: set train_file in the config or pass --data")
    train_rows, eval_rows, notes = read_train_eval(config, data)
    for note in notes:
        print(note)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn_duplicates(train_rows, shown(data, "train data"))
    for w in caught:
        print(f"warning: {w.message}")
    print(f"ok: {len(train_rows)} training rows, {len(eval_rows)} validation rows; config {args.config} is valid")
    return 0
