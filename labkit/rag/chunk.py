"""Cut documents into passages of about ``size`` characters, at line and sentence boundaries.

Why chunk: a formulary monograph is ~760 characters, and a RAG prompt with three or four whole
monographs runs to ~1,000 tokens for a 135M model. A passage of ~300 characters carries one or two
facts, so the prompt stays short and the retriever can point at the line that answers.

How: a document is split into *units* - lines; a line longer than ``size`` into sentences; only a
sentence longer than twice ``size`` into words (a sentence is worth keeping whole) - and consecutive
units are packed greedily while the passage stays within ``size`` (only a single long sentence
makes a longer one). Each unit keeps its trailing whitespace, so with ``overlap=0`` a document's
passages concatenated give back its text exactly (:func:`rebuild` checks any overlap too).
With ``overlap > 0`` a passage repeats the trailing units of the one before, up to that many
characters.

Every passage: ``{"id": "<doc_id>#<n>", "doc_id", "title", "text", "start", "end"}`` with
``text == document_text[start:end]``.
"""

from __future__ import annotations

import re

# Split points, coarsest first; a cut falls after the separator, so it stays with the unit before.
_SPLITTERS = (re.compile(r"\n+"), re.compile(r"(?<=[.!?])\s+"), re.compile(r"\s+"))
DEFAULT_SIZE = 300


def _units(text: str, start: int, end: int, size: int, level: int = 0) -> list[tuple[int, int]]:
    limit = 2 * size if level == len(_SPLITTERS) - 1 else size  # words: only for a very long sentence
    if end - start <= limit or level == len(_SPLITTERS):
        return [(start, end)]
    cuts = [m.end() for m in _SPLITTERS[level].finditer(text, start, end) if start < m.end() < end]
    bounds = [start, *cuts, end]
    return [u for a, b in zip(bounds, bounds[1:]) for u in _units(text, a, b, size, level + 1)]


def chunk_spans(text: str, size: int = DEFAULT_SIZE, overlap: int = 0) -> list[tuple[int, int]]:
    """``(start, end)`` character spans of the passages of one text, in order (see module doc)."""
    if size < 1 or overlap < 0 or overlap >= size:
        raise ValueError(f"size={size}, overlap={overlap}: need size >= 1 and 0 <= overlap < size")
    if not text:
        return []
    units = _units(text, 0, len(text), size)
    spans, i = [], 0
    while True:
        j = i
        while j + 1 < len(units) and units[j + 1][1] - units[i][0] <= size:
            j += 1
        spans.append((units[i][0], units[j][1]))
        if j + 1 == len(units):
            return spans
        nxt = j + 1  # step back over trailing units that fit in the overlap, but always move on
        while nxt - 1 > i and units[j][1] - units[nxt - 1][0] <= overlap:
            nxt -= 1
        i = nxt


def chunk_documents(docs: list[dict], size: int = DEFAULT_SIZE, overlap: int = 0) -> list[dict]:
    """Passages of every document (``{"id", "text"}`` and optionally ``"title"``), in order."""
    passages = []
    for doc in docs:
        for n, (start, end) in enumerate(chunk_spans(doc["text"], size, overlap)):
            passages.append({"id": f"{doc['id']}#{n}", "doc_id": doc["id"], "title": doc.get("title", ""),
                             "text": doc["text"][start:end], "start": start, "end": end})
    return passages


def rebuild(passages: list[dict]) -> dict[str, str]:
    """Each document's text put back together from its passages (overlaps read once).

    Raises ``ValueError`` if the passages of a document leave a gap: a chunker that lost text.
    """
    texts: dict[str, str] = {}
    for p in sorted(passages, key=lambda p: (p["doc_id"], p["start"])):
        text = texts.get(p["doc_id"], "")
        if p["start"] > len(text):
            raise ValueError(f"{p['id']}: starts at {p['start']}, but its document is covered only up to {len(text)}")
        texts[p["doc_id"]] = text + p["text"][len(text) - p["start"]:]
    return texts


def formulary_passages(size: int = DEFAULT_SIZE, overlap: int = 0, corpus: list[dict] | None = None) -> list[dict]:
    """The Northwind formulary's monographs as passages (``corpus``: e.g. a stale copy's documents)."""
    if corpus is None:
        from labkit.data.formulary import corpus as load_corpus

        corpus = load_corpus()
    return chunk_documents(corpus, size, overlap)
