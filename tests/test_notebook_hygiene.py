"""Committed notebooks carry no widget state and never answer a quiz on the learner's behalf."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from labkit.notebooks import WIDGET_MIME

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
# Calls that would press "Check answer" or write the progress store from a shipped notebook.
SIMULATED_ANSWER = re.compile(r"\.answer\(|record_attempt\(|\._on_click\(|\.button\.click\(")


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
