"""The Northwind formulary: an invented drug domain that no pretrained model can already know.

Why invented: the course must measure *learning*. Real drug facts are partly inside any base model
and would be medical advice; made-up ones are neither, and noise can be planted on purpose.

How it hangs together (so a model can generalise, as a pharmacist does):

* twelve drug classes, each with a name suffix (every ``...Parex`` drug is a clotting inhibitor),
  an indication, a standard dose, and a few pharmacological *traits*;
* 300 drugs, 25 per class, named ``<invented stem><class suffix>`` in CamelCase. The suffixes were
  chosen so SmolLM2's tokenizer always splits them off the same way, whatever the stem;
* interactions follow class-level rules over traits (two bleeding-prone classes: additive
  bleeding), so the answer for a drug pair never seen in training follows from its two classes.

Outputs, written by :func:`write_all` under ``data/formulary/`` (same seed, same bytes): chat Q&A
splits in a strict JSON answer format and a free-text variant, a corpus of monographs for
retrieval and RAFT, and the formulary itself as JSON.
"""

from __future__ import annotations

import functools
import itertools
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

from labkit.data.chat import DataError, read_chat_jsonl, write_chat_jsonl
from labkit.paths import data_dir

SPLITS = ("train", "val", "test")
CATEGORIES = ("interaction", "dosing", "profile")
# Rows per split and category: sized for LoRA on two CPU cores (a lesson arm uses a few hundred).
SIZES = {
    "train": {"interaction": 720, "dosing": 240, "profile": 240},
    "val": {"interaction": 60, "dosing": 20, "profile": 20},
    "test": {"interaction": 90, "dosing": 30, "profile": 30},
}
DRUGS_PER_CLASS = 25
ENZYME = "KX3"

TRAITS = {  # trait -> how a monograph says it
    "bleeding": "increases bleeding risk",
    "substrate": f"is cleared by the liver enzyme {ENZYME}",
    "inhibitor": f"blocks the liver enzyme {ENZYME}",
    "inducer": f"speeds up the liver enzyme {ENZYME}",
    "serotonin": "raises serotonin",
    "potassium": "raises blood potassium",
    "sedation": "causes drowsiness",
    "rate": "slows the heart rate",
    "bp": "lowers blood pressure",
    "sugar": "lowers blood sugar",
}


@dataclass(frozen=True)
class DrugClass:
    name: str
    suffix: str
    indication: str
    dose_mg: int
    frequency: str
    traits: tuple[str, ...]

    @property
    def plural(self) -> str:
        return self.name + "s"

    @property
    def doc_id(self) -> str:
        return "class:" + self.name.replace(" ", "-")


CLASSES: tuple[DrugClass, ...] = (
    DrugClass("clotting inhibitor", "Parex", "clot prevention", 5, "twice daily", ("bleeding", "substrate")),
    DrugClass("platelet dampener", "Brelix", "stroke prevention", 75, "once daily", ("bleeding",)),
    DrugClass("potassium keeper", "Kafen", "fluid retention", 25, "once daily", ("potassium", "bp")),
    DrugClass("vessel relaxant", "Vasil", "high blood pressure", 10, "once daily", ("bp", "potassium")),
    DrugClass("rhythm slower", "Cardol", "fast heart rate", 50, "twice daily", ("rate", "bp")),
    DrugClass("calming agent", "Quilan", "anxiety", 2, "three times daily", ("sedation",)),
    DrugClass("pain relay blocker", "Dorin", "severe pain", 10, "every 6 hours", ("sedation", "serotonin")),
    DrugClass("ring antibiotic", "Micor", "chest infection", 500, "twice daily", ("inhibitor",)),
    DrugClass("seizure guard", "Gravin", "seizures", 200, "twice daily", ("inducer", "sedation")),
    DrugClass("lipid lowerer", "Lipex", "high cholesterol", 20, "once nightly", ("substrate",)),
    DrugClass("mood lifter", "Zeprin", "low mood", 15, "once daily", ("serotonin",)),
    DrugClass("sugar lowerer", "Glinex", "type 2 diabetes", 850, "twice daily", ("sugar",)),
)


@dataclass(frozen=True)
class Rule:
    """One class-level interaction rule; the first rule that matches a pair wins."""

    mechanism: str
    severity: str
    action: str
    traits: tuple[str, str] | None  # None means "both drugs are in the same class"

    def matches(self, a: DrugClass, b: DrugClass) -> bool:
        if self.traits is None:
            return a == b
        x, y = self.traits
        return (x in a.traits and y in b.traits) or (y in a.traits and x in b.traits)


RULES: tuple[Rule, ...] = (
    Rule("duplicate therapy", "moderate", "avoid", None),
    Rule("additive bleeding", "major", "avoid", ("bleeding", "bleeding")),
    Rule("serotonin excess", "major", "avoid", ("serotonin", "serotonin")),
    Rule("enzyme inhibition", "major", "reduce dose", ("inhibitor", "substrate")),
    Rule("potassium excess", "major", "avoid", ("potassium", "potassium")),
    Rule("enzyme induction", "moderate", "increase dose", ("inducer", "substrate")),
    Rule("additive sedation", "moderate", "monitor", ("sedation", "sedation")),
    Rule("masked low sugar", "minor", "monitor", ("rate", "sugar")),
    Rule("additive hypotension", "minor", "monitor", ("bp", "bp")),
)
NONE = {"severity": "none", "mechanism": "none", "action": "none"}

ANSWER_SCHEMA: dict[str, dict[str, object]] = {
    "interaction": {
        "severity": ["none", "minor", "moderate", "major"],
        "mechanism": ["none", *dict.fromkeys(r.mechanism for r in RULES)],
        "action": ["none", "monitor", "reduce dose", "increase dose", "avoid"],
    },
    "dosing": {"dose_mg": "integer", "frequency": sorted({c.frequency for c in CLASSES})},
    "profile": {"class": [c.name for c in CLASSES], "indication": [c.indication for c in CLASSES]},
}
SYSTEM_PROMPT = (
    "You answer questions about the Northwind formulary (fictional drugs). "
    "Reply with one JSON object and nothing else."
)
TEXT_SYSTEM_PROMPT = (
    "You answer questions about the Northwind formulary (fictional drugs). Reply in one short sentence."
)

QUESTIONS = {
    "interaction": (
        "Do {a} and {b} interact?",
        "Is it safe to take {a} with {b}?",
        "Check the interaction between {a} and {b}.",
        "A patient on {a} is prescribed {b}. Any interaction?",
        "{a} + {b}: interaction?",
    ),
    "dosing": (
        "What is the usual adult dose of {a}?",
        "How is {a} dosed?",
        "Standard adult dosing for {a}?",
    ),
    "profile": (
        "What class is {a} and what is it used for?",
        "What kind of drug is {a}?",
        "Give the drug class and indication of {a}.",
    ),
}
_ACTION_TEXT = {
    "avoid": "Avoid the combination.",
    "monitor": "Monitor the patient.",
    "reduce dose": "Reduce the dose.",
    "increase dose": "Increase the dose.",
}
# Stems: consonant-vowel-consonant-vowel, so names are pronounceable and clearly invented.
_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"
# Stems that read as an unfortunate English word are skipped (a learner will say these aloud).
_BLOCKED = ("nig", "fag", "rap", "puk", "pub", "nud", "dik", "kik", "vag", "pis", "bum", "fuk", "tit",
            "kil", "dum", "pen", "homo", "gay", "sod", "mor", "ded")
_NAME_RE = re.compile(r"\b[A-Z][a-z]{3}(?:" + "|".join(c.suffix for c in CLASSES) + r")\b")


@dataclass(frozen=True)
class Drug:
    name: str
    cls: DrugClass

    @property
    def doc_id(self) -> str:
        return "drug:" + self.name.lower()


class Formulary:
    """The generated domain: drugs, the truth about them, and renderings of that truth."""

    def __init__(self, seed: int = 0):
        self.seed = seed
        rng = random.Random(seed)
        stems = ["".join(p).capitalize() for p in itertools.product(_CONSONANTS, _VOWELS, _CONSONANTS, _VOWELS)]
        stems = [s for s in stems if not any(bad in s.lower() for bad in _BLOCKED)]
        chosen = rng.sample(stems, DRUGS_PER_CLASS * len(CLASSES))
        self.drugs: list[Drug] = [
            Drug(stem + cls.suffix, cls)
            for i, cls in enumerate(CLASSES)
            for stem in sorted(chosen[i * DRUGS_PER_CLASS : (i + 1) * DRUGS_PER_CLASS])
        ]
        self.by_name: dict[str, Drug] = {d.name: d for d in self.drugs}

    # -- the truth ------------------------------------------------------------------------------

    def drug(self, name: str) -> Drug:
        try:
            return self.by_name[name]
        except KeyError:
            raise KeyError(f"{name!r} is not in the Northwind formulary") from None

    def members(self, cls: DrugClass) -> list[Drug]:
        return [d for d in self.drugs if d.cls == cls]

    @staticmethod
    def class_rule(a: DrugClass, b: DrugClass) -> Rule | None:
        return next((r for r in RULES if r.matches(a, b)), None)

    def interaction(self, a: str, b: str) -> dict:
        rule = self.class_rule(self.drug(a).cls, self.drug(b).cls)
        if rule is None:
            return dict(NONE)
        return {"severity": rule.severity, "mechanism": rule.mechanism, "action": rule.action}

    def dosing(self, name: str) -> dict:
        cls = self.drug(name).cls
        return {"dose_mg": cls.dose_mg, "frequency": cls.frequency}

    def profile(self, name: str) -> dict:
        cls = self.drug(name).cls
        return {"class": cls.name, "indication": cls.indication}

    def answer(self, category: str, drugs: list[str]) -> dict:
        """The correct answer dict for a question of ``category`` about ``drugs``."""
        if category == "interaction":
            return self.interaction(*drugs)
        return self.dosing(drugs[0]) if category == "dosing" else self.profile(drugs[0])

    def find_drugs(self, text: str) -> list[str]:
        """Formulary drug names mentioned in ``text``, in order of appearance."""
        return [m.group(0) for m in _NAME_RE.finditer(text) if m.group(0) in self.by_name]

    # -- chat rows ------------------------------------------------------------------------------

    def _questions(self) -> dict[str, list[tuple[str, list[str]]]]:
        """(category, drugs) per split: disjoint facts, drawn with this formulary's seed."""
        rng = random.Random(self.seed + 1)
        out: dict[str, list[tuple[str, list[str]]]] = {s: [] for s in SPLITS}
        # Interactions: a quarter "none", the rest shared evenly by the nine mechanisms, so the
        # rare rules are not drowned by the many unrelated pairs.
        pools: dict[str, list[tuple[str, str]]] = {}
        for a, b in itertools.combinations(self.drugs, 2):
            rule = self.class_rule(a.cls, b.cls)
            pools.setdefault(rule.mechanism if rule else "none", []).append((a.name, b.name))
        labels = ["none"] + [r.mechanism for r in RULES]
        for pool in pools.values():
            rng.shuffle(pool)
        taken = {label: 0 for label in labels}
        for split in ("test", "val", "train"):  # test first: it must never lose a fact to train
            n = SIZES[split]["interaction"]
            quota = _spread(n, {"none": 0.25, **{r.mechanism: 0.75 / len(RULES) for r in RULES}})
            for label in labels:
                pairs = pools[label][taken[label] : taken[label] + quota[label]]
                taken[label] += quota[label]
                out[split] += [("interaction", list(p)) for p in pairs]
        for category in ("dosing", "profile"):
            names = [d.name for d in self.drugs]
            rng.shuffle(names)
            start = 0
            for split in ("test", "val", "train"):
                n = SIZES[split][category]
                out[split] += [(category, [name]) for name in names[start : start + n]]
                start += n
        return out

    def splits(self, variant: str = "json") -> dict[str, list[dict]]:
        """Chat rows per split. Both variants ask the same questions with the same ids."""
        if variant not in ("json", "text"):
            raise ValueError(f"variant={variant!r}: expected 'json' or 'text'")
        rng = random.Random(self.seed + 2)
        result: dict[str, list[dict]] = {}
        for split, questions in self._questions().items():
            rng.shuffle(questions)
            rows = []
            for i, (category, drugs) in enumerate(questions, start=1):
                if category == "interaction" and rng.random() < 0.5:
                    drugs = drugs[::-1]
                template = rng.choice(QUESTIONS[category])
                question = template.format(a=drugs[0], b=drugs[-1])
                answer = self.answer(category, drugs)
                if variant == "json":
                    system, reply = SYSTEM_PROMPT, json.dumps(answer)
                else:
                    system, reply = TEXT_SYSTEM_PROMPT, answer_text(category, answer, drugs)
                rows.append({
                    "id": f"fx-{split}-{i:04d}",
                    "category": category,
                    "messages": [
                        {"role": "system", "content": system},
                        {"role": "user", "content": question},
                        {"role": "assistant", "content": reply},
                    ],
                    "answer": answer,
                    "drugs": drugs,
                    "doc_ids": [self.drug(d).doc_id for d in drugs],
                })
            result[split] = rows
        return result

    # -- the corpus -----------------------------------------------------------------------------

    def _interaction_lines(self, cls: DrugClass, rng: random.Random, exclude: str = "") -> list[str]:
        lines, quiet = [], []
        for other in CLASSES:
            rule = self.class_rule(cls, other)
            if rule is None:
                quiet.append(other.plural)
                continue
            examples = [d.name for d in self.members(other) if d.name != exclude]
            eg = ", ".join(rng.sample(examples, 2))
            what = "other " + other.plural if other == cls else other.plural
            lines.append(
                f"- With {what} (-{other.suffix} drugs, e.g. {eg}): {rule.severity} interaction, "
                f"{rule.mechanism}; {rule.action}."
            )
        lines.append("- No known interaction with " + ", ".join(quiet) + ".")
        return lines

    def corpus(self) -> list[dict]:
        """One monograph per drug and one overview per class: ``{"id", "title", "text"}``."""
        rng = random.Random(self.seed + 3)
        docs = []
        for cls in CLASSES:
            traits = " and ".join(TRAITS[t] for t in cls.traits)
            names = ", ".join(d.name for d in self.members(cls))
            text = "\n".join([
                f"Drugs whose names end in -{cls.suffix} are {cls.plural}. Each one {traits}.",
                f"They are used for {cls.indication}. Usual adult dose: {cls.dose_mg} mg {cls.frequency}.",
                f"Members: {names}.",
                "Class interactions:",
                *self._interaction_lines(cls, rng),
            ])
            docs.append({"id": cls.doc_id, "title": f"{cls.plural.capitalize()} (-{cls.suffix})", "text": text})
        openers = (
            "{n} is a {c} (a -{s} drug) used for {i}.",
            "{n} belongs to the {c} class (-{s}); it is prescribed for {i}.",
            "Indication of {n}: {i}. Class: {c} (-{s}).",
        )
        for drug in self.drugs:
            cls = drug.cls
            opener = rng.choice(openers).format(n=drug.name, c=cls.name, s=cls.suffix, i=cls.indication)
            traits = " and ".join(TRAITS[t] for t in cls.traits)
            text = "\n".join([
                opener,
                f"Like every {cls.name}, it {traits}.",
                f"Usual adult dose: {cls.dose_mg} mg {cls.frequency}.",
                "Interactions:",
                *self._interaction_lines(cls, rng, exclude=drug.name),
            ])
            docs.append({"id": drug.doc_id, "title": drug.name, "text": text})
        return docs

    def to_json(self) -> dict:
        """The whole formulary as plain data (classes, rules, drugs)."""
        return {
            "seed": self.seed,
            "enzyme": ENZYME,
            "classes": [{**cls.__dict__, "traits": list(cls.traits)} for cls in CLASSES],
            "traits": TRAITS,
            "rules": [{**r.__dict__, "traits": list(r.traits) if r.traits else "same class"} for r in RULES],
            "drugs": [{"name": d.name, "class": d.cls.name} for d in self.drugs],
        }


def answer_text(category: str, answer: dict, drugs: list[str]) -> str:
    """The free-text rendering of an answer (the ``text`` variant's assistant turn)."""
    if category == "interaction":
        if answer["severity"] == "none":
            return "No known interaction. No action needed."
        return f"{answer['severity'].capitalize()} interaction: {answer['mechanism']}. {_ACTION_TEXT[answer['action']]}"
    if category == "dosing":
        return f"The usual adult dose is {answer['dose_mg']} mg {answer['frequency']}."
    return f"{drugs[0]} is a {answer['class']} used for {answer['indication']}."


_MECHANISM_CUES = {
    "none": r"no (known )?interaction", "duplicate therapy": r"duplicat", "additive bleeding": r"bleed",
    "serotonin excess": r"serotonin", "enzyme inhibition": r"inhibit", "potassium excess": r"potassium",
    "enzyme induction": r"induc", "additive sedation": r"sedat|drows", "masked low sugar": r"sugar",
    "additive hypotension": r"hypotension|blood pressure",
}
_CUES: dict[str, dict[str, str]] = {
    "severity": {"none": r"no (known )?interaction|\bnone\b", "minor": r"\bminor\b",
                 "moderate": r"\bmoderate\b", "major": r"\bmajor\b"},
    "mechanism": _MECHANISM_CUES,
    "action": {"none": r"no action|nothing to do", "monitor": r"\bmonitor", "avoid": r"\bavoid|do not combine",
               "reduce dose": r"\b(reduce|lower|decrease)\b[^.]*\bdose", "increase dose": r"\b(increase|raise)\b[^.]*\bdose"},
    "frequency": {f: re.escape(f) for f in ANSWER_SCHEMA["dosing"]["frequency"]},
    "class": {c.name: r"\b" + re.escape(c.name) for c in CLASSES},
    "indication": {c.indication: r"\b" + re.escape(c.indication) for c in CLASSES},
}


def read_text_answer(category: str, reply: str) -> dict:
    """The answer a free-text reply gives, field by field (``None`` where it is absent or ambiguous).

    Lenient on wording ("Reduce the dose", "lower the dose" both mean ``reduce dose``) but strict on
    hedging: a reply that names two severities gets neither.
    """
    text = reply.lower()
    out: dict = {}
    for key in ANSWER_SCHEMA[category]:
        if key == "dose_mg":
            doses = {int(m) for m in re.findall(r"(\d+)\s*mg\b", text)}
            out[key] = doses.pop() if len(doses) == 1 else None
            continue
        found = [value for value, cue in _CUES[key].items() if re.search(cue, text)]
        out[key] = found[0] if len(found) == 1 else None
    return out


def _spread(n: int, weights: dict[str, float]) -> dict[str, int]:
    """Split ``n`` by ``weights`` in whole numbers (largest remainder, ties in key order)."""
    raw = {k: n * w for k, w in weights.items()}
    counts = {k: int(v) for k, v in raw.items()}
    for k in sorted(raw, key=lambda k: -(raw[k] - counts[k]))[: n - sum(counts.values())]:
        counts[k] += 1
    return counts


@functools.lru_cache(maxsize=4)
def build(seed: int = 0) -> Formulary:
    """The formulary for ``seed`` (0 is the one shipped under data/formulary/)."""
    return Formulary(seed)


def formulary_dir() -> Path:
    return data_dir() / "formulary"


def write_all(out_dir: str | Path | None = None, seed: int = 0) -> list[Path]:
    """Regenerate every file under ``data/formulary/`` (or ``out_dir``); same seed, same bytes."""
    out = Path(out_dir) if out_dir is not None else formulary_dir()
    out.mkdir(parents=True, exist_ok=True)
    fx = build(seed)
    written = []
    for variant, tail in (("json", ""), ("text", "_text")):
        for split, rows in fx.splits(variant).items():
            written.append(write_chat_jsonl(rows, out / f"{split}{tail}.jsonl"))
    corpus_path = out / "corpus.jsonl"
    corpus_path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in fx.corpus()), encoding="utf-8")
    facts_path = out / "formulary.json"
    facts_path.write_text(json.dumps(fx.to_json(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return [*written, corpus_path, facts_path]


def load_split(split: str, variant: str = "json") -> list[dict]:
    """Shipped chat rows of one split: each has ``id``, ``category``, ``answer``, ``drugs``, ``doc_ids``."""
    if split not in SPLITS:
        raise ValueError(f"split={split!r}: expected one of {', '.join(SPLITS)}")
    if variant not in ("json", "text"):
        raise ValueError(f"variant={variant!r}: expected 'json' or 'text'")
    path = formulary_dir() / f"{split}{'' if variant == 'json' else '_text'}.jsonl"
    if not path.is_file():
        raise DataError(f"{path}: missing; regenerate with labkit.data.formulary.write_all()")
    return read_chat_jsonl(path)


def corpus() -> list[dict]:
    """The shipped monographs: ``[{"id", "title", "text"}]`` (class overviews first, then drugs)."""
    path = formulary_dir() / "corpus.jsonl"
    if not path.is_file():
        raise DataError(f"{path}: missing; regenerate with labkit.data.formulary.write_all()")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
