"""Chat data: the one format every training run takes.

A row is ``{"messages": [{"role": "system"|"user"|"assistant", "content": str}, ...]}`` with at
least one assistant turn (that is what the loss is computed on). Extra keys (``id``,
``category``, ``answer`` ...) ride along for evaluation.

Every problem is reported as ``DataError`` naming ``file:line`` and what is wrong, so a learner can
open the file and fix it; nothing is half-loaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from labkit.errors import LabkitError

ROLES = ("system", "user", "assistant")


class DataError(LabkitError, ValueError):
    """Bad input data; the message names the file and line (or the field and value)."""


def validate_messages(messages, where: str) -> None:
    """Raise DataError unless ``messages`` is a well-formed conversation with an assistant turn."""
    if not isinstance(messages, list) or not messages:
        raise DataError(f"{where}: 'messages' must be a non-empty list of {{role, content}} objects")
    for i, turn in enumerate(messages):
        if not isinstance(turn, dict):
            raise DataError(f"{where}: messages[{i}] is {type(turn).__name__}, expected an object")
        role = turn.get("role")
        if role not in ROLES:
            raise DataError(f"{where}: messages[{i}] has unknown role {role!r}; expected one of {', '.join(ROLES)}")
        if not isinstance(turn.get("content"), str):
            raise DataError(f"{where}: messages[{i}] ({role}) has no text 'content'")
    if not any(t["role"] == "assistant" for t in messages):
        raise DataError(f"{where}: the conversation has no assistant turn, so there is nothing to learn from")


def read_chat_jsonl(path: str | Path) -> list[dict]:
    """Read and validate a chat JSONL file. Blank lines are skipped; anything else must parse."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    from labkit.files import iter_jsonl

    rows: list[dict] = []
    for where, row in iter_jsonl(path, DataError):
        if "messages" not in row:
            raise DataError(f"{where}: missing 'messages' (keys present: {', '.join(row) or 'none'})")
        validate_messages(row["messages"], where)
        rows.append(row)
    if not rows:
        raise DataError(f"{path}: the dataset is empty")
    return rows


def write_chat_jsonl(rows: Iterable[dict], path: str | Path) -> Path:
    """Write rows as JSONL (UTF-8, one object a line, stable key order) atomically."""
    from labkit.files import write_atomic

    return write_atomic(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def validate_rows(rows: list[dict], source: str = "<dataset>") -> list[dict]:
    """Validate in-memory rows (``source`` stands in for the file name in messages)."""
    if not rows:
        raise DataError(f"{source}: the dataset is empty")
    for i, row in enumerate(rows):
        where = f"{source}[{i}]"
        if not isinstance(row, dict) or "messages" not in row:
            raise DataError(f"{where}: missing 'messages'")
        validate_messages(row["messages"], where)
    return rows
