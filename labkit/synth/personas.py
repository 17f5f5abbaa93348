"""Personas: who is asking, so the same fact comes out as differently worded questions.

The first of the article's five rules: vary the persona in the teacher's prompt. A pharmacist,
a nurse, a patient and a new resident ask about the same interaction in different words, and a
student trained on all of them is not tied to one way of asking. The list is plain data; add your
own :class:`Persona` (a name and one sentence that sets the voice).

``NEUTRAL`` is the "persona off" arm: one plain voice for every question.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Persona:
    name: str
    voice: str  # the system prompt of the question writer


PERSONAS: tuple[Persona, ...] = (
    Persona("pharmacist", "You are a hospital pharmacist checking a prescription. You ask short, precise questions."),
    Persona("nurse", "You are a ward nurse about to give a patient their medicines. You ask practical questions."),
    Persona("patient", "You are a patient who was just given a new medicine. You ask simple, worried questions."),
    Persona("new resident", "You are a junior doctor in your first week. You ask questions to check what you learnt."),
)
NEUTRAL = Persona("neutral", "You are a helpful assistant.")

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
