"""Where labkit keeps things: model cache, runs, learner progress.

Every location can be moved with an environment variable so that an instructor can point a whole
room at a shared folder, and CI can keep its writes inside a temporary directory.
"""

from __future__ import annotations

import os
from pathlib import Path

from labkit.errors import UsageError


def _course_root(start: Path | None = None) -> Path | None:
    """The checkout of this course, if the current directory lies inside one.

    Notebooks run with ``notebooks/`` as their working directory while the CLI runs from the
    checkout root; both should see the same ``runs/`` folder.
    """
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "labkit" / "__init__.py").is_file() and (folder / "notebooks").is_dir():
            return folder
    return None


def cache_dir() -> Path:
    """Converted model weights (safetensors). ``LABKIT_CACHE_DIR`` overrides."""
    env = os.environ.get("LABKIT_CACHE_DIR")
    path = Path(env).expanduser() if env else Path.home() / ".cache" / "labkit"
    return path


def runs_dir() -> Path:
    """Run folders. ``LABKIT_RUNS_DIR`` overrides; else ``runs/`` at the course root or cwd."""
    env = os.environ.get("LABKIT_RUNS_DIR")
    if env:
        return Path(env).expanduser()
    root = _course_root()
    return (root or Path.cwd()) / "runs"


def progress_file() -> Path:
    """The learner's quiz progress. ``LABKIT_PROGRESS`` overrides."""
    env = os.environ.get("LABKIT_PROGRESS")
    return Path(env).expanduser() if env else Path.home() / ".labkit" / "progress.json"


def data_dir() -> Path:
    """Shipped datasets, quiz banks and probes (``data/`` in the checkout).

    ``LABKIT_DATA_DIR`` overrides, for an installed labkit used outside the checkout.
    """
    env = os.environ.get("LABKIT_DATA_DIR")
    if env:
        return Path(env).expanduser()
    root = _course_root() or Path(__file__).resolve().parent.parent
    return root / "data"


def profile() -> str:
    """``smoke`` (CI: few steps, tiny subsets) or ``full`` (a learner's default)."""
    value = os.environ.get("LABKIT_PROFILE", "full").strip().lower()
    if value not in ("smoke", "full"):
        raise UsageError(f"LABKIT_PROFILE={value!r}: expected 'smoke' or 'full'")
    return value


def shown(path: str | Path) -> str:
    """``path`` as a reader should see it: relative to the checkout, or with ``~`` for the home folder.

    Notebooks are committed with their outputs; an absolute path would publish the layout of the
    machine that executed them and mean nothing on anyone else's.
    """
    path = Path(path).expanduser().resolve()
    root = _course_root()
    if root is not None and path.is_relative_to(root):
        return str(path.relative_to(root)) or "."
    home = Path.home().resolve()
    if path.is_relative_to(home):
        return "~/" + str(path.relative_to(home))
    return str(path)
