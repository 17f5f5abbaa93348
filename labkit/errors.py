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


class PathError(LabkitError, OSError):
    """A file or folder labkit must read or write is missing, of the wrong kind, or not permitted."""

    @classmethod
    def of(cls, exc: OSError, path, doing: str) -> "PathError":
        """``path: cannot <doing>: <why>`` in one line, from the OSError the system raised."""
        import errno

        why = {
            errno.EACCES: "permission denied (the folder or file is read-only for you)",
            errno.EPERM: "operation not permitted",
            errno.EROFS: "the file system is read-only",
            errno.EISDIR: "it is a folder, not a file",
            errno.ENOTDIR: "a part of the path is a regular file, not a folder",
            errno.EEXIST: "a regular file of that name is in the way (a folder is needed)",
            errno.ENOENT: "no such file or folder",
            errno.ENOSPC: "the disk is full",
        }.get(exc.errno, exc.strerror or str(exc))
        return cls(f"{path}: cannot {doing}: {why}")
