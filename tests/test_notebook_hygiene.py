"""Committed notebooks carry no widget state, never answer a quiz on the learner's behalf, store every
figure as a picture, and show no path of the machine that executed them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from labkit.notebooks import WIDGET_MIME

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
# Calls that would press "Check answer" or write the progress store from a shipped notebook.
SIMULATED_ANSWER = re.compile(r"\.answer\(|record_attempt\(|\._on_click\(|\.button\.click\(")
# A cell that draws: a live board finishing, a plot helper, pyplot, or a figure displayed.
DRAWS = re.compile(r"\.finish\(|\bplot\w*\(|\bplt\.|display\(fig")
# Absolute paths that only exist on the machine that executed the notebook.
MACHINE_PATH = re.compile(r"(?<![\w.~])/(?:root|home|work|tmp|Users)/")


def _text(output) -> str:
    data = output.get("data", {})
    plain = data.get("text/plain", "")
    parts = [output.get("text", ""), plain, data.get("text/html", ""), data.get("text/markdown", "")]
    return "".join("".join(p) if isinstance(p, list) else p for p in parts)


def _executed(nb) -> bool:
    return any(cell.get("outputs") for cell in nb["cells"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_saved_widget_state(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert "widgets" not in nb.get("metadata", {}), f"{path.name}: strip it with python -m labkit.notebooks"
    for i, cell in enumerate(nb["cells"]):
        for output in cell.get("outputs", []):
            assert WIDGET_MIME not in output.get("data", {}), (
                f"{path.name} cell {i}: saved widget view; run python -m labkit.notebooks {path.name}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_quiz_is_answered_in_a_shipped_notebook(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            source = "".join(cell["source"])
            assert not SIMULATED_ANSWER.search(source), f"{path.name} cell {i} answers a quiz for the learner"
        for output in cell.get("outputs", []):
            text = json.dumps(output.get("data", {})) + "".join(output.get("text", ""))
            # Live feedback only ever exists inside a widget; seeing it in an output means it leaked.
            assert "labkit-quiz-feedback" not in text and "Saved for " not in text, f"{path.name} cell {i}"


def test_the_quiz_notebooks_exist():
    names = {p.name for p in NOTEBOOKS}
    assert {"07_practice_mode.ipynb", "08_cheat_sheet.ipynb"} <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_figure_is_stored_as_an_image(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    for i, cell in enumerate(nb["cells"]):
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            text = data.get("text/plain", "")
            text = "".join(text) if isinstance(text, list) else text
            assert not ("<Figure size" in text and not any(k.startswith("image/") for k in data)), (
                f"{path.name} cell {i}: a figure stored as text only (was MPLBACKEND=Agg set when it ran?)")
        if cell["cell_type"] == "code" and _executed(nb) and DRAWS.search("".join(cell["source"])):
            assert any("image/png" in o.get("data", {}) for o in cell.get("outputs", [])), (
                f"{path.name} cell {i} draws but stores no image/png; re-run python -m labkit.notebooks {path.name}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_machine_paths_and_no_visible_test_markers(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    for i, cell in enumerate(nb["cells"]):
        assert "NBVAL_CHECK_OUTPUT" not in "".join(cell["source"]), (
            f"{path.name} cell {i}: use the cell tag nbval-check-output instead of a comment")
        for output in cell.get("outputs", []):
            found = MACHINE_PATH.search(_text(output))
            assert not found, f"{path.name} cell {i} shows a path of the executing machine: {found.group(0)}..."
