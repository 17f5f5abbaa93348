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
mix. A file that cannot be read at all is moved aside to ``progress.json.corrupt-<time>`` with a
warning and a fresh one is started; a file with some malformed entries keeps every valid entry:
the original is moved aside (so the bad entries survive there) and the valid entries are written
back, with a warning naming what was set aside. Nothing is deleted. (In a read-only folder
nothing can be moved: the valid entries are still read, with a warning.) A lock file serialises
writers, so two notebooks open at once do not drop each other's answers; a writer killed mid-write
can leave a ``.progress.json.*.tmp`` file, and the next write removes such leftovers. A path that
cannot be read or written (a folder, a read-only place) raises :class:`ProgressError`, one line
naming the path.
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
from labkit.errors import LabkitError, PathError
from labkit.files import write_atomic

VERSION = 1
STALE_TMP_SECONDS = 60.0  # without a lock (Windows), a temp file this old has no live writer


class ProgressWarning(UserWarning):
    """The progress file was unreadable (in whole or in part) and has been moved aside."""


class ProgressError(LabkitError, ValueError):
    """The progress file cannot be used as it is (written by a newer labkit)."""


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
    """Why ``doc`` is not a progress document at all, or None when it is (entries aside)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("learners"), dict):
        return "no 'learners' mapping"
    if not isinstance(doc.get("version"), int):
        return "no 'version'"
    return None


def _split_bad(doc: dict) -> tuple[dict, list[str]]:
    """(the document with only well-formed entries, a description of each entry left out)."""
    bad: list[str] = []
    learners: dict = {}
    for learner, answers in doc["learners"].items():
        if not isinstance(answers, dict):
            bad.append(f"learner {learner!r} (not a mapping)")
            continue
        kept = {}
        for qid, entry in answers.items():
            if _entry_ok(entry):
                kept[qid] = entry
            else:
                bad.append(f"learner {learner!r}, question {qid!r}")
        learners[learner] = kept
    return {**doc, "learners": learners}, bad


class ProgressStore:
    """The progress file at ``path`` (default: ``labkit.paths.progress_file()``)."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path).expanduser() if path else paths.progress_file()

    # -- reading ------------------------------------------------------------------------------

    _holding_lock = False

    def read(self) -> dict:
        """The whole document. An unreadable file is moved aside (with a warning) first; malformed
        entries are set aside the same way while every valid entry is kept."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {"version": VERSION, "learners": {}}
        except OSError as exc:
            raise PathError.of(exc, self.path, "read the progress file") from None
        try:
            doc = json.loads(raw.decode("utf-8"))
            problem = _problem(doc)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            doc, problem = None, f"not JSON ({exc})"
        if problem is None and doc["version"] > VERSION:
            raise ProgressError(f"{self.path} was written by a newer labkit (version {doc['version']}); "
                                "upgrade labkit rather than overwrite it")
        if problem is not None:
            self._move_aside(problem)
            return {"version": VERSION, "learners": {}}
        clean, bad = _split_bad(doc)
        if bad:
            self._set_aside_entries(raw, clean, bad)
        return clean

    def _aside_target(self) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        n = 1
        while target.exists():
            target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
            n += 1
        return target

    def _move_aside(self, problem: str) -> Path | None:
        target = self._aside_target()
        try:
            os.replace(self.path, target)
        except OSError as exc:
            warnings.warn(f"{self.path} could not be read ({problem}) and could not be moved aside either "
                          f"({exc.strerror}); it is left as it is and read as empty.", ProgressWarning, stacklevel=3)
            return None
        warnings.warn(f"{self.path} could not be read ({problem}); it was moved to {target} and progress "
                      "starts again from an empty file. Nothing was deleted.", ProgressWarning, stacklevel=3)
        return target

    def _set_aside_entries(self, raw: bytes, clean: dict, bad: list[str]) -> None:
        """Keep the valid entries in the live file; the original (with the bad ones) goes aside."""
        listed = "; ".join(bad[:5]) + ("; ..." if len(bad) > 5 else "")
        kept = sum(len(a) for a in clean["learners"].values())
        lock = contextlib.nullcontext() if self._holding_lock else self._locked()
        try:
            with lock:
                target = self._aside_target()
                os.replace(self.path, target)
                write_atomic(self.path, json.dumps(clean, indent=1, sort_keys=True) + "\n")
        except (OSError, PathError) as exc:
            warnings.warn(f"{self.path}: {len(bad)} malformed entr{'y' if len(bad) == 1 else 'ies'} ({listed}) "
                          f"skipped; the file could not be rewritten ({getattr(exc, 'strerror', None) or exc}), "
                          f"so it is left as it is. {kept} valid entries are read.", ProgressWarning, stacklevel=3)
            return
        warnings.warn(f"{self.path}: {len(bad)} malformed entr{'y' if len(bad) == 1 else 'ies'} ({listed}) set aside; "
                      f"the original file was moved to {target} and the {kept} valid entries were kept. "
                      "Nothing was deleted.", ProgressWarning, stacklevel=3)

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
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PathError.of(exc, self.path.parent, "create the progress folder") from None
        if self.path.is_dir():
            raise PathError(f"{self.path}: cannot use it as the progress file: it is a folder, not a file")
        try:
            import fcntl
        except ImportError:  # Windows: one notebook at a time is the common case there
            self._clean_stale_tmp(locked=False)
            yield
            return
        try:
            lock = open(self.path.with_name(self.path.name + ".lock"), "a")
        except OSError as exc:
            raise PathError.of(exc, self.path.parent, "write the progress file there") from None
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._holding_lock = True
            try:
                self._clean_stale_tmp(locked=True)
                yield
            finally:
                self._holding_lock = False
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _clean_stale_tmp(self, locked: bool) -> None:
        """Remove ``.progress.json.*.tmp`` left by a writer killed mid-write. Holding the lock, no
        other writer is active, so every such file is stale; without a lock, only old ones."""
        for tmp in self.path.parent.glob(f".{self.path.name}.*.tmp"):
            with contextlib.suppress(OSError):
                if locked or time.time() - tmp.stat().st_mtime > STALE_TMP_SECONDS:
                    tmp.unlink()

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
            try:
                write_atomic(self.path, json.dumps(doc, indent=1, sort_keys=True) + "\n")
            except OSError as exc:
                raise PathError.of(exc, self.path, "write the progress file") from None
        return next(r for r in self.records(learner) if r.question_id == question_id)
