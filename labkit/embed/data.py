"""Training pairs and retrieval sets, checked before any training starts.

Bad input should fail loudly and early, never halfway through a run:

* a pairs file without an ``anchor`` or ``positive`` column -> :class:`PairsFileError` naming the
  file, the missing columns and the ones it has; an empty cell -> the same, with its line;
* an empty corpus, or no usable query -> :class:`RetrievalDataError`;
* a query with no relevant document (or relevant ids missing from the corpus) is skipped, and
  the count is reported once as a warning and kept on :class:`RetrievalSet` for the summary.

>>> rows = load_pairs("my_pairs.csv")                         # doctest: +SKIP
>>> ds = pairs_dataset(rows, use_hard_negatives=True)          # doctest: +SKIP
"""

from __future__ import annotations

import csv
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

from labkit.errors import LabkitError
from labkit.files import iter_jsonl

REQUIRED = ("anchor", "positive")
OPTIONAL = ("negative",)


class PairsFileError(LabkitError, ValueError):
    """A training-pairs file that cannot be used; the message names the file (and line)."""


class RetrievalDataError(LabkitError, ValueError):
    """Queries, corpus or relevance labels that cannot be evaluated."""


class SkippedQueriesWarning(UserWarning):
    """Some queries had no relevant document in the corpus and were left out of the metrics."""


def load_pairs(path: str | Path) -> list[dict[str, str]]:
    """Read ``anchor``/``positive``[/``negative``] rows from a ``.jsonl`` or ``.csv`` file."""
    path = Path(path)
    if not path.is_file():
        raise PairsFileError(f"{path}: no such file")
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            columns = list(reader.fieldnames or [])
            rows = [(number, dict(row)) for number, row in enumerate(reader, start=2)]
    elif path.suffix.lower() in (".jsonl", ".json"):
        rows, columns = [], []
        for where, record in iter_jsonl(path, PairsFileError):
            columns += [k for k in record if k not in columns]
            rows.append((int(where.rsplit(":", 1)[1]), record))
    else:
        raise PairsFileError(f"{path}: expected a .jsonl or .csv file")
    if not rows:
        raise PairsFileError(f"{path}: no rows")
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise PairsFileError(f"{path}: missing column(s) {missing}; it has {columns}; "
                             f"a pairs file needs {list(REQUIRED)} and may add {list(OPTIONAL)}")
    out = []
    wanted = REQUIRED + tuple(c for c in OPTIONAL if c in columns)
    for number, record in rows:
        for column in wanted:
            value = record.get(column)
            if not isinstance(value, str) or not value.strip():
                raise PairsFileError(f"{path}:{number}: column {column!r} is empty or not text")
        out.append({c: record[c] for c in wanted})
    return out


def pairs_dataset(rows: Iterable[Mapping[str, str]], use_hard_negatives: bool, max_pairs: int | None = None):
    """A ``datasets.Dataset`` with the columns the loss expects, in the order it expects them."""
    from datasets import Dataset

    rows = list(rows)[:max_pairs] if max_pairs else list(rows)
    if not rows:
        raise PairsFileError("no training pairs to train on")
    columns = list(REQUIRED)
    if use_hard_negatives:
        if any("negative" not in r for r in rows):
            raise PairsFileError("use_hard_negatives=True but the pairs have no 'negative' column; "
                                 "add one or set use_hard_negatives=False")
        columns.append("negative")
    # MNRL reads columns by position: anchor, positive, then negatives.
    return Dataset.from_dict({c: [r[c] for r in rows] for c in columns})


@dataclass
class RetrievalSet:
    """Queries, corpus and relevance labels that are safe to evaluate."""

    queries: dict[str, str]
    corpus: dict[str, str]
    relevant: dict[str, set[str]]
    skipped: list[str] = field(default_factory=list)   # query ids with no relevant document
    unknown_ids: int = 0                                # relevant ids not in the corpus

    def __len__(self) -> int:
        return len(self.queries)

    def take(self, n: int) -> "RetrievalSet":
        """``n`` queries spread evenly over the set (not the first ``n``: files are often sorted
        by topic, and a prefix would watch only the first few categories), same corpus."""
        ids = list(self.queries)
        keep = ids if n >= len(ids) else [ids[i * len(ids) // n] for i in range(n)]
        return RetrievalSet({q: self.queries[q] for q in keep}, self.corpus,
                            {q: self.relevant[q] for q in keep}, list(self.skipped), self.unknown_ids)


def retrieval_set(queries: Mapping[str, str], corpus: Mapping[str, str],
                  relevant: Mapping[str, Iterable[str]], name: str = "queries") -> RetrievalSet:
    """Check and clean an evaluation set; warn once (with counts) about what had to be skipped."""
    if not corpus:
        raise RetrievalDataError(f"{name}: the corpus is empty, there is nothing to search")
    if not queries:
        raise RetrievalDataError(f"{name}: no queries to evaluate")
    empty_docs = [cid for cid, text in corpus.items() if not isinstance(text, str) or not text.strip()]
    if empty_docs:
        raise RetrievalDataError(f"{name}: {len(empty_docs)} corpus document(s) have no text, e.g. {empty_docs[:3]}")
    cleaned: dict[str, set[str]] = {}
    skipped: list[str] = []
    unknown = 0
    for qid in queries:
        ids = set(relevant.get(qid, ()))
        known = {cid for cid in ids if cid in corpus}
        unknown += len(ids - known)
        if known:
            cleaned[qid] = known
        else:
            skipped.append(qid)
    if skipped or unknown:
        warnings.warn(
            f"{name}: {len(skipped)} of {len(queries)} queries have no relevant document in the corpus "
            f"and are skipped (e.g. {skipped[:3]}); {unknown} relevant id(s) were not in the corpus",
            SkippedQueriesWarning, stacklevel=2,
        )
    if not cleaned:
        raise RetrievalDataError(f"{name}: no query has a relevant document in the corpus")
    return RetrievalSet({q: queries[q] for q in cleaned}, dict(corpus), cleaned, skipped, unknown)
