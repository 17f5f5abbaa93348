"""Files the lab writes and reads: atomic writes (nothing a learner had is ever half-written) and
JSONL reading whose every error names the file and line."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator


def write_atomic(path: str | Path, text: str) -> Path:
    """Write text so that readers see the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    # The rename itself lives in the directory; without this a power cut can undo it.
    if hasattr(os, "O_DIRECTORY"):
        with contextlib.suppress(OSError):
            dfd = os.open(path.parent, os.O_DIRECTORY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
    return path


def iter_jsonl(path: str | Path, error: type[Exception] = ValueError) -> Iterator[tuple[str, dict]]:
    """Yield ``("file:line", object)`` for each non-blank line; a line that is not a JSON object
    raises ``error`` naming the file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text (byte {exc.start}); re-save it as UTF-8") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise error(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(record, dict):
            raise error(f"{where}: expected a JSON object, got {type(record).__name__}")
        yield where, record


def cached_json(path: str | Path, compute: Callable[[], Any]) -> Any:
    """Read ``path`` if it exists; otherwise ``compute()``, save it atomically, and return it.

    Key the file name by what was evaluated (e.g. a hash of the test ids), so a different test
    set never reads a stale result.
    """
    path = Path(path)
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    result = compute()
    write_atomic(path, json.dumps(result, indent=1))
    return result
