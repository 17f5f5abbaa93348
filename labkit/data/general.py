"""General (real-world) data: a small instruction mix against forgetting, and a knowledge probe.

* :func:`general_mix` - short, correct answers to everyday requests (arithmetic, capitals,
  definitions, simple instructions, haiku, greetings). The seed's advice is to blend 10-20% of such
  rows into domain training (:func:`blend`) so the model is reminded it is still a general
  assistant. Written by :func:`write_all` to ``data/general/mix.jsonl``.
* :func:`probe` - the multiple-choice probe in ``data/general/probe.jsonl`` (hand-written, 180
  items, six subjects, four choices each): facts that are certainly true and easy enough that the
  135M base model gets most of them, so a drop after fine-tuning means forgetting, not noise.

The mix deliberately avoids what the probe and the generation checks ask (other capitals, no
15 x 23, no France), so blending it in cannot inflate the forgetting measurements.
"""

from __future__ import annotations

import random
from pathlib import Path

from labkit.data.chat import DataError, read_chat_jsonl, write_chat_jsonl
from labkit.paths import data_dir

CAPITALS = (
    ("Norway", "Oslo"), ("Sweden", "Stockholm"), ("Poland", "Warsaw"), ("Ireland", "Dublin"),
    ("Austria", "Vienna"), ("Kenya", "Nairobi"), ("Argentina", "Buenos Aires"), ("Mexico", "Mexico City"),
    ("Thailand", "Bangkok"), ("South Korea", "Seoul"), ("Turkey", "Ankara"), ("Peru", "Lima"),
    ("Finland", "Helsinki"), ("Denmark", "Copenhagen"), ("Belgium", "Brussels"), ("Hungary", "Budapest"),
    ("the Czech Republic", "Prague"), ("Cuba", "Havana"), ("Chile", "Santiago"), ("Vietnam", "Hanoi"),
    ("Indonesia", "Jakarta"), ("the Philippines", "Manila"), ("Iran", "Tehran"), ("Nigeria", "Abuja"),
    ("Morocco", "Rabat"), ("Colombia", "Bogotá"), ("Ukraine", "Kyiv"), ("New Zealand", "Wellington"),
)
DEFINITIONS = (
    ("photosynthesis", "the process by which plants use sunlight, water and carbon dioxide to make sugar and release oxygen"),
    ("a noun", "a word that names a person, place, thing or idea"),
    ("a verb", "a word that describes an action or a state, such as run or be"),
    ("an adjective", "a word that describes a noun, such as red or tall"),
    ("a prime number", "a whole number greater than 1 whose only divisors are 1 and itself"),
    ("an even number", "a whole number that can be divided by 2 with no remainder"),
    ("evaporation", "the change of a liquid into a gas, as when a puddle dries in the sun"),
    ("a mammal", "a warm-blooded animal with hair that feeds its young on milk"),
    ("a volcano", "an opening in the Earth's crust through which molten rock, ash and gas escape"),
    ("gravity", "the force that pulls objects with mass towards each other"),
    ("an island", "a piece of land surrounded on all sides by water"),
    ("a peninsula", "a piece of land surrounded by water on three sides"),
    ("democracy", "a system of government in which citizens choose their leaders by voting"),
    ("a synonym", "a word that means the same or nearly the same as another word"),
    ("an antonym", "a word that means the opposite of another word"),
    ("a fraction", "a number that represents part of a whole, such as one half"),
    ("a triangle", "a flat shape with three straight sides and three angles"),
    ("a thermometer", "an instrument that measures temperature"),
    ("a recipe", "a set of instructions for preparing a dish"),
    ("a budget", "a plan for how to spend and save money over a period of time"),
    ("an email", "a message sent electronically from one computer or phone to another"),
    ("recycling", "turning used materials into new products instead of throwing them away"),
    ("a habitat", "the natural home of an animal or plant"),
    ("an ecosystem", "a community of living things together with their physical environment"),
)
HAIKU = (
    ("autumn", "Red leaves drift and fall\ncool wind hums through empty trees\nthe year breathes out slow"),
    ("the moon", "Pale moon on the lake\nripples carry silver light\nthe night holds its breath"),
    ("rain", "Soft rain on the roof\nthe garden drinks in silence\npuddles fill with sky"),
    ("a cat", "Curled in morning sun\nthe cat dreams of distant birds\nwhiskers twitch, then rest"),
    ("mountains", "Snow on ancient peaks\nclouds rest on the quiet stone\nthe valley looks up"),
    ("coffee", "Steam curls from the cup\nbitter warmth on a cold hand\nthe day starts to stir"),
    ("spring", "Green shoots push through mud\nbirdsong fills the waking wood\nthe old world is new"),
    ("a city at night", "Streetlights hum and glow\ntaxis stream like restless fish\nwindows hold small stars"),
)
GREETINGS = (
    ("Good morning!", "Good morning! How can I help you today?"),
    ("Hi there!", "Hi! What can I do for you?"),
    ("Thanks for your help.", "You're welcome! Let me know if you need anything else."),
    ("Can you help me with something?", "Of course. Tell me what you need and I will do my best."),
    ("Good night!", "Good night! Sleep well."),
    ("What can you do?", "I can answer questions, explain ideas, do simple maths and help with writing."),
)
WORDS = ("garden", "planet", "window", "silver", "rocket", "pencil", "forest", "bridge", "candle", "market",
         "orange", "travel", "winter", "button", "letter", "mirror")
# Kept out of the mix: the generation checks ask exactly these.
RESERVED_ARITHMETIC = {(15, "x", 23), (23, "x", 15)}


def _arithmetic(rng: random.Random, n: int) -> list[tuple[str, str, str]]:
    out, seen = [], set()
    while len(out) < n:
        op = rng.choice(["+", "-", "x"])
        # Larger than anything the probe asks (its sums stop at 50 + 50, its products at 10 x 10).
        a, b = (rng.randint(11, 30), rng.randint(2, 30)) if op == "x" else (rng.randint(60, 500), rng.randint(2, 300))
        if op == "-" and b > a:
            a, b = b, a
        if (a, op, b) in seen or (a, op, b) in RESERVED_ARITHMETIC:
            continue
        seen.add((a, op, b))
        value = a + b if op == "+" else a - b if op == "-" else a * b
        question = rng.choice(["What is {a} {op} {b}?", "What's {a} {op} {b}?", "Calculate {a} {op} {b}."])
        out.append(("arithmetic", question.format(a=a, op=op, b=b), f"{a} {op} {b} = {value}."))
    return out


def _instructions(rng: random.Random) -> list[tuple[str, str, str]]:
    out = []
    for word in WORDS:
        out.append(("instruction", f"Spell the word '{word}' backwards.", f"{word[::-1]}"))
        out.append(("instruction", f"Write the word '{word}' in capital letters.", word.upper()))
    for _ in range(10):
        numbers = rng.sample(range(1, 100), 5)
        out.append(("instruction", f"Sort these numbers from smallest to largest: {', '.join(map(str, numbers))}.",
                    ", ".join(map(str, sorted(numbers)))))
    for _ in range(8):
        words = rng.sample(WORDS, rng.randint(3, 6))
        sentence = " ".join(words)
        out.append(("instruction", f"How many words are in this sentence: '{sentence}'?",
                    f"There are {len(words)} words."))
    for _ in range(15):
        a, b = rng.sample(range(1, 1000), 2)
        out.append(("instruction", f"Which is larger, {a} or {b}?", f"{max(a, b)} is larger."))
    for _ in range(15):
        n = rng.randint(2, 40)
        big, small, factor = rng.choice([("metres", "centimetres", 100), ("kilograms", "grams", 1000),
                                         ("kilometres", "metres", 1000), ("litres", "millilitres", 1000)])
        out.append(("instruction", f"Convert {n} {big} to {small}.", f"{n} {big} = {n * factor} {small}."))
    for things, items in (("colours", "red, blue, green"), ("fruits", "apple, banana, cherry"),
                          ("animals", "dog, cat, horse"), ("planets", "Mars, Venus, Jupiter")):
        out.append(("instruction", f"List three {things}, separated by commas.", items))
    return out


def build_mix(seed: int = 0) -> list[dict]:
    """The general instruction mix as chat rows (``category`` "general", plus a ``subject``)."""
    rng = random.Random(seed)
    items: list[tuple[str, str, str]] = []
    items += _arithmetic(rng, 60)
    for country, capital in CAPITALS:
        question = rng.choice(["What is the capital of {c}?", "Which city is the capital of {c}?"])
        items.append(("capitals", question.format(c=country), f"The capital of {country} is {capital}."))
    for term, meaning in DEFINITIONS:
        items.append(("definitions", f"What is {term}?", f"{term[0].upper() + term[1:]} is {meaning}."))
    items += _instructions(rng)
    for topic, poem in HAIKU:
        items.append(("haiku", f"Write a haiku about {topic}.", poem))
    items += [("chat", q, a) for q, a in GREETINGS]
    rng.shuffle(items)
    return [
        {"id": f"gen-{i:04d}", "category": "general", "subject": subject,
         "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
        for i, (subject, q, a) in enumerate(items, start=1)
    ]


def general_dir() -> Path:
    return data_dir() / "general"


def write_all(out_dir: str | Path | None = None, seed: int = 0) -> list[Path]:
    """Regenerate ``data/general/mix.jsonl`` (the probe is hand-written and left alone)."""
    out = Path(out_dir) if out_dir is not None else general_dir()
    return [write_chat_jsonl(build_mix(seed), out / "mix.jsonl")]


def general_mix() -> list[dict]:
    """The shipped general instruction rows (210)."""
    return read_chat_jsonl(general_dir() / "mix.jsonl")


def blend(domain_rows: list[dict], fraction: float = 0.15, seed: int = 0,
          general_rows: list[dict] | None = None) -> list[dict]:
    """Domain rows plus enough general rows that they make up ``fraction`` of the result, shuffled.

    ``fraction`` 0.15 on 600 domain rows adds 106 general rows (106 / 706 = 15%).
    """
    if not 0 <= fraction < 1:
        raise ValueError(f"fraction={fraction}: expected 0 <= fraction < 1")
    pool = list(general_rows if general_rows is not None else general_mix())
    want = round(len(domain_rows) * fraction / (1 - fraction))
    rng = random.Random(seed)
    rng.shuffle(pool)
    extra = [pool[i % len(pool)] for i in range(want)] if pool else []
    rows = list(domain_rows) + extra
    rng.shuffle(rows)
    return rows


def probe(path: str | Path | None = None) -> list[dict]:
    """The general-knowledge probe: ``{"id", "subject", "question", "choices", "answer_index"}``."""
    path = Path(path) if path is not None else general_dir() / "probe.jsonl"
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    from labkit.files import iter_jsonl

    items = []
    for where, item in iter_jsonl(path, DataError):
        missing = {"id", "subject", "question", "choices", "answer_index"} - set(item)
        if missing:
            raise DataError(f"{where}: missing {', '.join(sorted(missing))}")
        choices, answer = item["choices"], item["answer_index"]
        if not (isinstance(choices, list) and len(choices) >= 2 and isinstance(answer, int)
                and 0 <= answer < len(choices)):
            raise DataError(f"{where}: needs at least two choices and an answer_index into them")
        items.append(item)
    if not items:
        raise DataError(f"{path}: the probe is empty")
    return items
