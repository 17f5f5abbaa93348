"""Personas: who is asking, so the same fact comes out as differently worded questions.

The first of the article's five rules: vary the persona in the teacher's prompt. A pharmacist,
a nurse, a patient and a new resident ask about the same interaction in different words, and a
student trained on all of them is not tied to one way of asking.

A persona here is a voice (a few words naming who asks) and one example question per answer
category, in that voice. The examples matter for a small teacher: SmolLM2-135M told only "you are
a nurse" *plays* the nurse and answers instead of asking (measured: most of its questions came
out as "I'm sorry for the confusion..." or "What a delightful question!"). Shown one question in
the voice, it writes another. The examples use invented drug names that are not in the formulary
(its names never start with H or J), so no formulary fact leaks through them.

``NEUTRAL`` is the "persona off" arm: one plain voice with plain examples. Add your own
:class:`Persona` for your own domain.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: the topic of each example question (the same invented drugs for every persona)
EXAMPLE_TOPICS = {
    "interaction": "whether HuxaLipex and JeroMicor interact",
    "dosing": "the usual adult dose of HuxaLipex",
    "profile": "what kind of drug HuxaLipex is and what it is used for",
}


@dataclass(frozen=True)
class Persona:
    name: str
    voice: str                                              # who asks, in a few words
    examples: dict[str, str] = field(default_factory=dict)  # category -> an example question in this voice


PERSONAS: tuple[Persona, ...] = (
    Persona("pharmacist", "a hospital pharmacist checking a prescription", {
        "interaction": "Is there a clinically relevant interaction between HuxaLipex and JeroMicor?",
        "dosing": "What is the standard adult dose and frequency for HuxaLipex?",
        "profile": "Which class does HuxaLipex belong to, and what is its indication?"}),
    Persona("nurse", "a ward nurse about to give a patient their medicines", {
        "interaction": "My patient takes HuxaLipex and was just started on JeroMicor. Is that combination okay?",
        "dosing": "Before I give HuxaLipex, how much is the usual adult dose?",
        "profile": "A patient was admitted on HuxaLipex. What kind of drug is it and why would they take it?"}),
    # "a patient who was just given a new medicine" with "I already take HuxaLipex. Can I also take
    # the JeroMicor my doctor gave me?" made SmolLM2-135M apologise instead of asking in 10 of 10
    # interaction questions ("I'm sorry for the confusion. X and Y are both ..."); this voice and
    # example gave 10 of 10 real questions naming both drugs (same ten topics)
    Persona("patient", "a patient asking their pharmacist about their own medicines", {
        "interaction": "Can I take HuxaLipex and JeroMicor together?",
        "dosing": "How much HuxaLipex should I take, and how often?",
        "profile": "What is HuxaLipex for? What kind of medicine is it?"}),
    Persona("new resident", "a junior doctor in their first week", {
        "interaction": "Quick check before I prescribe: do HuxaLipex and JeroMicor interact?",
        "dosing": "What dose of HuxaLipex should I write up for an adult?",
        "profile": "Remind me, HuxaLipex is in which drug class, and it treats what?"}),
)
NEUTRAL = Persona("neutral", "someone asking about a medicine", {
    "interaction": "Do HuxaLipex and JeroMicor interact?",
    "dosing": "What is the usual adult dose of HuxaLipex?",
    "profile": "What kind of drug is HuxaLipex and what is it used for?"})

_BY_NAME = {p.name: p for p in (*PERSONAS, NEUTRAL)}


def get(name: str) -> Persona:
    """A persona by name (one of :data:`PERSONAS`, or ``neutral``)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown persona {name!r}; known: {', '.join(_BY_NAME)} "
                       "(or pass your own Persona objects)") from None


def resolve(personas) -> tuple[Persona, ...]:
    """Names or :class:`Persona` objects -> personas (an empty list means persona off)."""
    out = tuple(get(p) if isinstance(p, str) else p for p in personas)
    return out or (NEUTRAL,)


def assign(n: int, personas) -> list[Persona]:
    """Persona ``i % len(personas)`` for task ``i``: an even spread, the same every run."""
    personas = resolve(personas)
    return [personas[i % len(personas)] for i in range(n)]
