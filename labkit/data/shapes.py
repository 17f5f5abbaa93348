"""Training data in the shapes people already have, turned into labkit's chat rows.

The shape is detected from the keys of the first row, every row is converted (or stopped with a
:class:`~labkit.data.chat.DataError` naming ``file:line`` or ``file: row N``), and
:meth:`Loaded.describe` says in one line what was detected.

====================  ==========================================================================
shape                 one row
====================  ==========================================================================
``messages``          ``{"messages": [{"role": "user", "content": ...}, {"role": "assistant", ...}]}``
                      (labkit's own shape, and TRL's conversational language-modeling shape)
``prompt/completion`` ``{"prompt": "...", "completion": "..."}`` (TRL); or both as lists of
                      messages (TRL's conversational prompt/completion)
``alpaca``            ``{"instruction": ..., "input": ... (optional), "output": ...}``
``sharegpt``          ``{"conversations": [{"from": "human"|"gpt"|"system", "value": ...}]}``
``question/answer``   ``{"question": ..., "answer": ...}``; CSV/TSV columns or JSON keys; the
                      column names are configurable (``question_column`` / ``answer_column``)
====================  ==========================================================================

Sources: ``.jsonl`` / ``.json`` (JSON Lines or one JSON array), ``.csv`` / ``.tsv``,
``.parquet`` / ``.arrow`` (read with ``datasets``), a ``datasets`` ``save_to_disk`` folder, a
``datasets.Dataset`` or ``DatasetDict`` in memory (the ``split`` picks one; default ``train``),
or a list of dicts. JSON and CSV are parsed here rather than by ``datasets`` so that an error
names the line (pyarrow's messages name neither the line nor the row, and it fills keys missing
from some rows with nulls).

Not accepted, each with its own message: TRL's ``text`` shape (plain text has no prompt/answer
split, and labkit computes the loss on the answers only), preference data
(``chosen``/``rejected``, for DPO), prompt-only rows, and a folder of documents (that is a
retrieval corpus: :func:`labkit.data.loaders.read_docs_folder`).

>>> read_rows([{"instruction": "Add", "input": "2+2", "output": "4"}]).rows[0]["messages"][1]
{'role': 'assistant', 'content': '4'}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from labkit.data.chat import DataError, validate_messages
from labkit.data.loaders import read_text, table_records

SHAPES = {
    "messages": "chat messages",
    "prompt/completion": "prompt/completion (TRL)",
    "prompt/completion (conversational)": "conversational prompt/completion (TRL)",
    "alpaca": "Alpaca (instruction/input/output)",
    "sharegpt": "ShareGPT (conversations/from/value)",
    "question/answer": "question/answer columns",
}
ACCEPTED = ("chat 'messages', TRL 'prompt'/'completion', Alpaca 'instruction'/'input'/'output', "
            "ShareGPT 'conversations' (from/value), question/answer columns")
SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".parquet", ".arrow")
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                  "chatgpt": "assistant", "bard": "assistant", "bing": "assistant", "model": "assistant",
                  "system": "system"}
_SCALARS = (str, int, float, bool, type(None))


@dataclass
class Loaded:
    """Chat rows, the shape they came in, and where from."""

    rows: list[dict]
    shape: str
    source: str
    split: str | None = None

    def describe(self) -> str:
        where = f"{self.source} (split {self.split!r})" if self.split else self.source
        return f"{where}: {len(self.rows)} rows, detected shape: {SHAPES[self.shape]}"


def read_rows(
    data: Any,
    *,
    source: str | None = None,
    split: str | None = "train",
    question: str = "question",
    answer: str = "answer",
    system: str | None = None,
) -> Loaded:
    """Chat rows from a file, a folder, a ``datasets`` object or a list of dicts (see module doc).

    ``split`` picks one split of a DatasetDict (in memory or saved); ``question`` / ``answer``
    name the columns of question/answer data; ``system`` adds a system turn to converted rows
    that have none.
    """
    if data is None:
        raise DataError(f"{source or 'data'}: no data given")
    opts = dict(question=question, answer=answer, system=system)
    if isinstance(data, (str, Path)):
        return _read_path(Path(data), split, opts)
    shown = source or "<dataset>"
    if _is_dataset_dict(data):
        data, split = _pick_split(data, split, shown)
    else:
        split = None
    if hasattr(data, "to_list") and hasattr(data, "column_names"):  # datasets.Dataset
        data = data.to_list()
    if isinstance(data, dict):
        raise DataError(f"{shown}: got one mapping, expected rows (a list of dicts, a file or a Dataset)")
    items = [(f"{shown}[{i}]", row) for i, row in enumerate(data)]
    rows, shape = convert(items, shown, **opts)
    return Loaded(rows, shape, shown, split)


def convert(items: Iterable[tuple[str, Any]], source: str, question: str = "question", answer: str = "answer",
            system: str | None = None) -> tuple[list[dict], str]:
    """Detect the shape from the first row and convert every ``(where, row)`` to a chat row."""
    items = list(items)
    if not items:
        raise DataError(f"{source}: the dataset is empty")
    where0, first = items[0]
    if not isinstance(first, dict):
        raise DataError(f"{where0}: expected an object (a row of named fields), got {type(first).__name__}")
    shape = detect(first, source, question, answer)
    rows = []
    for where, row in items:
        if not isinstance(row, dict):
            raise DataError(f"{where}: expected an object (a row of named fields), got {type(row).__name__}")
        for key in _required(shape, question, answer):
            if key not in row:
                raise DataError(f"{where}: missing {key!r} (the first row is {SHAPES[shape]}; keys present: "
                                f"{', '.join(map(str, row)) or 'none'})")
        rows.append(_CONVERT[shape](row, where, question=question, answer=answer, system=system))
    return rows, shape


def _required(shape: str, question: str, answer: str) -> tuple[str, ...]:
    return {"messages": ("messages",), "sharegpt": ("conversations",), "alpaca": ("instruction", "output"),
            "question/answer": (question, answer)}.get(shape, ("prompt", "completion"))


def detect(row: dict, source: str, question: str = "question", answer: str = "answer") -> str:
    """The shape of one row, or a DataError naming the source, the keys seen and the shapes accepted."""
    keys = set(row)
    if "messages" in keys:
        return "messages"
    if "conversations" in keys:
        return "sharegpt"
    if {"prompt", "completion"} <= keys:
        return "prompt/completion (conversational)" if isinstance(row["prompt"], list) else "prompt/completion"
    if {"chosen", "rejected"} <= keys:
        raise DataError(f"{source}: these rows are preference pairs ('chosen'/'rejected', for DPO); supervised "
                        "fine-tuning needs one answer per prompt: use 'prompt' and 'completion' (e.g. the chosen answer)")
    if {"instruction", "output"} <= keys:
        return "alpaca"
    if {question, answer} <= keys:
        return "question/answer"
    if "text" in keys:
        raise DataError(f"{source}: rows with a 'text' field (TRL's language-modeling shape) have no prompt/answer "
                        "split, and labkit computes the loss on answers only; give 'prompt'/'completion' or "
                        "'messages' instead (or train on raw text with TRL directly)")
    if "prompt" in keys:
        raise DataError(f"{source}: rows have a 'prompt' but no 'completion' (TRL's prompt-only shape is for "
                        "RL trainers); supervised fine-tuning needs the answer too")
    seen = ", ".join(map(str, row)) or "none"
    qa = (f"; for question/answer columns under other names set question_column/answer_column "
          f"(now {question!r}/{answer!r})")
    raise DataError(f"{source}: unknown data shape (keys seen: {seen}); accepted: {ACCEPTED}{qa}")


# ---------------------------------------------------------------------------------------------
# conversions: each returns {"messages": [...], **extra scalar fields}


def _extra(row: dict, used: Iterable[str]) -> dict:
    used = set(used)
    return {k: v for k, v in row.items() if k not in used and isinstance(v, _SCALARS)}


def _text(row: dict, key: str, where: str, allow_empty: bool = False) -> str:
    value = row.get(key)
    if value is None and allow_empty:
        return ""
    if not isinstance(value, str):
        raise DataError(f"{where}: {key!r} must be text, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise DataError(f"{where}: {key!r} is empty")
    return value


def _with_system(messages: list[dict], system: str | None) -> list[dict]:
    if system and not any(t.get("role") == "system" for t in messages):
        return [{"role": "system", "content": system}] + messages
    return messages


def _clean_turns(turns: Any) -> Any:
    """Drop keys a columnar source filled with nulls (e.g. a 'name' present in some turns only)."""
    if not isinstance(turns, list):
        return turns
    return [{k: v for k, v in t.items() if v is not None} if isinstance(t, dict) else t for t in turns]


def _from_messages(row, where, system=None, **_):
    messages = _clean_turns(row["messages"])
    validate_messages(messages, where)
    if messages is row["messages"] and not system:
        return row
    return {**row, "messages": _with_system(messages, system)}


def _from_sharegpt(row, where, system=None, **_):
    turns = row["conversations"]
    if not isinstance(turns, list) or not turns:
        raise DataError(f"{where}: 'conversations' must be a non-empty list of {{from, value}} objects")
    messages = []
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise DataError(f"{where}: conversations[{i}] is {type(turn).__name__}, expected an object")
        speaker = turn.get("from", turn.get("role"))
        role = SHAREGPT_ROLES.get(str(speaker).lower())
        if role is None:
            raise DataError(f"{where}: conversations[{i}] is from {speaker!r}; expected one of "
                            f"{', '.join(sorted(SHAREGPT_ROLES))}")
        messages.append({"role": role, "content": turn.get("value", turn.get("content"))})
    if isinstance(row.get("system"), str) and row["system"].strip():
        messages = _with_system(messages, row["system"])
    messages = _with_system(messages, system)
    validate_messages(messages, where)
    return {**_extra(row, ("conversations", "system")), "messages": messages}


def _from_prompt_completion(row, where, system=None, **_):
    prompt, completion = row["prompt"], row["completion"]
    if isinstance(prompt, list) or isinstance(completion, list):
        if not (isinstance(prompt, list) and isinstance(completion, list)):
            raise DataError(f"{where}: 'prompt' and 'completion' must both be text or both be lists of messages")
        messages = _clean_turns(prompt) + _clean_turns(completion)
        validate_messages(messages, where)
        if not any(isinstance(t, dict) and t.get("role") == "assistant" for t in _clean_turns(completion)):
            raise DataError(f"{where}: the 'completion' has no assistant turn")
    else:
        messages = [{"role": "user", "content": _text(row, "prompt", where)},
                    {"role": "assistant", "content": _text(row, "completion", where)}]
    return {**_extra(row, ("prompt", "completion")), "messages": _with_system(messages, system)}


def _from_alpaca(row, where, system=None, **_):
    user = _text(row, "instruction", where)
    extra_input = _text(row, "input", where, allow_empty=True) if "input" in row else ""
    if extra_input.strip():
        user = f"{user}\n\n{extra_input}"
    messages = [{"role": "user", "content": user}, {"role": "assistant", "content": _text(row, "output", where)}]
    row_system = row.get("system") if isinstance(row.get("system"), str) and row["system"].strip() else None
    messages = _with_system(messages, row_system or system)
    return {**_extra(row, ("instruction", "input", "output", "system")), "messages": messages}


def _from_qa(row, where, question="question", answer="answer", system=None, **_):
    messages = [{"role": "user", "content": _text(row, question, where).strip()},
                {"role": "assistant", "content": _text(row, answer, where).strip()}]
    return {**_extra(row, (question, answer)), "messages": _with_system(messages, system)}


_CONVERT = {
    "messages": _from_messages,
    "sharegpt": _from_sharegpt,
    "prompt/completion": _from_prompt_completion,
    "prompt/completion (conversational)": _from_prompt_completion,
    "alpaca": _from_alpaca,
    "question/answer": _from_qa,
}


# ---------------------------------------------------------------------------------------------
# sources


def is_saved_dataset(folder: Path) -> bool:
    """A folder written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk``."""
    return (folder / "dataset_dict.json").is_file() or (
        (folder / "state.json").is_file() and (folder / "dataset_info.json").is_file())


def _is_dataset_dict(data: Any) -> bool:
    return type(data).__name__ in ("DatasetDict", "IterableDatasetDict") or (
        isinstance(data, dict) and data and all(hasattr(v, "column_names") for v in data.values()))


def _pick_split(data, split: str | None, shown: str):
    names = list(data)
    if split in data:
        return data[split], split
    if split is None and len(names) == 1:
        return data[names[0]], names[0]
    raise DataError(f"{shown}: no split {split!r}; the splits are: {', '.join(names) or 'none'} "
                    "(choose one with train_split / eval_split in the config, or split= in Python)")


def _read_path(path: Path, split: str | None, opts: dict) -> Loaded:
    if path.is_dir():
        if is_saved_dataset(path):
            from datasets import load_from_disk

            try:
                data = load_from_disk(str(path))
            except Exception as exc:  # noqa: BLE001 - datasets raises several types for a damaged folder
                raise DataError(f"{path}: a datasets save_to_disk folder that could not be read ({exc})") from None
            picked = None
            if _is_dataset_dict(data):
                data, picked = _pick_split(data, split, str(path))
            items = [(f"{path}: row {i + 1}", row) for i, row in enumerate(data.to_list())]
            rows, shape = convert(items, str(path), **opts)
            return Loaded(rows, shape, str(path), picked)
        docs = sorted(p.name for p in path.iterdir() if p.suffix.lower() in (".txt", ".md"))
        shown_docs = ", ".join(docs[:3]) + (", ..." if len(docs) > 3 else "")
        hint = (f" It holds documents ({shown_docs}): a folder of documents is a retrieval corpus "
                "(labkit.data.read_docs_folder, labkit.rag), not question/answer pairs.") if docs else ""
        raise DataError(f"{path}: is a folder, not a data file or a datasets save_to_disk folder; give a "
                        f"{', '.join(SUFFIXES)} file (or a folder written by Dataset.save_to_disk).{hint}")
    if not path.exists():
        raise DataError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".arrow"):
        items = _read_with_datasets(path, suffix)
    elif suffix in (".csv", ".tsv"):
        items = _read_table(path, "\t" if suffix == ".tsv" else ",")
    elif suffix in (".jsonl", ".json", ".ndjson"):
        items, split_used = _read_json(path, split)
        rows, shape = convert(items, str(path), **opts)
        return Loaded(rows, shape, str(path), split_used)
    else:
        raise DataError(f"{path}: don't know how to read a {suffix or 'suffix-less'} file; "
                        f"use one of {', '.join(SUFFIXES)} or a datasets save_to_disk folder")
    rows, shape = convert(items, str(path), **opts)
    return Loaded(rows, shape, str(path))


def _read_json(path: Path, split: str | None) -> tuple[list[tuple[str, Any]], str | None]:
    """JSON Lines, or one JSON document: an array of rows, one row, or {split: [rows]}."""
    text = read_text(path, empty="the dataset is empty")
    starts_array = text.lstrip().startswith("[")
    if not starts_array:
        lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
        items = []
        for n, line in lines:
            try:
                items.append((f"{path}:{n}", json.loads(line)))
            except json.JSONDecodeError as exc:
                if len(items) == 0 and path.suffix.lower() == ".json":
                    break  # maybe one JSON document over several lines: try that below
                raise DataError(f"{path}:{n}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        else:
            return items, None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno})") from None
    if isinstance(doc, list):
        return [(f"{path}: row {i + 1}", row) for i, row in enumerate(doc)], None
    if isinstance(doc, dict) and doc and all(isinstance(v, list) for v in doc.values()):
        if split in doc or (split is None and len(doc) == 1):
            split = split if split in doc else next(iter(doc))
            return [(f"{path}: {split}[{i}]", row) for i, row in enumerate(doc[split])], split
        raise DataError(f"{path}: no split {split!r}; the splits are: {', '.join(doc)}")
    return [(f"{path}:1", doc)], None


def _read_table(path: Path, delimiter: str) -> list[tuple[str, dict]]:
    """CSV/TSV with a header row, as (``file:line``, {column: cell}); quoted cells may span lines."""
    header, records = table_records(path, read_text(path, empty="the dataset is empty"), delimiter)
    items = [(f"{path}:{lineno}", dict(zip(header, record))) for lineno, record in records]
    if not items:
        raise DataError(f"{path}: a header ({', '.join(header)}) but no rows")
    return items


def _read_with_datasets(path: Path, suffix: str) -> list[tuple[str, Any]]:
    from datasets import Dataset
    from datasets.utils.logging import disable_progress_bar, enable_progress_bar, is_progress_bar_enabled

    was_on = is_progress_bar_enabled()
    disable_progress_bar()  # one line says what was read; no "Generating train split" bars
    try:
        if suffix == ".arrow":
            data = Dataset.from_file(str(path))
        else:
            import pyarrow.parquet as pq

            data = Dataset(pq.read_table(str(path)))
    except Exception as exc:  # noqa: BLE001 - pyarrow raises its own types for a damaged file
        raise DataError(f"{path}: not a readable {suffix[1:]} file ({exc})") from None
    finally:
        if was_on:
            enable_progress_bar()
    return [(f"{path}: row {i + 1}", row) for i, row in enumerate(data.to_list())]


def duplicate_rows(rows: list[dict]) -> list[tuple[int, int]]:
    """(index, index of its first copy) for rows whose prompt and answer repeat an earlier row's
    (the linter's rule: the same last question and the same last answer)."""
    first: dict[tuple[str, str], int] = {}
    out = []
    for i, row in enumerate(rows):
        turns = row.get("messages") or []
        last = max((j for j, t in enumerate(turns) if t.get("role") == "assistant"), default=len(turns))
        user = next((t.get("content", "") for t in reversed(turns[:last]) if t.get("role") == "user"), "").strip()
        reply = turns[last].get("content", "").strip() if last < len(turns) else ""
        key = (user, reply)
        if key in first:
            out.append((i, first[key]))
        else:
            first[key] = i
    return out
