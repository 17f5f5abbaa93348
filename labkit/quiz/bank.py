"""Quiz banks: load and validate them, grade an answer, render a question as Markdown.

A bank is one YAML file under ``data/quizzes/`` (``part0.yaml`` ... ``part6.yaml``,
``practice.yaml``)::

    part: 2                       # 0-6, or "practice"
    title: LoRA and QLoRA
    questions:
      - id: p2-qlora-24gb         # p<part>-... or practice-...; unique across all banks
        kind: decision            # decision | check | practice
        title: A 13B model on one 24 GB GPU
        topic: raft               # optional tag, e.g. raft | embeddings in part 6
        section: "02 · QLoRA"     # optional pointer to the lesson section
        prompt: ...
        choices:                  # 2-6; lettered A, B, C ... in this order
          - text: ...
            feedback: ...         # why this choice is right or wrong
        answer: B                 # one letter -> radio buttons; a list -> tick all that apply
        explanation: ...          # shown once the learner gets it right

The YAML is the single source: the live widget (``show``), the static Markdown fallback
(``to_markdown``) and grading all read it. Nothing here imports ipywidgets, so banks and grading
are testable without a kernel; ``labkit.quiz.show`` and ``show_part`` import the widgets when called.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from labkit import paths
from labkit.errors import LabkitError

PARTS = ("0", "1", "2", "3", "4", "5", "6", "practice")
KINDS = ("decision", "check", "practice")
LETTERS = "ABCDEF"
QUESTION_KEYS = {"id", "part", "kind", "title", "topic", "section", "prompt", "choices", "answer",
                 "explanation"}
_ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)+$")


class BankError(LabkitError, ValueError):
    """A quiz bank that does not match the schema; the message names the file and question id."""


@dataclass(frozen=True)
class Choice:
    letter: str
    text: str
    feedback: str
    correct: bool


@dataclass(frozen=True)
class Question:
    """One validated question. ``multiple`` means "tick all that apply" (checkboxes)."""

    id: str
    part: str
    kind: str
    title: str
    prompt: str
    choices: tuple[Choice, ...]
    answer: frozenset[str]
    explanation: str
    multiple: bool
    topic: str | None = None
    section: str | None = None
    source: str = ""

    def choice(self, letter: str) -> Choice:
        return self.choices[LETTERS.index(letter)]

    @property
    def heading(self) -> str:
        if self.part == "practice":
            return f"Practice · {self.title}"
        kind = {"decision": "Decision point", "check": "Check"}[self.kind]
        return f"{kind} · Part {self.part}: {self.title}"


@dataclass(frozen=True)
class Bank:
    part: str
    title: str
    questions: tuple[Question, ...]
    path: Path


@dataclass(frozen=True)
class Grade:
    """The outcome of one attempt: which picks were wrong and which right choices were missed."""

    question_id: str
    selected: tuple[str, ...]
    correct: bool
    wrong_picks: tuple[str, ...]
    missed: tuple[str, ...]


# ---------------------------------------------------------------------------------------------
# Loading and validation


def banks_dir() -> Path:
    return paths.data_dir() / "quizzes"


def _part_key(part) -> str:
    key = str(part).strip().lower()
    if key not in PARTS:
        raise ValueError(f"unknown part {part!r}; expected one of {', '.join(PARTS)}")
    return key


def _bank_path(name) -> Path:
    """``2``, ``"part2"``, ``"practice"`` or a path to a YAML file."""
    if isinstance(name, Path) or str(name).endswith((".yaml", ".yml")):
        return Path(name)
    text = str(name)
    key = text[4:] if text.startswith("part") else text
    key = _part_key(key)
    return banks_dir() / ("practice.yaml" if key == "practice" else f"part{key}.yaml")


def _text(raw: dict, key: str, where: str, required: bool = True) -> str | None:
    value = raw.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        got = "nothing" if value is None else f"{type(value).__name__} {value!r}; quote it"
        raise BankError(f"{where}: '{key}' must be non-empty text (got {got})")
    return value.strip()


def _parse_question(raw, index: int, part: str, source: Path) -> Question:
    where = f"{source}: questions[{index}]"
    if not isinstance(raw, dict):
        raise BankError(f"{where}: expected a mapping of question fields")
    qid = raw.get("id")
    if not isinstance(qid, str) or not _ID.match(qid):
        raise BankError(f"{where}: 'id' must look like p2-some-words (lowercase, dashes); got {qid!r}")
    where = f"{source}: question {qid!r}"
    prefix = "practice-" if part == "practice" else f"p{part}-"
    if not qid.startswith(prefix):
        raise BankError(f"{where}: ids in this bank start with {prefix!r}")
    unknown = sorted(set(raw) - QUESTION_KEYS)
    if unknown:
        raise BankError(f"{where}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(QUESTION_KEYS))}")
    if "part" in raw and str(raw["part"]).lower() != part:
        raise BankError(f"{where}: part {raw['part']!r} differs from the bank's part {part!r}")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise BankError(f"{where}: 'kind' must be one of {', '.join(KINDS)}; got {kind!r}")
    if (kind == "practice") != (part == "practice"):
        raise BankError(f"{where}: kind 'practice' belongs in practice.yaml and only there")

    choices_raw = raw.get("choices")
    if not isinstance(choices_raw, list) or not 2 <= len(choices_raw) <= len(LETTERS):
        raise BankError(f"{where}: 'choices' must be a list of 2 to {len(LETTERS)} choices")
    answer_raw = raw.get("answer")
    multiple = isinstance(answer_raw, list)
    letters = answer_raw if multiple else [answer_raw]
    if not letters or not all(isinstance(x, str) for x in letters):
        raise BankError(f"{where}: 'answer' must be a letter (A) or a list of letters ([A, C])")
    answer = frozenset(x.strip().upper() for x in letters)
    valid = set(LETTERS[: len(choices_raw)])
    if not answer <= valid:
        bad = ", ".join(sorted(answer - valid))
        raise BankError(f"{where}: answer {bad} is not one of the choices {', '.join(sorted(valid))}")
    if answer == valid:
        raise BankError(f"{where}: every choice is correct, so the question tests nothing")

    choices = []
    texts = set()
    for i, c in enumerate(choices_raw):
        letter = LETTERS[i]
        cwhere = f"{where}: choice {letter}"
        if not isinstance(c, dict) or set(c) - {"text", "feedback"}:
            raise BankError(f"{cwhere}: expected exactly 'text' and 'feedback'")
        text = _text(c, "text", cwhere)
        if text in texts:
            raise BankError(f"{cwhere}: the same text appears twice")
        texts.add(text)
        choices.append(Choice(letter, text, _text(c, "feedback", cwhere), letter in answer))

    topic = _text(raw, "topic", where, required=False)
    if topic is not None and not _ID.match(topic + "-x"):
        raise BankError(f"{where}: 'topic' must be a lowercase word; got {topic!r}")
    return Question(
        id=qid, part=part, kind=kind, title=_text(raw, "title", where), prompt=_text(raw, "prompt", where),
        choices=tuple(choices), answer=answer, explanation=_text(raw, "explanation", where),
        multiple=multiple, topic=topic, section=_text(raw, "section", where, required=False),
        source=str(source),
    )


def load_bank(name) -> Bank:
    """Load and validate one bank: ``2``, ``"part2"``, ``"practice"`` or a path to a YAML file.

    Raises ``BankError`` naming the file and the question id at the first problem.
    """
    import yaml

    path = _bank_path(name)
    if not path.is_file():
        raise BankError(f"{path}: no such quiz bank")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        from labkit.config import yaml_error

        raise BankError(yaml_error(path, exc)) from None
    if not isinstance(raw, dict) or set(raw) - {"part", "title", "questions"}:
        raise BankError(f"{path}: expected top-level keys part, title, questions")
    try:
        part = _part_key(raw.get("part"))
    except ValueError as exc:
        raise BankError(f"{path}: {exc}") from None
    title = _text(raw, "title", str(path))
    items = raw.get("questions")
    if not isinstance(items, list) or not items:
        raise BankError(f"{path}: 'questions' must be a non-empty list")
    questions = [_parse_question(q, i, part, path) for i, q in enumerate(items)]
    seen: set[str] = set()
    for q in questions:
        if q.id in seen:
            raise BankError(f"{path}: question {q.id!r}: id used twice")
        seen.add(q.id)
    return Bank(part=part, title=title, questions=tuple(questions), path=path)


def load_all(folder: Path | None = None) -> dict[str, Bank]:
    """Every bank in the folder, keyed by part; ids must be unique across banks."""
    folder = Path(folder) if folder else banks_dir()
    banks: dict[str, Bank] = {}
    owner: dict[str, Path] = {}
    for path in sorted(folder.glob("*.yaml")):
        bank = load_bank(path)
        if bank.part in banks:
            raise BankError(f"{path}: part {bank.part!r} already comes from {banks[bank.part].path}")
        for q in bank.questions:
            if q.id in owner:
                raise BankError(f"{path}: question {q.id!r}: id also used in {owner[q.id]}")
            owner[q.id] = path
        banks[bank.part] = bank
    return dict(sorted(banks.items(), key=lambda kv: PARTS.index(kv[0])))


def get_question(question_id: str) -> Question:
    """Find a question by id; its prefix (p2-, practice-) says which bank holds it."""
    part = "practice" if question_id.startswith("practice-") else question_id[1:].split("-", 1)[0]
    try:
        bank = load_bank(part)
    except ValueError:
        raise KeyError(f"no quiz question {question_id!r}: ids look like p2-... or practice-...") from None
    for q in bank.questions:
        if q.id == question_id:
            return q
    raise KeyError(f"no quiz question {question_id!r} in {bank.path}")


def select(part, kind: str | None = None, topic: str | None = None) -> list[Question]:
    """The questions of one part, optionally only one kind and/or topic."""
    questions = [q for q in load_bank(part).questions
                 if (kind is None or q.kind == kind) and (topic is None or q.topic == topic)]
    if not questions:
        raise ValueError(f"part {part}: no questions with kind={kind!r} topic={topic!r}")
    return questions


# ---------------------------------------------------------------------------------------------
# Grading


def grade(question: Question, selected: str | Iterable[str]) -> Grade:
    """Grade one attempt. ``selected`` is a letter or letters ("B", ["A", "C"]), any case.

    A multi-answer question is right only when exactly the correct set is ticked.
    """
    picks = [selected] if isinstance(selected, str) else list(selected)
    letters = tuple(sorted({str(p).strip().upper() for p in picks}))
    if not letters:
        raise ValueError(f"{question.id}: pick at least one choice")
    valid = LETTERS[: len(question.choices)]
    unknown = [x for x in letters if x not in valid]
    if unknown:
        raise ValueError(f"{question.id}: no choice {', '.join(unknown)} (choices are {', '.join(valid)})")
    if not question.multiple and len(letters) > 1:
        raise ValueError(f"{question.id}: pick one choice, not {len(letters)}")
    chosen = set(letters)
    return Grade(
        question_id=question.id,
        selected=letters,
        correct=chosen == question.answer,
        wrong_picks=tuple(sorted(chosen - question.answer)),
        missed=tuple(sorted(question.answer - chosen)),
    )


def feedback(question: Question, result: Grade) -> tuple[str, list[str]]:
    """A headline and paragraphs of plain-text feedback for one attempt.

    A wrong attempt explains each wrong pick but does not reveal the answer, so that trying again
    is still worth something; the explanation comes with the right answer.
    """
    if result.correct:
        lines = [f"{x}: {question.choice(x).feedback}" for x in result.selected]
        return "Correct.", lines + [question.explanation]
    lines = [f"{x}: {question.choice(x).feedback}" for x in result.wrong_picks]
    if result.missed and not result.wrong_picks:
        lines.append("Everything you ticked is right, but at least one more choice belongs.")
    elif result.missed and question.multiple:
        lines.append("At least one right choice is also still unticked.")
    return "Not quite. Try again.", lines


# ---------------------------------------------------------------------------------------------
# Static rendering (GitHub, nbviewer, no kernel)


def choices_plain(question: Question) -> str:
    """The question and its choices as plain text, without the answer."""
    lines = [question.heading, "", question.prompt, ""]
    if question.multiple:
        lines.append("(Tick every choice that applies.)")
    lines += [f"{c.letter}. {c.text}" for c in question.choices]
    return "\n".join(lines)


def _md_escape(text: str) -> str:
    # Bank text is prose; escaping keeps a stray "<" or "*" from turning into markup.
    return html.escape(text, quote=False).replace("*", r"\*").replace("_", r"\_")


def to_markdown(question: Question) -> str:
    """The question as Markdown, with the answer and every choice's feedback in a closed
    ``<details>`` block: readable on GitHub or nbviewer without a kernel, and not a spoiler."""
    out = [f"**{_md_escape(question.heading)}**", ""]
    out += [_md_escape(p.strip()) for p in question.prompt.split("\n\n")]
    out.append("")
    if question.multiple:
        out += ["*Tick every choice that applies.*", ""]
    out += [f"- **{c.letter}.** {_md_escape(c.text)}" for c in question.choices]
    answer = ", ".join(sorted(question.answer))
    out += ["", "<details>", "<summary>Show the answer</summary>", "",
            f"**Answer: {answer}.** {_md_escape(question.explanation)}", ""]
    out += [f"- **{c.letter}** ({'right' if c.correct else 'wrong'}): {_md_escape(c.feedback)}"
            for c in question.choices]
    if question.section:
        out += ["", f"Revisit: {_md_escape(question.section)}"]
    out += ["", "</details>"]
    return "\n".join(out)
