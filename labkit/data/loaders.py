"""Bring your own data: chat JSONL, a question/answer CSV, or a folder of .txt / .md documents.

Each loader turns a file into the same chat rows the course datasets use, or stops at the first
problem with one :class:`~labkit.data.chat.DataError` naming ``file:line`` and saying what to fix
(missing column, wrong number of fields, non-UTF-8 bytes, empty file, duplicate id, an answer
that should be JSON but does not parse). Nothing is half-loaded. To see *every* problem at once
instead, run :func:`labkit.data.lint.lint` on the file.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Iterator

from labkit.data.chat import DataError, read_chat_jsonl

DOC_SUFFIXES = (".txt", ".md")


def read_text(path: Path, empty: str = "the file is empty") -> str:
    """The file as text, or a DataError naming the line of the first byte that is not UTF-8."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")  # tolerate the byte-order mark some spreadsheet apps add
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not UTF-8 text (byte {exc.start}); re-save the file as UTF-8") from None
    if not text.strip():
        raise DataError(f"{path}: {empty}")
    return text


def table_records(path: Path, text: str, delimiter: str = ",") -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """A CSV/TSV text's header row, and its records read lazily as ``(line, cells)``.

    Quoted cells may span lines: ``line`` is where the record starts, which is what an error should
    name. Blank lines are skipped; a record with the wrong number of cells is a DataError.
    """
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = [h.strip() for h in next(reader)]
    except csv.Error as exc:
        kind = "TSV" if delimiter == "\t" else "CSV"
        raise DataError(f"{path}:1: the header row is not valid {kind} ({exc})") from None

    def records() -> Iterator[tuple[int, list[str]]]:
        start = reader.line_num + 1
        while True:
            try:
                record = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise DataError(f"{path}:{start}: not valid CSV ({exc}); check the quotes on this row") from None
            lineno, start = start, reader.line_num + 1
            if not record or not any(cell.strip() for cell in record):
                continue
            if len(record) != len(header):
                raise DataError(f"{path}:{lineno}: expected {len(header)} fields ({', '.join(header)}), "
                                f"found {len(record)}")
            yield lineno, record

    return header, records()


def _check_json_answer(content: str, where: str) -> None:
    try:
        value = json.loads(content)
    except json.JSONDecodeError as exc:
        raise DataError(f"{where}: the answer is not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(value, dict):
        raise DataError(f"{where}: the answer is JSON but not an object ({type(value).__name__})")


def read_chat(path: str | Path, json_answers: bool = False) -> list[dict]:
    """A chat JSONL file (see :func:`~labkit.data.chat.read_chat_jsonl`), plus two more checks.

    Ids, where rows have them, must be unique; with ``json_answers=True`` the last assistant turn
    of every row must be a JSON object.
    """
    path = Path(path)
    text = read_text(path)
    rows = read_chat_jsonl(path)
    lines = [n for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    seen: dict[object, int] = {}
    for row, lineno in zip(rows, lines):
        where = f"{path}:{lineno}"
        if "id" in row:
            if row["id"] in seen:
                raise DataError(f"{where}: duplicate id {row['id']!r} (first used on line {seen[row['id']]})")
            seen[row["id"]] = lineno
        if json_answers:
            reply = next(t["content"] for t in reversed(row["messages"]) if t["role"] == "assistant")
            _check_json_answer(reply, where)
    return rows


def read_qa_csv(
    path: str | Path,
    question: str = "question",
    answer: str = "answer",
    system: str | None = None,
    id_column: str = "id",
    json_answers: bool = False,
) -> list[dict]:
    """Chat rows from a CSV with a header row and (at least) a question and an answer column.

    An ``id`` column, if present, is kept (and must be unique); so is a ``category`` column.
    Quoted cells may span lines; errors name the line where the record starts.
    """
    path = Path(path)
    header, records = table_records(path, read_text(path))
    for wanted, what in ((question, "question"), (answer, "answer")):
        if wanted not in header:
            raise DataError(f"{path}:1: no {what} column {wanted!r}; the columns are: {', '.join(header) or 'none'}")
    col = {name: i for i, name in enumerate(header)}
    rows: list[dict] = []
    seen: dict[str, int] = {}
    for lineno, record in records:
        where = f"{path}:{lineno}"
        q, a = record[col[question]].strip(), record[col[answer]].strip()
        for value, name in ((q, question), (a, answer)):
            if not value:
                raise DataError(f"{where}: the {name!r} cell is empty")
        if json_answers:
            _check_json_answer(a, where)
        messages = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": q}, {"role": "assistant", "content": a}]
        row: dict = {"id": f"{path.stem}-{len(rows) + 1:04d}", "messages": messages}
        if id_column in col:
            row["id"] = record[col[id_column]].strip()
            if row["id"] in seen:
                raise DataError(f"{where}: duplicate id {row['id']!r} (first used on line {seen[row['id']]})")
            seen[row["id"]] = lineno
        if "category" in col:
            row["category"] = record[col["category"]].strip()
        rows.append(row)
    if not rows:
        raise DataError(f"{path}: a header but no rows")
    return rows


def read_docs_folder(path: str | Path, suffixes: tuple[str, ...] = DOC_SUFFIXES) -> list[dict]:
    """Every .txt / .md file under ``path`` (recursively, sorted) as ``{"id", "title", "text"}``.

    ``id`` is the path relative to the folder; ``title`` the first Markdown heading, else the first
    line, else the file name.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
    if not files:
        raise DataError(f"{folder}: no {' or '.join(suffixes)} files in this folder")
    docs = []
    for file in files:
        try:
            text = read_text(file)
        except DataError as exc:
            if str(exc).endswith("the file is empty"):
                raise DataError(f"{file}:1: the document is empty") from None
            raise
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        heading = next((line.lstrip("#").strip() for line in lines if line.startswith("#")), None)
        title = heading or (lines[0][:80] if lines else file.stem)
        docs.append({"id": file.relative_to(folder).as_posix(), "title": title, "text": text.strip()})
    return docs


def load(path: str | Path, **kwargs) -> list[dict]:
    """Pick the loader from what ``path`` is: a folder, a ``.csv``, or a ``.jsonl`` file."""
    p = Path(path)
    if p.is_dir():
        return read_docs_folder(p, **kwargs)
    if p.suffix.lower() == ".csv":
        return read_qa_csv(p, **kwargs)
    if p.suffix.lower() in (".jsonl", ".json"):
        return read_chat(p, **kwargs)
    raise DataError(f"{p}: don't know how to read a {p.suffix or 'suffix-less'} file; use .jsonl, .csv or a folder")
