"""labkit's own errors: each message names what to fix (the file and line, or the field and value).

Every error labkit raises on purpose derives from :class:`LabkitError`, most also from the
built-in type a Python caller would expect (``ValueError``, ``LookupError``, ...). The CLI prints
a ``LabkitError`` as one line and exits 2; any other exception (from transformers, TRL, torch)
keeps its full traceback, because then the traceback is the useful part.
"""

from __future__ import annotations


class LabkitError(Exception):
    """Base class: a problem with the user's input or files, explained in one line."""


class UsageError(LabkitError, ValueError):
    """An argument has a value labkit cannot use (an unknown lesson, profile or arm)."""


class NotFinishedError(LabkitError, FileNotFoundError):
    """A folder that was expected to hold a finished run does not (no ``summary.json``)."""
