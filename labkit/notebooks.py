"""Execute notebooks in place and save them clean enough to commit.

``python -m labkit.notebooks notebooks/02_lora_and_qlora.ipynb`` runs every cell in a fresh kernel
(from the notebook's folder, with whatever ``LABKIT_PROFILE`` is set) and writes the outputs back.
Saved widget state is stripped: it would bloat the diff and, for quizzes, reveal the answers.
Widget outputs keep only their plain-text fallback.

Figures are always stored as PNG images: the kernel gets Jupyter's inline matplotlib backend
whatever the shell says (``MPLBACKEND=Agg`` in the calling shell would otherwise make every
figure a ``<Figure size ...>`` text line with no picture).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"


def strip_widget_state(nb) -> int:
    """Remove saved widget state and widget views from a notebook object; return how many."""
    removed = 0
    if "widgets" in nb.metadata:
        del nb.metadata["widgets"]
        removed += 1
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data")
            if data and WIDGET_MIME in data:
                del data[WIDGET_MIME]
                removed += 1
    return removed


def execute(path: str | Path, timeout: int = 1800) -> float:
    import nbformat
    from nbclient import NotebookClient

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    before = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = INLINE_BACKEND  # the kernel inherits this environment
    try:
        client.execute()
    finally:
        if before is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = before
    seconds = time.perf_counter() - start
    strip_widget_state(nb)
    nbformat.write(nb, path)
    return seconds


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m labkit.notebooks NOTEBOOK.ipynb [...]")
        return 2
    for name in argv:
        seconds = execute(name)
        print(f"{name}: executed in {seconds:.0f}s and saved")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
