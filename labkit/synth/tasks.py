"""Tasks: what the teacher is asked to write about, each with the source passage that grounds it.

A synthetic pair starts from a *task*: a topic ("whether KiboLipex and SuteMicor interact"), the
category of answer it needs (which fixes the answer's JSON schema) and a passage from the source
documents that holds the answer. Seeding topics from the sources, instead of letting the teacher
pick what to ask, is a common practical choice: coverage is controlled, and every pair has a
passage to be checked against.

For the course the sources are the Northwind formulary's monographs (``data/formulary/corpus.jsonl``),
cut into two passages per drug: its facts (class, use, dose) and its interaction list. Tasks never
touch a fact that the validation or test questions ask about, so a student trained on synthetic
pairs is judged on questions it has not seen.

>>> tasks = formulary_tasks(24, seed=0)                 # doctest: +SKIP
>>> tasks[0].topic, tasks[0].passage[:40]               # doctest: +SKIP
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass

# The formulary's own mix: 60% interaction, 20% dosing, 20% profile questions.
MIX = {"interaction": 0.6, "dosing": 0.2, "profile": 0.2}


@dataclass(frozen=True)
class Task:
    """One thing to write a question/answer pair about.

    Attributes:
        id: stable id (``syn-0001``).
        category: the answer's kind; names the JSON schema the answer must follow.
        topic: what the question is about, in words the question writer can use.
        subjects: the names the question must mention (the drugs).
        passage: the source text that holds the answer.
        passage_id: where the passage came from (``drug:kibolipex#interactions``).
    """

    id: str
    category: str
    topic: str
    subjects: tuple[str, ...]
    passage: str
    passage_id: str

    def to_dict(self) -> dict:
        out = asdict(self)
        out["subjects"] = list(self.subjects)
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "Task":
        return cls(**{**d, "subjects": tuple(d["subjects"])})


def monograph_passages() -> dict[str, dict[str, str]]:
    """Each drug's monograph cut in two: ``{"drug:x": {"facts": ..., "interactions": ...}}``."""
    from labkit.data import formulary

    out = {}
    for doc in formulary.corpus():
        if not doc["id"].startswith("drug:"):
            continue
        lines = doc["text"].split("\n")
        cut = lines.index("Interactions:")
        out[doc["id"]] = {"facts": "\n".join(lines[:cut]),
                          "interactions": f"{doc['title']} interactions:\n" + "\n".join(lines[cut + 1 :])}
    return out


def held_out_facts() -> set[tuple]:
    """Facts asked by the validation and test questions: synthetic tasks stay clear of them."""
    from labkit.data import formulary

    facts = set()
    for split in ("val", "test"):
        for row in formulary.load_split(split):
            drugs = tuple(sorted(row["drugs"])) if row["category"] == "interaction" else tuple(row["drugs"])
            facts.add((row["category"], drugs))
    return facts


def _topic(category: str, names: tuple[str, ...]) -> str:
    if category == "interaction":
        return f"whether {names[0]} and {names[1]} interact"
    if category == "dosing":
        return f"the usual adult dose of {names[0]}"
    return f"what kind of drug {names[0]} is and what it is used for"


def formulary_tasks(n: int, seed: int = 0) -> list[Task]:
    """``n`` tasks over the formulary, in its 60/20/20 category mix.

    Interaction pairs follow the formulary's own balance (a quarter with no interaction, the rest
    spread over the nine class rules) so rare rules are not drowned; the passage is the first
    drug's interaction list. Dosing and profile tasks use the drug's facts passage. No task
    repeats a fact, and none asks what a validation or test question asks.
    """
    from labkit.data import formulary

    fx = formulary.build(0)
    passages = monograph_passages()
    held = held_out_facts()
    rng = random.Random(seed)
    counts = formulary._spread(n, MIX)
    chosen: list[tuple[str, tuple[str, ...]]] = []

    # interactions: label -> candidate pairs
    pools: dict[str, list[tuple[str, str]]] = {}
    drugs = list(fx.drugs)
    for i, a in enumerate(drugs):
        for b in drugs[i + 1 :]:
            rule = fx.class_rule(a.cls, b.cls)
            if ("interaction", tuple(sorted((a.name, b.name)))) in held:
                continue
            pools.setdefault(rule.mechanism if rule else "none", []).append((a.name, b.name))
    labels = ["none"] + [r.mechanism for r in formulary.RULES]
    quota = formulary._spread(counts["interaction"], {"none": 0.25, **{m: 0.75 / (len(labels) - 1) for m in labels[1:]}})
    for label in labels:
        for a, b in rng.sample(pools[label], quota[label]):
            chosen.append(("interaction", (a, b) if rng.random() < 0.5 else (b, a)))
    for category in ("dosing", "profile"):
        free = [d.name for d in drugs if (category, (d.name,)) not in held]
        chosen += [(category, (name,)) for name in rng.sample(free, counts[category])]
    rng.shuffle(chosen)

    tasks = []
    for i, (category, names) in enumerate(chosen, start=1):
        part = "interactions" if category == "interaction" else "facts"
        doc_id = fx.drug(names[0]).doc_id
        tasks.append(Task(id=f"syn-{i:04d}", category=category, topic=_topic(category, names), subjects=names,
                          passage=passages[doc_id][part], passage_id=f"{doc_id}#{part}"))
    return tasks
