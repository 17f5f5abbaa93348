"""Scores for a learner and for an instructor: per-part totals and a CSV export of every attempt."""

from __future__ import annotations

import csv
import io
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from labkit.files import write_atomic
from labkit.quiz.progress import ProgressStore, QuestionRecord, learner_name

CSV_FIELDS = ("learner", "part", "question_id", "kind", "first_attempt_correct", "attempts", "solved",
              "first_answer", "first_attempt_at", "last_attempt_at")


@dataclass(frozen=True)
class PartScore:
    part: str
    title: str
    questions: int
    answered: int
    first_try_correct: int
    solved: int


def summarize(records: Iterable[QuestionRecord], banks: dict) -> list[PartScore]:
    """Per-part scores for one learner's records against the banks (``load_all()``)."""
    by_id = {r.question_id: r for r in records}
    scores = []
    for part, bank in banks.items():
        mine = [by_id[q.id] for q in bank.questions if q.id in by_id]
        scores.append(PartScore(part=part, title=bank.title, questions=len(bank.questions),
                                answered=len(mine), first_try_correct=sum(r.first_attempt_correct for r in mine),
                                solved=sum(r.solved for r in mine)))
    return scores


def format_scores(scores: Sequence[PartScore]) -> str:
    """A small fixed-width table: answered and first-try-correct per part, then the total."""
    rows = [("part", "answered", "right first try", "solved")]
    for s in scores:
        label = "practice" if s.part == "practice" else f"{s.part} {s.title}"
        rows.append((label[:34], f"{s.answered}/{s.questions}", str(s.first_try_correct), str(s.solved)))
    total_q = sum(s.questions for s in scores)
    rows.append(("total", f"{sum(s.answered for s in scores)}/{total_q}",
                 str(sum(s.first_try_correct for s in scores)), str(sum(s.solved for s in scores))))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    lines.insert(len(lines) - 1, "-" * len(lines[0]))
    return "\n".join(lines)


def write_csv(records: Iterable[QuestionRecord], out) -> int:
    """Write records as CSV (``CSV_FIELDS``) to an open text stream; return the row count."""
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    n = 0
    for r in records:
        writer.writerow(r.csv_row())
        n += 1
    return n


def cli_progress(args) -> int:
    """``labkit progress [--learner NAME] [--file PATH] [--csv PATH|-]``.

    Prints one learner's per-part scores. ``--csv`` exports every learner in the file (or only
    ``--learner`` when given) for an instructor to merge.
    """
    from labkit.quiz.bank import load_all

    store = ProgressStore(args.file)
    if args.csv:
        records = store.records(args.learner.strip() if args.learner else None)
        if args.csv == "-":
            write_csv(records, sys.stdout)
        else:
            buffer = io.StringIO()
            n = write_csv(records, buffer)
            write_atomic(Path(args.csv), buffer.getvalue())
            print(f"wrote {n} rows to {args.csv}")
        return 0
    learner = learner_name(args.learner)
    records = store.records(learner)
    print(f"Quiz progress for {learner} ({store.path})\n")
    print(format_scores(summarize(records, load_all())))
    if not records:
        others = [n for n in store.learners() if n != learner]
        hint = f" Learners in this file: {', '.join(others)}." if others else ""
        print(f"\nNo answers recorded for {learner} yet.{hint}")
    return 0
