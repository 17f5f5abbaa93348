"""The dataset card: what every generated set says about itself.

A card travels with each generated set (``card.json`` and ``card.md`` in its run folder) so that a
reader, months later, knows where the data came from and how much was thrown away:

* counts in and out of every stage, and the reasons for the drops;
* the persona spread and the category spread of the final set;
* a diversity figure: distinct word bigrams among the questions (drug names masked, so only the
  *wording* counts) and the embedding spread (mean cosine distance between question embeddings);
* the teacher, critic and answerer, and their settings (never an API key).

>>> distinct_ngrams(["do A and B interact", "do A and B interact"], 2)
0.5
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

_NAME = re.compile(r"\b[A-Z][a-z]{3}[A-Z][a-z]+\b")  # the formulary's CamelCase drug names


def mask_names(text: str, names=()) -> str:
    """``text`` with drug names (given, or CamelCase formulary-style) replaced by ``<drug>``."""
    for name in sorted(names, key=len, reverse=True):
        text = text.replace(name, "<drug>")
    return _NAME.sub("<drug>", text)


def _words(text: str) -> list[str]:
    return re.findall(r"<drug>|[a-z0-9']+", text.lower())


def distinct_ngrams(texts: list[str], n: int = 2) -> float:
    """Distinct n-grams over all n-grams in ``texts`` (1.0: no n-gram repeats; near 0: one template)."""
    grams = [tuple(w[i : i + n]) for w in map(_words, texts) for i in range(len(w) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def embedding_spread(texts: list[str], embedder=None) -> float | None:
    """Mean cosine distance between all pairs of text embeddings (0: identical texts)."""
    if len(texts) < 2:
        return None
    if embedder is None:
        from labkit.models import load_embedder

        embedder = load_embedder()
    vecs = embedder.encode(texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    sims = vecs @ vecs.T
    n = len(texts)
    return float(1.0 - (sims.sum() - n) / (n * (n - 1)))


def diversity(questions: list[str], embedder=None) -> dict[str, float | None]:
    """The card's diversity figures for a list of questions (names masked first)."""
    masked = [mask_names(q) for q in questions if q]
    return {"distinct_1": round(distinct_ngrams(masked, 1), 4), "distinct_2": round(distinct_ngrams(masked, 2), 4),
            "embedding_spread": None if len(masked) < 2 else round(embedding_spread(masked, embedder), 4),
            "questions": len(masked)}


def _spread(items: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        out[item] = out.get(item, 0) + 1
    return dict(sorted(out.items()))


@dataclass
class DatasetCard:
    """Everything a generated set says about itself. Build with :func:`build_card`."""

    name: str
    rows_in: int
    rows_out: int
    stages: list[dict]
    personas: dict[str, int]
    categories: dict[str, int]
    diversity: dict[str, Any]
    teachers: dict[str, dict]
    settings: dict[str, Any]
    generation_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_markdown(self) -> str:
        lines = [f"# Dataset card: {self.name}", "",
                 f"{self.rows_out} pairs kept of {self.rows_in} generated "
                 f"({self.rows_out / self.rows_in:.0%})." if self.rows_in else "No pairs generated.", "",
                 "## Stages", "", "| stage | in | kept | dropped | main reasons |", "|---|---|---|---|---|"]
        for s in self.stages:
            reasons = "; ".join(f"{k} ({v})" for k, v in list(s["reasons"].items())[:3]) or "-"
            lines.append(f"| {s['stage']} | {s['in']} | {s['kept']} | {s['dropped']} | {reasons} |")
        lines += ["", "## Spread", "",
                  "Personas (kept): " + ", ".join(f"{k} {v}" for k, v in self.personas.items()),
                  "", "Categories (kept): " + ", ".join(f"{k} {v}" for k, v in self.categories.items()), "",
                  "## Diversity (questions, drug names masked)", "",
                  f"distinct-1 {self.diversity.get('distinct_1')}, distinct-2 {self.diversity.get('distinct_2')}, "
                  f"embedding spread {self.diversity.get('embedding_spread')}", "", "## Teachers", ""]
        for role, desc in self.teachers.items():
            lines.append(f"- {role}: " + ", ".join(f"{k}={v}" for k, v in desc.items()))
        lines += ["", "## Settings", "", "```json", json.dumps(self.settings, indent=1), "```"]
        if self.generation_seconds:
            lines += ["", f"Generation (questions and answers) took {self.generation_seconds:.0f} s."]
        lines += [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(s['stage'])}</td><td>{s['in']}</td><td>{s['kept']}</td><td>{s['dropped']}</td>"
            f"<td>{html.escape('; '.join(f'{k} ({v})' for k, v in list(s['reasons'].items())[:2]) or '-')}</td></tr>"
            for s in self.stages)
        teachers = "".join(f"<li>{html.escape(role)}: {html.escape(', '.join(f'{k}={v}' for k, v in d.items()))}</li>"
                           for role, d in self.teachers.items())
        d = self.diversity
        return (f"<b>Dataset card: {html.escape(self.name)}</b> - {self.rows_out} of {self.rows_in} pairs kept"
                f"<table><tr><th>stage</th><th>in</th><th>kept</th><th>dropped</th><th>main reasons</th></tr>{rows}</table>"
                f"personas: {html.escape(str(self.personas))}<br>categories: {html.escape(str(self.categories))}<br>"
                f"diversity of the questions: distinct-2 {d.get('distinct_2')}, embedding spread "
                f"{d.get('embedding_spread')}<ul>{teachers}</ul>")


def build_card(name: str, stages: list[dict], kept: list[dict], rows_in: int, teachers: dict[str, dict],
               settings: dict[str, Any], generation_seconds: float = 0.0, embedder=None,
               notes: list[str] | None = None) -> DatasetCard:
    """The card of one generated set: ``stages`` are stage records, ``kept`` the final pairs."""
    return DatasetCard(
        name=name, rows_in=rows_in, rows_out=len(kept), stages=[{k: v for k, v in s.items() if k != "dropped_ids"}
                                                                for s in stages],
        personas=_spread([p.get("persona", "?") for p in kept]), categories=_spread([p["category"] for p in kept]),
        diversity=diversity([p["question"] for p in kept], embedder), teachers=teachers, settings=settings,
        generation_seconds=round(generation_seconds, 1), notes=list(notes or []))
