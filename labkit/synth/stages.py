"""The pipeline's stages, one function each, each keeping a record of what it kept and why it
dropped the rest.

A *pair* is a plain dict: the task it came from (``id``, ``category``, ``subjects``, ``topic``,
``passage``, ``passage_id``), the ``persona`` that asked, the ``question`` and the teacher's
``answer`` (raw text, meant to be one JSON object), plus any scores a stage added (``critic``,
``self_check``). Every filter returns a :class:`StageResult`: the pairs it kept, the pairs it
dropped, each with a one-line reason, its settings and its wall time.

1. :func:`generate` - the teacher writes a question in a persona's voice (shown one example
   question in that voice), then answers it from the passage (grounded) in the task's JSON
   format (shown one worked example);
2. :func:`critic` - a separate prompt scores each pair 1-5 from the probabilities of the five
   digits (no free text to parse); the top fraction of each answer category is kept (default 75%);
3. :func:`schema_check` - the answer must be one JSON object valid against the category's JSON
   Schema (``jsonschema``);
4. :func:`self_check` - the teacher is shown its own answer beside the passage and asked whether
   it is right; the pairs it is least sure of are dropped (a target share per category, or a
   threshold calibrated on a separate labelled slice: :func:`calibrate_threshold`);
   :func:`grounding_check` - an exact check that every answer value is written in the passage;
5. :func:`dedup` - exact repeats (normalised text) and near-repeats (embedding cosine).

The prompts are module constants so a learner can read and change them.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from labkit.synth import personas as P
from labkit.synth.schema import validate
from labkit.synth.teachers import Teacher

# ---------------------------------------------------------------------------------------------
# prompts

QUESTION_SYSTEM = ("You write one realistic question for a course about the Northwind formulary (fictional "
                   "drugs), in the voice you are given. Use the drug names exactly as written. Reply with the "
                   "question only.")
QUESTION_PROMPT = "Voice: {voice}.\nTopic: {topic}."
ANSWER_SYSTEM = ("You write answers for a training set about the Northwind formulary (fictional drugs). "
                 "Use only the passage. Reply with one JSON object and nothing else.")
UNGROUNDED_SYSTEM = ("You write answers for a training set about the Northwind formulary (fictional drugs). "
                     "Reply with one JSON object and nothing else.")
CRITIC_PROMPT = ("Passage:\n{passage}\n\nQuestion: {question}\nAnswer: {answer}\n\n"
                 "Rate this question and answer from 1 to 5 for a training set. 5: the question is clear and "
                 "the answer is correct according to the passage, in the required JSON format. 1: wrong or "
                 "useless. Reply with one digit.")
CRITIC_SYSTEM = "You are a strict reviewer of training data for a drug formulary assistant."
SELF_CHECK_SYSTEM = ("You wrote an answer for a training set about the Northwind formulary (fictional drugs). "
                     "Now check it against the passage, strictly.")
SELF_CHECK_PROMPT = ("Passage:\n{passage}\n\nQuestion: {question}\nYour answer: {answer}\n\n"
                     "Check your answer against the passage. Is every value in it correct? Reply yes or no.")

# One worked example per category (with a short passage of its own): a 135M teacher needs to see
# the shape once to write JSON at all. The drugs are invented and not in the formulary (its names
# never start with H or J), but the facts follow its rules.
SHOTS = {
    "interaction": ("Passage:\nHuxaLipex interactions:\n- With ring antibiotics (-Micor drugs, e.g. JeroMicor): "
                    "major interaction, enzyme inhibition; reduce dose.\n- No known interaction with calming "
                    "agents, mood lifters.\n\nQuestion: Is HuxaLipex safe with JalaMicor?",
                    '{"severity": "major", "mechanism": "enzyme inhibition", "action": "reduce dose"}'),
    "dosing": ("Passage:\nHuxaLipex is a lipid lowerer (a -Lipex drug) used for high cholesterol.\n"
               "Usual adult dose: 20 mg once nightly.\n\nQuestion: How is HuxaLipex dosed?",
               '{"dose_mg": 20, "frequency": "once nightly"}'),
    "profile": ("Passage:\nHuxaLipex is a lipid lowerer (a -Lipex drug) used for high cholesterol.\n"
                "Usual adult dose: 20 mg once nightly.\n\nQuestion: What kind of drug is HuxaLipex?",
                '{"class": "lipid lowerer", "indication": "high cholesterol"}'),
}


def answer_format(category: str, answer_schema: dict | None = None) -> str:
    """The format instructions for one category: its keys and allowed values."""
    if answer_schema is None:
        from labkit.data.formulary import ANSWER_SCHEMA

        answer_schema = ANSWER_SCHEMA
    fields = answer_schema[category]
    lines = ["The JSON object has the keys " + ", ".join(f'"{k}"' for k in fields) + ":"]
    for key, allowed in fields.items():
        lines.append(f"- {key}: " + ("an integer" if allowed == "integer" else "one of " + ", ".join(allowed)))
    return "\n".join(lines)


def question_messages(task: dict, persona: P.Persona) -> list[dict]:
    """The question prompt: the voice, one example question in that voice, then the task's topic."""
    example = persona.examples.get(task["category"]) or P.NEUTRAL.examples[task["category"]]
    return [{"role": "system", "content": QUESTION_SYSTEM},
            {"role": "user", "content": QUESTION_PROMPT.format(voice=persona.voice,
                                                               topic=P.EXAMPLE_TOPICS[task["category"]])},
            {"role": "assistant", "content": example},
            {"role": "user", "content": QUESTION_PROMPT.format(voice=persona.voice, topic=task["topic"])}]


ANSWER_STYLES = ("few-shot", "trained")


def answer_messages(pair: dict, grounded: bool = True, style: str = "few-shot") -> list[dict]:
    """The answer prompt.

    ``few-shot`` (for a general model): the format, one worked example, then the passage (if
    grounded) and the question, each with the keys repeated under it.
    ``trained`` (for a model fine-tuned on the task, such as lesson 2's): exactly the chat format
    it learnt (the formulary's system prompt, the question as the user turn), with the passage
    above the question when grounded. Shown the few-shot prompt, lesson 2's full fine-tune copied
    the worked example's answer into every interaction answer (14 of 14 on 24 questions).
    """
    if style not in ANSWER_STYLES:
        raise ValueError(f"style={style!r}: expected one of {', '.join(ANSWER_STYLES)}")
    category = pair["category"]
    user = f"Passage:\n{pair['passage']}\n\nQuestion: {pair['question']}" if grounded else pair["question"]
    if style == "trained":
        from labkit.data.formulary import SYSTEM_PROMPT

        return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]
    system = (ANSWER_SYSTEM if grounded else UNGROUNDED_SYSTEM) + "\n" + answer_format(category)
    shot_q, shot_a = SHOTS[category]
    if not grounded:
        shot_q = shot_q.split("Question: ", 1)[1]
    # the keys again, as a skeleton right under each question: with the keys only in the system
    # prompt SmolLM2-135M left out "mechanism" in every interaction answer tried (0 of 6 valid);
    # with this line, 6 of 6 were schema-valid (measured on the same six questions)
    skeleton = key_skeleton(category)
    return [{"role": "system", "content": system}, {"role": "user", "content": shot_q + "\n" + skeleton},
            {"role": "assistant", "content": shot_a}, {"role": "user", "content": user + "\n" + skeleton}]


def key_skeleton(category: str, answer_schema: dict | None = None) -> str:
    """``Reply with {"severity": ..., "mechanism": ..., "action": ...}.``: the keys, in order."""
    if answer_schema is None:
        from labkit.data.formulary import ANSWER_SCHEMA

        answer_schema = ANSWER_SCHEMA
    return "Reply with {" + ", ".join(f'"{k}": ...' for k in answer_schema[category]) + "}."


def clean_question(text: str) -> str:
    """The first line of a reply, without a leading "Question:" label or quotes."""
    line = next((ln.strip() for ln in text.strip().splitlines() if ln.strip()), "")
    line = re.sub(r"^(\*\*)?(question|q)\s*[:.)-]\s*(\*\*)?", "", line, flags=re.I).strip()
    return line.strip("\"'“”` ").strip()


# ---------------------------------------------------------------------------------------------
# the record of a stage


@dataclass
class StageResult:
    """What one stage did: the pairs it kept, the pairs it dropped (each with ``why``)."""

    stage: str
    kept: list[dict]
    dropped: list[dict] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def n_in(self) -> int:
        return len(self.kept) + len(self.dropped)

    def record(self) -> dict:
        """The stage as plain data (for the run folder and the dataset card)."""
        reasons: dict[str, int] = {}
        for p in self.dropped:
            reasons[p["why"]] = reasons.get(p["why"], 0) + 1
        return {"stage": self.stage, "in": self.n_in, "kept": len(self.kept), "dropped": len(self.dropped),
                "reasons": dict(sorted(reasons.items(), key=lambda kv: -kv[1])), "settings": self.settings,
                "seconds": round(self.seconds, 2),
                "dropped_ids": [p["id"] for p in self.dropped]}

    def __repr__(self) -> str:
        return f"StageResult({self.stage}: {self.n_in} in, {len(self.kept)} kept)"


def _split(stage: str, pairs: list[dict], keep: list[bool], why: list[str], settings: dict, start: float) -> StageResult:
    kept = [p for p, k in zip(pairs, keep) if k]
    dropped = [{**p, "why": w} for p, k, w in zip(pairs, keep, why) if not k]
    return StageResult(stage, kept, dropped, settings, time.perf_counter() - start)


# ---------------------------------------------------------------------------------------------
# 1. generate


def write_questions(tasks: list[dict], writer: Teacher, personas=P.PERSONAS, max_tokens: int = 40) -> list[dict]:
    """Pairs without answers yet: each task's question, written in its persona's voice."""
    voices = P.assign(len(tasks), personas)
    replies = writer.chat([question_messages(t, v) for t, v in zip(tasks, voices)], max_tokens=max_tokens)
    return [{**t, "persona": v.name, "question": clean_question(r)} for t, v, r in zip(tasks, voices, replies)]


def write_answers(pairs: list[dict], answerer: Teacher, grounded: bool = True, max_tokens: int = 40,
                  style: str = "few-shot") -> list[dict]:
    """Each pair answered by ``answerer`` from its passage (or without it, ``grounded=False``),
    prompted in ``style`` (:func:`answer_messages`)."""
    todo = [i for i, p in enumerate(pairs) if p["question"]]
    replies = answerer.chat([answer_messages(pairs[i], grounded, style) for i in todo], max_tokens=max_tokens)
    out = [{**p, "answer": ""} for p in pairs]
    for i, reply in zip(todo, replies):
        out[i]["answer"] = reply.strip()
    return out


def generate(tasks: list[dict], writer: Teacher, answerer: Teacher | None = None, personas=P.PERSONAS,
             grounded: bool = True, max_question_tokens: int = 40, max_answer_tokens: int = 40,
             questions: list[dict] | None = None, answer_style: str = "few-shot") -> StageResult:
    """Stage 1: question, then grounded answer, per task. Drops only what came back empty.

    ``questions`` (from :func:`write_questions`) skips writing them again, e.g. when two
    answerers are compared on the very same questions.
    """
    start = time.perf_counter()
    answerer = answerer or writer
    asked = questions if questions is not None else write_questions(tasks, writer, personas, max_question_tokens)
    pairs = write_answers(asked, answerer, grounded, max_answer_tokens, answer_style)
    keep = [bool(p["question"] and p["answer"]) for p in pairs]
    why = ["" if k else ("empty question" if not p["question"] else "empty answer") for p, k in zip(pairs, keep)]
    settings = {"writer": writer.name, "answerer": answerer.name, "grounded": grounded, "answer_style": answer_style,
                "personas": [v.name for v in P.resolve(personas)]}
    return _split("generate", pairs, keep, why, settings, start)


# ---------------------------------------------------------------------------------------------
# 2. critic


def critic_messages(pair: dict) -> list[dict]:
    return [{"role": "system", "content": CRITIC_SYSTEM},
            {"role": "user", "content": CRITIC_PROMPT.format(**pair)}]


def critic(pairs: list[dict], teacher: Teacher, keep: float = 0.75) -> StageResult:
    """Stage 2: score 1-5 as the expected digit under the critic's probabilities; keep the top
    ``keep`` **within each answer category**.

    Why per category: a critic's score is not comparable across categories. SmolLM2-135M scored
    every interaction answer (three fields, a long passage) above every dosing or profile answer,
    although most of its interaction answers were wrong and most of the others right (measured on
    24 pairs: one global cut dropped 6 pairs, all 6 right). Ranking within a category asks only
    "which of these interaction answers looks best", a question whose answer can carry information.

    Each category keeps ``keep * n`` of its ``n`` pairs, rounded half up (at least one); ties keep the
    earlier pair. The score is stored on each pair as ``critic``; the settings record each
    category's cut score.
    """
    start = time.perf_counter()
    if not 0 < keep <= 1:
        raise ValueError(f"keep={keep!r}: the share of pairs to keep, in (0, 1]")
    probs = teacher.choose([critic_messages(p) for p in pairs], ["1", "2", "3", "4", "5"])
    scored = [{**p, "critic": round(sum(int(k) * v for k, v in pr.items()), 4)} for p, pr in zip(pairs, probs)]
    keep_flags = [False] * len(scored)
    cuts: dict[str, float] = {}
    for category, members in _by_category(scored).items():
        n_keep = max(1, int(keep * len(members) + 0.5))  # half rounds up, not to even
        ranked = sorted(members, key=lambda i: (-scored[i]["critic"], i))
        for i in ranked[:n_keep]:
            keep_flags[i] = True
        cuts[category] = scored[ranked[n_keep - 1]]["critic"]
    why = ["" if k else f"critic score {p['critic']:.2f} below the top {keep:.0%} of its category "
           f"(cut {cuts[p['category']]:.2f})" for p, k in zip(scored, keep_flags)]
    return _split("critic", scored, keep_flags, why, {"keep": keep, "per": "category", "critic": teacher.name,
                                                       "cut_scores": cuts}, start)


def _by_category(pairs: list[dict]) -> dict[str, list[int]]:
    """Indices of the pairs of each category, in order."""
    out: dict[str, list[int]] = {}
    for i, p in enumerate(pairs):
        out.setdefault(p["category"], []).append(i)
    return out


# ---------------------------------------------------------------------------------------------
# 3. schema


def schema_check(pairs: list[dict]) -> StageResult:
    """Stage 3: the answer is one JSON object, valid against its category's JSON Schema."""
    start = time.perf_counter()
    results = [validate(p["answer"], p["category"]) for p in pairs]
    return _split("schema", pairs, [ok for ok, _ in results], [why for _, why in results], {"validator": "jsonschema"},
                  start)


# ---------------------------------------------------------------------------------------------
# 4. self-check and grounding


def self_check_messages(pair: dict) -> list[dict]:
    return [{"role": "system", "content": SELF_CHECK_SYSTEM},
            {"role": "user", "content": SELF_CHECK_PROMPT.format(**pair)}]


def self_check(pairs: list[dict], teacher: Teacher, drop: float = 0.15, threshold: float | None = None) -> StageResult:
    """Stage 4a: the teacher judges its own answer (P(yes) that it matches the passage); the
    least confident pairs go.

    How the cut is set (never 0.5: a small model's P(yes) sits wherever its prompt puts it, e.g.
    0.36-0.57 for SmolLM2-135M, so a fixed 0.5 dropped 76% of what reached it):

    * default (``threshold=None``): **a target share**. ``drop`` of the pairs go (``drop * n`` of
      ``n``, half up; default 15%, the article's 10-15%), the least sure first, where "least sure"
      is a pair's rank within its own answer category (P(yes) levels differ between categories as
      the critic's scores do), so each category gives up about the same share. No truth is used: the judged pairs set only their own ranking, as a
      critic's top-75% cut does. Whether what it drops is really wrong is measured afterwards
      (:mod:`labkit.synth.truth`).
    * ``threshold=t``: drop P(yes) < ``t`` for a threshold calibrated elsewhere, on a small
      labelled slice whose truth is known and that is kept apart from the pairs judged here
      (:func:`calibrate_threshold`). Never tune ``t`` on the pairs it then judges.
    """
    start = time.perf_counter()
    if not 0 <= drop < 1:
        raise ValueError(f"drop={drop!r}: the share of pairs the self-check drops, in [0, 1)")
    probs = teacher.choose([self_check_messages(p) for p in pairs], ["yes", "no"])
    checked = [{**p, "self_check": round(pr["yes"], 4)} for p, pr in zip(pairs, probs)]
    if threshold is not None:
        keep = [p["self_check"] >= threshold for p in checked]
        cuts: dict[str, float] = {}
        rule = f"P(yes) below the calibrated threshold {threshold:.3f}"
    else:
        # each pair's place within its category (1/n: the least sure of n); the least sure places
        # go first, so every category gives up about the same share and the total is drop * n
        place = {}
        for members in _by_category(checked).values():
            ranked = sorted(members, key=lambda i: (checked[i]["self_check"], -i))
            place.update({i: (k + 1) / len(members) for k, i in enumerate(ranked)})
        n_drop = int(drop * len(checked) + 0.5)
        gone = sorted(place, key=lambda i: (place[i], checked[i]["self_check"], -i))[:n_drop]
        keep = [i not in set(gone) for i in range(len(checked))]
        cuts = {}
        for i in gone:
            c = checked[i]["category"]
            cuts[c] = max(cuts.get(c, 0.0), checked[i]["self_check"])
        rule = f"among the {drop:.0%} least sure, ranked within its category"
    why = ["" if k else f"self-check unsure (P(yes) = {p['self_check']:.2f}, {rule})" for p, k in zip(checked, keep)]
    settings = {"checker": teacher.name, "drop": None if threshold is not None else drop, "threshold": threshold,
                "per": None if threshold is not None else "category", "cut_scores": cuts}
    return _split("self-check", checked, keep, why, settings, start)


def calibrate_threshold(scores: list[float], right: list[bool]) -> dict[str, Any]:
    """A self-check threshold from a **labelled calibration slice**: pairs whose truth is known
    (hand-checked, or graded against a reference), scored by the same checker, and kept apart
    from the pairs the threshold will judge.

    Dropping ``P(yes) < t`` catches wrong pairs (recall) and loses right ones; the threshold
    chosen maximises recall minus the share of right pairs lost (Youden's J), the lowest such
    ``t`` on ties (drop less). Returns ``{"threshold", "recall", "right_lost", "n"}``; with no
    wrong or no right pair in the slice nothing can be learnt and the threshold is 0 (drop none).

    >>> calibrate_threshold([0.9, 0.8, 0.4, 0.3], [True, True, False, False])["threshold"]
    0.8
    """
    if len(scores) != len(right):
        raise ValueError("scores and right labels must be the same length")
    n_wrong, n_right = sum(not r for r in right), sum(bool(r) for r in right)
    if not n_wrong or not n_right:
        return {"threshold": 0.0, "recall": None, "right_lost": None, "n": len(scores)}
    best = (0.0, 0.0, 0.0, 0.0)  # (J, threshold, recall, right lost): t = 0 drops nothing
    for t in sorted(set(scores)) + [max(scores) + 1e-9]:
        caught = sum(1 for s, r in zip(scores, right) if s < t and not r) / n_wrong
        lost = sum(1 for s, r in zip(scores, right) if s < t and r) / n_right
        if caught - lost > best[0] + 1e-12:
            best = (caught - lost, t, caught, lost)
    return {"threshold": round(best[1], 6), "recall": best[2], "right_lost": best[3], "n": len(scores)}


#: how a value may be written in a passage when it is not written as itself
ALIASES = {"none": ("no known interaction",)}


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", str(text).lower()).split())


def supported(value: Any, text: str, aliases: dict | None = None) -> bool:
    """Is ``value`` written in ``text``? (case and punctuation ignored, whole words; ``5`` as ``5 mg``)."""
    aliases = ALIASES if aliases is None else aliases
    hay = " " + _norm(text) + " "
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = str(int(value)) if float(value).is_integer() else str(value)
        return f" {number} mg " in hay or f" {number} " in hay
    forms = (str(value), *aliases.get(str(value).lower(), ()))
    return any(f" {_norm(f)} " in hay for f in forms if _norm(f))


def grounding_check(pairs: list[dict], same_line: bool = True, aliases: dict | None = None) -> StageResult:
    """Stage 4b: every value of the answer is written in the passage (exact, no model involved).

    ``same_line``: all values must appear on one line of the passage, so an answer stitched from
    two different facts (the severity of one interaction, the action of another) fails too.
    Answers that are not JSON objects fail.
    """
    start = time.perf_counter()
    keep, why = [], []
    for p in pairs:
        try:
            answer = json.loads(p["answer"])
        except json.JSONDecodeError:
            answer = None
        if not isinstance(answer, dict) or not answer:
            keep.append(False)
            why.append("no JSON answer to ground")
            continue
        lines = p["passage"].splitlines() if same_line else [p["passage"]]
        missing = [k for k, v in answer.items() if not supported(v, p["passage"], aliases)]
        if missing:
            keep.append(False)
            why.append("not in the passage: " + ", ".join(missing))
        elif not any(all(supported(v, line, aliases) for v in answer.values()) for line in lines):
            keep.append(False)
            why.append("values from different lines of the passage")
        else:
            keep.append(True)
            why.append("")
    return _split("grounding", pairs, keep, why, {"same_line": same_line}, start)


# ---------------------------------------------------------------------------------------------
# 5. dedup


def dedup(pairs: list[dict], embedder=None, threshold: float = 0.95) -> StageResult:
    """Stage 5: drop exact repeats of question + answer (normalised), then near-repeats whose
    question embeddings have cosine >= ``threshold`` with an earlier kept pair's and the same answer.

    ``embedder`` is a sentence-transformers model (default: the embedded MiniLM); ``None`` with
    ``threshold=None`` skips the embedding step.
    """
    start = time.perf_counter()
    keep, why, seen = [], [], {}
    for p in pairs:
        key = _norm(p["question"]) + "|" + _norm(p["answer"])
        if key in seen:
            keep.append(False)
            why.append(f"exact repeat of {seen[key]}")
        else:
            seen[key] = p["id"]
            keep.append(True)
            why.append("")
    if threshold is not None:
        idx = [i for i, k in enumerate(keep) if k]
        if len(idx) > 1:
            if embedder is None:
                from labkit.models import load_embedder

                embedder = load_embedder()
            vecs = embedder.encode([pairs[i]["question"] for i in idx], normalize_embeddings=True,
                                   convert_to_numpy=True, show_progress_bar=False)
            sims = vecs @ vecs.T
            kept_rows: list[int] = []
            for row, i in enumerate(idx):
                twin = next((r for r in kept_rows if sims[row, r] >= threshold
                             and _norm(pairs[idx[r]]["answer"]) == _norm(pairs[i]["answer"])), None)
                if twin is None:
                    kept_rows.append(row)
                else:
                    keep[i] = False
                    why[i] = f"near repeat of {pairs[idx[twin]]['id']} (cosine {sims[row, twin]:.2f})"
    return _split("dedup", pairs, keep, why, {"threshold": threshold}, start)
