"""The learner's quiz progress: one JSON file, written so that it is never half-written or lost.

Layout (``version`` 1)::

    {"version": 1,
     "learners": {"ada": {"p2-qlora-24gb": {"part": "2", "kind": "decision", "attempts": 2,
                                             "first_attempt_correct": false, "solved": true,
                                             "first_answer": ["C"], "first_at": "...",
                                             "last_at": "...", "solved_at": "..."}}}}

Only the first attempt at a question counts towards the score; later attempts only raise
``attempts`` (and mark it ``solved``), so re-running a notebook cannot improve a score.

Safety: every write goes to a temporary file in the same folder, is fsynced, then renamed over the
old file (``os.replace`` is atomic), so a crash leaves either the old or the new file, never a
mix. A file that cannot be read is moved aside to ``progress.json.corrupt-<time>`` with a warning
and a fresh one is started: nothing is deleted. A lock file serialises writers, so two notebooks
open at once do not drop each other's answers.
"""

from __future__ import annotations

import contextlib
import csv
import getpass
import io
import json
import os
import sys
import time
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Sequence

from labkit import paths
from labkit.files import write_atomic as atomic_write_text

VERSION = 1
CSV_FIELDS = ("learner", "part", "question_id", "kind", "first_attempt_correct", "attempts", "solved",
              "first_answer", "first_attempt_at", "last_attempt_at")


class ProgressWarning(UserWarning):
    """The progress file was unreadable and has been moved aside."""


@dataclass(frozen=True)
class QuestionRecord:
    learner: str
    question_id: str
    part: str
    kind: str
    attempts: int
    first_attempt_correct: bool
    solved: bool
    first_answer: tuple[str, ...]
    first_at: str
    last_at: str
    solved_at: str | None = None

    def csv_row(self) -> dict:
        return {"learner": self.learner, "part": self.part, "question_id": self.question_id,
                "kind": self.kind, "first_attempt_correct": int(self.first_attempt_correct),
                "attempts": self.attempts, "solved": int(self.solved),
                "first_answer": "|".join(self.first_answer), "first_attempt_at": self.first_at,
                "last_attempt_at": self.last_at}


@dataclass(frozen=True)
class PartScore:
    part: str
    title: str
    questions: int
    answered: int
    first_try_correct: int
    solved: int


def learner_name(explicit: str | None = None) -> str:
    """``explicit``, else ``$LABKIT_LEARNER``, else the login name, else "learner"."""
    for candidate in (explicit, os.environ.get("LABKIT_LEARNER")):
        if candidate and candidate.strip():
            return candidate.strip()
    try:
        return getpass.getuser() or "learner"
    except Exception:  # no passwd entry in some containers
        return "learner"


def where_saved(learner: str | None = None) -> str:
    """One line for a notebook: whose answers go where (home shown as ~)."""
    path = str(paths.progress_file())
    home = str(Path.home())
    if path.startswith(home + os.sep):
        path = "~" + path[len(home):]
    return (f"Answers are saved for '{learner_name(learner)}' in {path} "
            "(set LABKIT_LEARNER or LABKIT_PROGRESS to change either).")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _entry_ok(entry) -> bool:
    return (isinstance(entry, dict) and isinstance(entry.get("attempts"), int) and entry["attempts"] >= 1
            and isinstance(entry.get("first_attempt_correct"), bool)
            and isinstance(entry.get("first_answer"), list) and isinstance(entry.get("first_at"), str))


def _problem(doc) -> str | None:
    """Why ``doc`` is not a progress document, or None when it is."""
    if not isinstance(doc, dict) or not isinstance(doc.get("learners"), dict):
        return "no 'learners' mapping"
    if not isinstance(doc.get("version"), int):
        return "no 'version'"
    for learner, answers in doc["learners"].items():
        if not isinstance(answers, dict):
            return f"learner {learner!r} is not a mapping"
        for qid, entry in answers.items():
            if not _entry_ok(entry):
                return f"learner {learner!r}, question {qid!r}: malformed entry"
    return None
    # The rename itself lives in the directory; without this a power cut can undo it.
    if hasattr(os, "O_DIRECTORY"):
        with contextlib.suppress(OSError):
            dfd = os.open(path.parent, os.O_DIRECTORY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)


class ProgressStore:
    """The progress file at ``path`` (default: ``labkit.paths.progress_file()``)."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path).expanduser() if path else paths.progress_file()

    # -- reading ------------------------------------------------------------------------------

    def read(self) -> dict:
        """The whole document; an unreadable file is moved aside (with a warning) first."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {"version": VERSION, "learners": {}}
        try:
            doc = json.loads(raw.decode("utf-8"))
            problem = _problem(doc)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            doc, problem = None, f"not JSON ({exc})"
        if problem is None and doc["version"] > VERSION:
            raise ValueError(f"{self.path} was written by a newer labkit (version {doc['version']}); "
                             "upgrade labkit rather than overwrite it")
        if problem is not None:
            self._move_aside(problem)
            return {"version": VERSION, "learners": {}}
        return doc

    def _move_aside(self, problem: str) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        n = 1
        while target.exists():
            target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
            n += 1
        os.replace(self.path, target)
        warnings.warn(f"{self.path} could not be read ({problem}); it was moved to {target} and progress "
                      "starts again from an empty file. Nothing was deleted.", ProgressWarning, stacklevel=3)
        return target

    def learners(self) -> list[str]:
        return sorted(self.read()["learners"])

    def records(self, learner: str | None = None) -> list[QuestionRecord]:
        """Every recorded question, for one learner or (``None``) for all."""
        doc = self.read()["learners"]
        names = [learner] if learner is not None else sorted(doc)
        out = []
        for name in names:
            for qid, e in sorted(doc.get(name, {}).items()):
                out.append(QuestionRecord(
                    learner=name, question_id=qid, part=str(e.get("part", "")), kind=str(e.get("kind", "")),
                    attempts=e["attempts"], first_attempt_correct=e["first_attempt_correct"],
                    solved=bool(e.get("solved", e["first_attempt_correct"])),
                    first_answer=tuple(e["first_answer"]), first_at=e["first_at"],
                    last_at=str(e.get("last_at", e["first_at"])), solved_at=e.get("solved_at")))
        return out

    # -- writing ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            import fcntl
        except ImportError:  # Windows: one notebook at a time is the common case there
            yield
            return
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def record_attempt(self, learner: str, question_id: str, part: str, kind: str,
                       selected: Sequence[str], correct: bool, when: str | None = None) -> QuestionRecord:
        """Add one attempt. The first attempt fixes ``first_attempt_correct`` for good."""
        when = when or _now()
        with self._locked():
            doc = self.read()
            answers = doc["learners"].setdefault(learner, {})
            entry = answers.get(question_id)
            if entry is None:
                entry = answers[question_id] = {
                    "part": str(part), "kind": kind, "attempts": 0, "first_attempt_correct": bool(correct),
                    "solved": False, "first_answer": list(selected), "first_at": when, "solved_at": None}
            entry["attempts"] += 1
            entry["last_at"] = when
            if correct and not entry.get("solved"):
                entry["solved"], entry["solved_at"] = True, when
            atomic_write_text(self.path, json.dumps(doc, indent=1, sort_keys=True) + "\n")
        return next(r for r in self.records(learner) if r.question_id == question_id)


# ---------------------------------------------------------------------------------------------
# Scores and reports


def summarize(records: Iterable[QuestionRecord], banks: dict) -> list[PartScore]:
    """Per-part scores for one learner's records against the banks (``quiz.load_all()``)."""
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
    from labkit import quiz

    store = ProgressStore(args.file)
    if args.csv:
        records = store.records(args.learner.strip() if args.learner else None)
        if args.csv == "-":
            write_csv(records, sys.stdout)
        else:
            buffer = io.StringIO()
            n = write_csv(records, buffer)
            atomic_write_text(Path(args.csv), buffer.getvalue())
            print(f"wrote {n} rows to {args.csv}")
        return 0
    learner = learner_name(args.learner)
    records = store.records(learner)
    print(f"Quiz progress for {learner} ({store.path})\n")
    print(format_scores(summarize(records, quiz.load_all())))
    if not records:
        others = [n for n in store.learners() if n != learner]
        hint = f" Learners in this file: {', '.join(others)}." if others else ""
        print(f"\nNo answers recorded for {learner} yet.{hint}")
    return 0
