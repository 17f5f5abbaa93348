"""Claims as data: what the article says, what the paper says, what we measured, and the verdict.

Every lesson ends with the same table, built the same way: its lesson module turns its own
measurements into a list of :class:`Claim` (each verdict a one-line threshold in that module, so
it can be tested without training), and :func:`claims_table` renders the list identically in
every notebook (HTML), in a terminal (text) and in a report (Markdown).

>>> c = Claim("QLoRA needs far less memory", article="8B: ~6 GB vs ~32 GB", paper="65B: >780 GB -> <48 GB",
...           ours="peak RSS QLoRA/LoRA = 0.53", verdict="held", held=True)
>>> print(claims_table([c]).to_markdown().splitlines()[2])
| QLoRA needs far less memory | 8B: ~6 GB vs ~32 GB | 65B: >780 GB -> <48 GB | peak RSS QLoRA/LoRA = 0.53 | held |
"""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass

COLUMNS = ("claim", "article", "paper", "ours", "verdict")
#: ``held`` -> the colour and word shown beside the verdict
_MARKS = {True: ("#1a7f37", "held"), False: ("#cf222e", "did not hold"), None: ("#9a6700", "partly / unclear")}


@dataclass(frozen=True)
class Claim:
    """One row of a lesson's claims table.

    Attributes:
        claim: the claim in a few words ("LoRA r16 comes close to full fine-tuning").
        article: the source article's figure, or "-" where it gives none.
        paper: the paper's figure (LIMA, QLoRA, RAFT, MRL, ...), or "-".
        ours: what this course measured, with the numbers.
        verdict: one line computed from ``ours`` by the lesson module's threshold.
        held: True (held), False (did not hold) or None (partly, or no signal to judge).
    """

    claim: str
    article: str
    paper: str
    ours: str
    verdict: str
    held: bool | None

    def to_dict(self) -> dict:
        return asdict(self)


class ClaimsTable(list):
    """A list of :class:`Claim` that renders as the course's claims table."""

    def to_markdown(self) -> str:
        def cell(text: str) -> str:
            return str(text).replace("|", "\\|").replace("\n", " ")

        lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        lines += ["| " + " | ".join(cell(getattr(c, k)) for k in COLUMNS) + " |" for c in self]
        return "\n".join(lines)

    def __str__(self) -> str:
        return "\n".join(f"- {c.claim}: {c.verdict}\n    article: {c.article}\n    paper:   {c.paper}\n"
                         f"    ours:    {c.ours}" for c in self)

    def _repr_html_(self) -> str:
        head = "".join(f"<th style='text-align:left'>{k}</th>" for k in COLUMNS)
        body = []
        for c in self:
            colour, word = _MARKS[c.held]
            verdict = (f"<span style='color:{colour};font-weight:bold'>{html.escape(word)}</span>"
                       f"<br>{html.escape(c.verdict)}")
            cells = [html.escape(c.claim), html.escape(c.article), html.escape(c.paper),
                     f"<b>{html.escape(c.ours)}</b>", verdict]
            body.append("<tr>" + "".join(f"<td style='text-align:left;vertical-align:top'>{x}</td>"
                                         for x in cells) + "</tr>")
        return f"<table><tr>{head}</tr>{''.join(body)}</table>"

    def counts(self) -> dict[str, int]:
        """How many held, did not hold, or were unclear."""
        return {word: sum(1 for c in self if c.held is held) for held, (_, word) in _MARKS.items()}


def claims_table(claims) -> ClaimsTable:
    """Wrap a lesson's claims for display; refuses anything that is not a :class:`Claim`."""
    claims = list(claims)
    for c in claims:
        if not isinstance(c, Claim):
            raise TypeError(f"claims_table: expected Claim objects, got {type(c).__name__}")
    return ClaimsTable(claims)
