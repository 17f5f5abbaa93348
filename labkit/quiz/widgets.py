"""Quiz widgets: a question with a "Check answer" button, a set of them, and a live scoreboard.

Feedback lives in an ``HTML`` widget's value, never in an ``Output`` widget: nbval records Output
text as cell output, and a notebook saved after someone answered would carry the answer.

A question already answered (in this session or an earlier one: the progress file keeps it) shows
that on display: the learner's first answer, whether it was right, and how many attempts so far.

Each widget's display bundle also carries a static fallback (``text/markdown`` with the answer in
a closed ``<details>``, and ``text/plain`` without it). A live JupyterLab always prefers the widget
view, so the fallback never shows there; once ``labkit.notebooks`` strips the widget view before a
commit, GitHub and nbviewer show the Markdown instead of an empty cell.
"""

from __future__ import annotations

import html
from typing import Callable, Sequence

import ipywidgets as widgets

from labkit.quiz import progress
from labkit.quiz.bank import Grade, Question, choices_plain, feedback, grade, to_markdown
from labkit.ui import Fallback, LiveHTML


def _paragraphs(text: str) -> str:
    return "".join(f"<p>{html.escape(p.strip())}</p>" for p in text.split("\n\n") if p.strip())


class Scoreboard:
    """A running score over some questions, read from the progress store each time it refreshes.

    ``line`` is a one-line score; ``summary`` is a per-question table with what to revisit. The
    same widgets may be displayed under several quizzes: every view updates together.
    """

    def __init__(self, questions: Sequence[Question], *, store: progress.ProgressStore | None = None,
                 learner: str | None = None, label: str = "Score"):
        self.questions = list(questions)
        self.store = store
        self.learner = learner
        self.label = label
        self.line = LiveHTML("The running score appears here when the notebook runs.")
        self.line.add_class("labkit-quiz-score")
        self.summary = LiveHTML("Your summary appears here when the notebook runs; it is read from "
                                "your progress file, so it includes answers from earlier sessions.")
        self.summary.add_class("labkit-quiz-summary")
        self.refresh()

    def _records(self) -> dict[str, progress.QuestionRecord]:
        store = self.store or progress.ProgressStore()
        learner = progress.learner_name(self.learner)
        try:
            return {r.question_id: r for r in store.records(learner)}
        except (OSError, ValueError):
            return {}

    def score(self) -> tuple[int, int, int]:
        """(right on the first try, answered, total) for these questions."""
        records = self._records()
        mine = [records[q.id] for q in self.questions if q.id in records]
        return sum(r.first_attempt_correct for r in mine), len(mine), len(self.questions)

    def summary_text(self) -> str:
        records = self._records()
        right, answered, total = self.score()
        lines = [f"{right} of {total} right on the first try; {answered} of {total} answered."]
        for q in self.questions:
            r = records.get(q.id)
            state = ("not answered yet" if r is None else "right first try" if r.first_attempt_correct
                     else f"wrong first try, {'solved' if r.solved else 'unsolved'} after {r.attempts} attempts")
            lines.append(f"- {q.title}: {state}")
        revisit = [q.section for q in self.questions if q.section and q.id in records
                   and not records[q.id].first_attempt_correct]
        if revisit:
            lines.append("Worth revisiting: " + "; ".join(dict.fromkeys(revisit)) + ".")
        elif answered == total:
            lines.append("Every scenario right on the first try.")
        return "\n".join(lines)

    def refresh(self) -> None:
        right, answered, total = self.score()
        self.line.value = (f"<b>{self.label}: {right} / {total}</b> right on the first try "
                           f"<span style='opacity:0.7'>({answered} of {total} answered)</span>")
        head, *rest = self.summary_text().splitlines()
        items = "".join(f"<li>{html.escape(x[2:])}</li>" for x in rest if x.startswith("- "))
        tail = "".join(f"<p>{html.escape(x)}</p>" for x in rest if not x.startswith("- "))
        self.summary.value = f"<p><b>{html.escape(head)}</b></p><ul>{items}</ul>{tail}"


class QuizWidget(Fallback, widgets.VBox):
    """One question: its text, choices lettered A-F, "Check answer", and feedback.

    The selector shows letters only: a radio label has a fixed height in ipywidgets, so long
    choice text would overlap; the full text sits in the question above it.
    """

    def __init__(self, question: Question, *, scoreboard: Scoreboard | None = None,
                 store: progress.ProgressStore | None = None, learner: str | None = None,
                 on_check: Callable[[Grade], None] | None = None):
        self.question = question
        self.scoreboard = scoreboard
        self.store = store
        self.learner = learner
        self.on_check = on_check
        self.attempts = 0
        letters = [c.letter for c in question.choices]
        choice_list = "".join(f"<li><b>{c.letter}.</b> {html.escape(c.text)}</li>" for c in question.choices)
        hint = "<p><i>Tick every choice that applies.</i></p>" if question.multiple else ""
        self.text = widgets.HTML(
            f"<p><b>{html.escape(question.heading)}</b></p>{_paragraphs(question.prompt)}{hint}"
            f"<ul style='list-style:none;padding-left:0.5em'>{choice_list}</ul>")
        if question.multiple:
            self.boxes = [widgets.Checkbox(value=False, description=x, indent=False,
                                           layout=widgets.Layout(width="auto")) for x in letters]
            self.selector = widgets.HBox(self.boxes)
        else:
            self.boxes = []
            self.selector = widgets.RadioButtons(options=letters, value=None, description="Answer:",
                                                 orientation="horizontal")
        self.button = widgets.Button(description="Check answer", button_style="primary",
                                     tooltip="Check your answer")
        self.button.on_click(self._on_click)
        self.feedback = widgets.HTML("")
        self.feedback.add_class("labkit-quiz-feedback")
        children = [self.text, self.selector, self.button, self.feedback]
        if scoreboard is not None:
            children.append(scoreboard.line)
        super().__init__(children=children, layout=widgets.Layout(
            border="1px solid var(--jp-border-color2, #ccc)", padding="0.5em", margin="0.5em 0"))
        self.add_class("labkit-quiz")
        self._fallback_plain = choices_plain(question)
        self._fallback_markdown = to_markdown(question)
        self._restore()

    def _restore(self) -> None:
        """Show what the progress file remembers: a restarted kernel must not look like a fresh start."""
        record = (self.store or progress.ProgressStore()).record(progress.learner_name(self.learner), self.question.id)
        if record is None:
            return
        self.attempts = record.attempts
        first = ", ".join(record.first_answer)
        verdict = "right" if record.first_attempt_correct else "wrong"
        state = ("" if record.first_attempt_correct else
                 " You have solved it since." if record.solved else " Not solved yet: try again.")
        times = "attempt" if record.attempts == 1 else "attempts"
        self.feedback.value = (f"<p style='opacity:0.8'>Answered before: your first answer {html.escape(first)} was "
                               f"<b>{verdict}</b> ({record.attempts} {times} so far).{state} Only the first "
                               f"attempt counts toward the score.</p>")

    def selected(self) -> tuple[str, ...]:
        if self.question.multiple:
            return tuple(b.description for b in self.boxes if b.value)
        return (self.selector.value,) if self.selector.value else ()

    def answer(self, letters: str | Sequence[str]) -> Grade | None:
        """Select ``letters`` and press "Check answer" (for tests; never call it in a notebook)."""
        letters = [letters] if isinstance(letters, str) else list(letters)
        if self.question.multiple:
            for b in self.boxes:
                b.value = b.description in letters
        else:
            self.selector.value = letters[0] if letters else None
        return self._on_click(self.button)

    def _on_click(self, _button) -> Grade | None:
        picks = self.selected()
        if not picks:
            self.feedback.value = "<p>Pick an answer first.</p>"
            return None
        result = grade(self.question, picks)
        self.attempts += 1
        note = self._record(result)
        headline, lines = feedback(self.question, result)
        colour = "var(--jp-success-color1, green)" if result.correct else "var(--jp-warn-color1, #b36b00)"
        body = "".join(f"<p>{html.escape(x)}</p>" for x in lines)
        self.feedback.value = (f"<div style='border-left:4px solid {colour};padding-left:0.6em'>"
                               f"<p><b>{headline}</b></p>{body}"
                               f"<p style='opacity:0.7;font-size:0.9em'>{html.escape(note)}</p></div>")
        if self.scoreboard is not None:
            self.scoreboard.refresh()
        if self.on_check is not None:
            self.on_check(result)
        return result

    def _record(self, result: Grade) -> str:
        store = self.store or progress.ProgressStore()
        learner = progress.learner_name(self.learner)
        try:
            record = store.record_attempt(learner, self.question.id, self.question.part, self.question.kind,
                                          result.selected, result.correct)
        except (OSError, ValueError) as exc:
            # A read-only home must not break the quiz itself; say so instead.
            return f"Not saved to your progress file: {exc}"
        first = "right" if record.first_attempt_correct else "wrong"
        return f"Saved for {learner}: attempt {record.attempts}; your first try here was {first}."


class QuizSet(Fallback, widgets.VBox):
    """Several quizzes with one running score beneath them."""

    def __init__(self, questions: Sequence[Question], *, label: str = "Score", **kwargs):
        self.scoreboard = Scoreboard(questions, store=kwargs.get("store"), learner=kwargs.get("learner"),
                                     label=label)
        self.quizzes = [QuizWidget(q, scoreboard=None, **kwargs) for q in questions]
        for quiz in self.quizzes:
            quiz.scoreboard = self.scoreboard
        super().__init__(children=[*self.quizzes, self.scoreboard.line])
        self._fallback_plain = "\n\n".join(choices_plain(q) for q in questions)
        self._fallback_markdown = "\n\n---\n\n".join(to_markdown(q) for q in questions)
