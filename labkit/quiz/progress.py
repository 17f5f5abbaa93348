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
import getpass
import json
import os
import time
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

from labkit import paths
from labkit.files import write_atomic

VERSION = 1


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
    return (f"Answers are saved for '{learner_name(learner)}' in {paths.shown(paths.progress_file())} "
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

    def record(self, learner: str, question_id: str) -> QuestionRecord | None:
        """One learner's record for one question, or None if never answered."""
        try:
            return next((r for r in self.records(learner) if r.question_id == question_id), None)
        except (OSError, ValueError):
            return None

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
            write_atomic(self.path, json.dumps(doc, indent=1, sort_keys=True) + "\n")
        return next(r for r in self.records(learner) if r.question_id == question_id)
