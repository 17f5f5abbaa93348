"""Decision-point quizzes: banks, grading, widgets, the learner's progress and the instructor's report.

One idea per module:

* :mod:`labkit.quiz.bank`      - YAML banks under ``data/quizzes/``: load, validate, grade, render
* :mod:`labkit.quiz.widgets`   - the live quiz (ipywidgets), a set of quizzes, a running score
* :mod:`labkit.quiz.progress`  - the learner's progress file (atomic, locked, never lost)
* :mod:`labkit.quiz.report`    - per-part scores and the instructor's CSV export (``labkit progress``)

>>> from labkit.quiz import show
>>> show("p2-qlora-24gb")                                     # doctest: +SKIP
"""

from labkit.quiz.bank import (
    PARTS,
    Bank,
    BankError,
    Choice,
    Grade,
    Question,
    banks_dir,
    choices_plain,
    feedback,
    get_question,
    grade,
    load_all,
    load_bank,
    select,
    to_markdown,
)

__all__ = ["PARTS", "Bank", "BankError", "Choice", "Grade", "Question", "banks_dir", "choices_plain", "feedback",
           "get_question", "grade", "load_all", "load_bank", "scoreboard", "select", "show", "show_part",
           "to_markdown"]


def show(question_id: str, **kwargs):
    """A live quiz for one question: choices, a "Check answer" button, feedback.

    Keyword arguments go to :class:`labkit.quiz.widgets.QuizWidget` (``scoreboard``, ``store``,
    ``learner``). The first attempt is recorded in the progress store; a question answered before
    shows so.
    """
    from labkit.quiz.widgets import QuizWidget

    return QuizWidget(get_question(question_id), **kwargs)


def show_part(part, kind: str | None = None, topic: str | None = None, **kwargs):
    """Several quizzes from one part (optionally one kind or topic) with a running score."""
    from labkit.quiz.widgets import QuizSet

    return QuizSet(select(part, kind=kind, topic=topic), **kwargs)


def scoreboard(part="practice", **kwargs):
    """A running score and a summary for one part, read live from the progress store."""
    from labkit.quiz.widgets import Scoreboard

    return Scoreboard(load_bank(part).questions, **kwargs)
