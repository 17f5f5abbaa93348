"""Quiz banks validate, grading is right, widgets record first attempts, Markdown hides answers."""

from __future__ import annotations

import re
import shutil

import pytest

from labkit import paths, quiz
from labkit.quiz.progress import ProgressStore

BANKS = sorted((paths.data_dir() / "quizzes").glob("*.yaml"))


@pytest.fixture(autouse=True)
def _private_progress(tmp_path, monkeypatch):
    """A widget pressed without an explicit store must never write the real progress file."""
    monkeypatch.setenv("LABKIT_PROGRESS", str(tmp_path / "default-progress.json"))


SEED_DECISIONS = ("p1-legal-format", "p2-qlora-24gb", "p4-finance-forgetting", "p6-trail-runners")


@pytest.mark.parametrize("path", BANKS, ids=lambda p: p.name)
def test_every_bank_validates(path):
    bank = quiz.load_bank(path)
    assert bank.questions


def test_the_expected_banks_exist_with_unique_ids():
    banks = quiz.load_all()
    assert list(banks) == ["0", "1", "2", "3", "4", "5", "6", "practice"]
    assert len(banks["0"].questions) == 1
    for part in "123456":
        checks = [q for q in banks[part].questions if q.kind == "check"]
        assert len(checks) >= 2, f"part {part} needs at least two check questions"
    assert len(banks["practice"].questions) == 4


def test_every_seed_decision_point_is_covered():
    for qid in SEED_DECISIONS:
        assert quiz.get_question(qid).kind == "decision"


def test_part6_questions_carry_a_topic():
    topics = {q.topic for q in quiz.load_bank(6).questions}
    assert topics == {"raft", "embeddings"}
    assert all(q.topic == "embeddings" for q in quiz.select(6, topic="embeddings"))


def test_answers_are_spread_over_letters():
    # A bank where the answer is nearly always "B" teaches the wrong lesson.
    singles = [q for b in quiz.load_all().values() for q in b.questions if not q.multiple]
    counts = {x: sum(x in q.answer for q in singles) for x in "ABCD"}
    assert max(counts.values()) <= 0.45 * len(singles), counts


GOOD = """\
part: 3
title: A test bank
questions:
  - id: p3-one
    kind: check
    title: One
    prompt: Which?
    choices:
      - text: this
        feedback: Right, this one.
      - text: that
        feedback: Not that one.
    answer: A
    explanation: Because.
"""


def _broken(tmp_path, old, new, name="part3.yaml"):
    path = tmp_path / name
    assert old in GOOD
    path.write_text(GOOD.replace(old, new))
    return path


@pytest.mark.parametrize("old,new,message", [
    ("answer: A", "answer: D", "answer D is not one of the choices"),
    ("answer: A", "answer: [A, B]", "every choice is correct"),
    ("kind: check", "kind: trivia", "'kind' must be one of"),
    ("id: p3-one", "id: p4-one", "start with 'p3-'"),
    ("    title: One\n", "    title: One\n    hint: psst\n", "unknown field(s) hint"),
    ("        feedback: Not that one.\n", "", "choice B: 'feedback' must be non-empty text (got nothing)"),
    ("        feedback: Not that one.\n", "        feedback: Not that one.\n        why: x\n", "choice B: expected exactly"),
    ("        feedback: Not that one.\n", "        feedback: no\n", "got bool False; quote it"),
    ("    explanation: Because.\n", "", "'explanation' must be non-empty text"),
    ("      - text: that", "      - text: 42", "quote it"),
])
def test_a_broken_bank_names_file_and_question(tmp_path, old, new, message):
    path = _broken(tmp_path, old, new)
    with pytest.raises(quiz.BankError) as err:
        quiz.load_bank(path)
    text = str(err.value)
    assert str(path) in text and message in text
    if "start with" not in message:
        assert "'p3-one'" in text


def test_broken_yaml_and_duplicate_ids_are_reported(tmp_path):
    bad = tmp_path / "part3.yaml"
    bad.write_text("part: 3\nquestions: [unclosed\n")
    with pytest.raises(quiz.BankError, match=re.escape(str(bad)) + ".*not valid YAML"):
        quiz.load_bank(bad)
    twice = GOOD + GOOD.split("questions:\n", 1)[1]
    bad.write_text(twice)
    with pytest.raises(quiz.BankError, match="'p3-one': id used twice"):
        quiz.load_bank(bad)


def test_a_broken_bank_in_the_folder_fails_load_all(tmp_path):
    folder = tmp_path / "quizzes"
    shutil.copytree(paths.data_dir() / "quizzes", folder)
    text = (folder / "part2.yaml").read_text().replace("answer: D", "answer: F", 1)
    (folder / "part2.yaml").write_text(text)
    with pytest.raises(quiz.BankError, match=r"part2\.yaml: question 'p2-qlora-24gb': answer F"):
        quiz.load_all(folder)


def test_grading_single_answer():
    q = quiz.get_question("p2-qlora-24gb")
    right = next(iter(q.answer))
    assert quiz.grade(q, right).correct
    assert quiz.grade(q, right.lower()).correct
    wrong = next(c.letter for c in q.choices if not c.correct)
    g = quiz.grade(q, wrong)
    assert not g.correct and g.wrong_picks == (wrong,) and g.missed == (right,)
    with pytest.raises(ValueError, match="pick one choice"):
        quiz.grade(q, ["A", "B"])
    with pytest.raises(ValueError, match="no choice F"):
        quiz.grade(q, "F")
    with pytest.raises(ValueError, match="pick at least one"):
        quiz.grade(q, [])


def test_grading_multi_answer_needs_the_exact_set():
    q = quiz.get_question("p4-defences")
    assert q.multiple and q.answer == {"A", "C", "D"}
    assert quiz.grade(q, ["A", "C", "D"]).correct
    partial = quiz.grade(q, ["A", "C"])
    assert not partial.correct and partial.missed == ("D",) and partial.wrong_picks == ()
    extra = quiz.grade(q, ["A", "B", "C", "D"])
    assert not extra.correct and extra.wrong_picks == ("B",)
    head, lines = quiz.feedback(q, partial)
    assert head.startswith("Not quite") and "at least one more" in lines[-1]


def test_wrong_feedback_explains_the_pick_without_giving_the_answer():
    q = quiz.get_question("p1-legal-format")
    wrong = next(c for c in q.choices if not c.correct)
    head, lines = quiz.feedback(q, quiz.grade(q, wrong.letter))
    assert head.startswith("Not quite") and wrong.feedback in lines[0]
    assert q.explanation not in " ".join(lines)
    head, lines = quiz.feedback(q, quiz.grade(q, sorted(q.answer)))
    assert head == "Correct." and lines[-1] == q.explanation


def test_markdown_fallback_hides_the_answer_in_details():
    q = quiz.get_question("p2-qlora-24gb")
    md = quiz.to_markdown(q)
    before, details = md.split("<details>", 1)
    assert q.choices[0].text.split()[0] in before
    assert "Answer:" not in before and q.explanation not in before and "(right)" not in before
    assert "<summary>" in details and f"Answer: {''.join(q.answer)}." in details
    plain = quiz.choices_plain(q)
    assert q.explanation not in plain and "Answer" not in plain


# --- widgets (no kernel needed: ipywidgets works without a front end) ------------------------


@pytest.fixture
def store(tmp_path):
    return ProgressStore(tmp_path / "progress.json")


def test_widget_records_first_attempt_and_allows_retry(store):
    w = quiz.show("p2-qlora-24gb", store=store, learner="ada")
    assert w.button.description == "Check answer"
    assert w.answer([]) is None and "Pick an answer" in w.feedback.value
    first = w.answer("A")
    assert not first.correct and "Not quite" in w.feedback.value and "Try again" in w.feedback.value
    second = w.answer("D")
    assert second.correct and "Correct." in w.feedback.value
    [record] = store.records("ada")
    assert (record.attempts, record.first_attempt_correct, record.solved, record.first_answer) == (2, False, True, ("A",))


def test_widget_shows_the_last_state_after_a_kernel_restart(store):
    fresh = quiz.show("p2-qlora-24gb", store=store, learner="ada")
    assert fresh.feedback.value == ""  # never answered: nothing to show
    fresh.answer("A")
    fresh.answer("D")
    # a new widget (as after a restart) reads the progress file: answered, first try wrong, solved since
    again = quiz.show("p2-qlora-24gb", store=store, learner="ada")
    assert "Answered before" in again.feedback.value and "<b>wrong</b>" in again.feedback.value
    assert "2 attempts" in again.feedback.value and "solved it since" in again.feedback.value
    assert again.attempts == 2
    # another learner in the same file starts blank
    assert quiz.show("p2-qlora-24gb", store=store, learner="bob").feedback.value == ""


def test_widget_uses_checkboxes_for_multi_answer(store):
    w = quiz.show("p4-defences", store=store, learner="ada")
    assert [b.description for b in w.boxes] == ["A", "B", "C", "D", "E"]
    assert w.answer(["A", "C", "D"]).correct
    assert store.records("ada")[0].first_attempt_correct


def test_widget_display_bundle_carries_a_static_fallback():
    w = quiz.show("p1-legal-format")
    bundle = w._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/markdown"] == quiz.to_markdown(w.question)
    assert "Answer" not in bundle["text/plain"]


def test_widget_survives_an_unwritable_progress_file(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    w = quiz.show("p0-how-quizzes-work", store=ProgressStore(blocker / "progress.json"))
    assert w.answer("B").correct
    assert "Not saved" in w.feedback.value


def test_show_part_keeps_a_running_score(store):
    s = quiz.show_part(6, topic="embeddings", store=store, learner="ada")
    assert len(s.quizzes) == 3 and all(q.question.topic == "embeddings" for q in s.quizzes)
    assert "0 / 3" in s.scoreboard.line.value
    first = s.quizzes[0]
    first.answer(sorted(first.question.answer))
    assert "1 / 3" in s.scoreboard.line.value and "1 of 3 answered" in s.scoreboard.line.value
    assert "---" in s._repr_mimebundle_()["text/markdown"]
    with pytest.raises(ValueError, match="no questions"):
        quiz.show_part(6, topic="knitting")


def test_scoreboard_summary_reads_the_store(store):
    board = quiz.scoreboard("practice", store=store, learner="ada")
    assert board.summary_text().startswith("0 of 4 right on the first try")
    qs = board.questions
    quiz.show(qs[0].id, scoreboard=board, store=store, learner="ada").answer(sorted(qs[0].answer))
    wrong = next(c.letter for c in qs[1].choices if not c.correct)
    quiz.show(qs[1].id, scoreboard=board, store=store, learner="ada").answer(wrong)
    text = board.summary_text()
    assert text.startswith("1 of 4 right on the first try; 2 of 4 answered")
    assert "Worth revisiting: " + qs[1].section in text
    # A fresh board (a new session) reads the same file: nothing is pre-baked.
    assert quiz.scoreboard("practice", store=store, learner="ada").score() == (1, 2, 4)
    assert quiz.scoreboard("practice", store=store, learner="bob").score() == (0, 0, 4)


def test_unknown_question_id():
    with pytest.raises(KeyError, match="p2-nope"):
        quiz.get_question("p2-nope")
    with pytest.raises(KeyError, match="ids look like"):
        quiz.get_question("zzz")
