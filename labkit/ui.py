"""Small widget helpers shared by the quizzes, the decision helper and the memory estimator.

Each widget's display bundle carries a static fallback (``text/plain``, optionally
``text/markdown``): a live JupyterLab shows the widget, while GitHub and nbviewer, which cannot run
widgets, show the fallback text instead of an empty cell once the widget view is stripped.
"""

from __future__ import annotations

import ipywidgets as widgets


class Fallback:
    """Mixin: replace the widget repr in the display bundle with readable static text."""

    _fallback_markdown: str | None = None
    _fallback_plain: str = ""

    def _repr_mimebundle_(self, **kwargs):
        data = super()._repr_mimebundle_(**kwargs)
        data["text/plain"] = self._fallback_plain
        if self._fallback_markdown:
            data["text/markdown"] = self._fallback_markdown
        return data


class LiveHTML(Fallback, widgets.HTML):
    """An HTML widget whose static fallback is a fixed sentence rather than its repr."""

    def __init__(self, fallback: str, **kwargs):
        super().__init__(**kwargs)
        self._fallback_plain = fallback
        self._fallback_markdown = f"*{fallback}*"


class FallbackBox(Fallback, widgets.VBox):
    """A VBox whose static fallback is given text (for the cheat sheet's helpers)."""

    def __init__(self, children, *, plain: str, markdown: str | None = None, **kwargs):
        super().__init__(children=children, **kwargs)
        self._fallback_plain = plain
        self._fallback_markdown = markdown
