"""Find the passages that answer a question: dense (MiniLM), lexical (BM25) and both fused.

Every retriever indexes a list of passages (from :mod:`labkit.rag.chunk`) and answers
``retrieve(question, k)`` with the ``k`` best :class:`Hit` objects, best first;
``retrieve_many`` does a batch at once. By default a passage is indexed with its document's
title in front (``"LuviParex\\n- With ring antibiotics ..."``): a line cut out of a monograph
does not say which drug it is about, its title does.

:func:`retrieval_scores` grades a retriever at *document* level: a passage counts as a hit when
it comes from one of the row's ``doc_ids``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from labkit.evaluate.retrieval import hit_at_k, reciprocal_rank


@dataclass(frozen=True)
class Hit:
    """One retrieved passage and how well it scored (higher is better; scales differ by retriever)."""

    passage_id: str
    doc_id: str
    text: str
    score: float
    title: str = ""


def question_of(row: dict) -> str:
    """The question of a chat row: its last user turn (or ``row["question"]``)."""
    if "messages" in row:
        return next(t["content"] for t in reversed(row["messages"]) if t["role"] == "user")
    return row["question"]


class Retriever:
    """The interface: subclasses index ``passages`` and implement ``_search(questions, k)``."""

    def __init__(self, passages: list[dict], with_title: bool = True):
        if not passages:
            raise ValueError(f"{type(self).__name__}: no passages to index")
        self.passages = list(passages)
        self.with_title = with_title

    def texts(self) -> list[str]:
        """What gets indexed: each passage's text, after its title when ``with_title``."""
        return [f"{p['title']}\n{p['text']}" if self.with_title and p.get("title") else p["text"]
                for p in self.passages]

    def hit(self, index: int, score: float) -> Hit:
        """The :class:`Hit` for passage number ``index``."""
        p = self.passages[index]
        return Hit(p["id"], p["doc_id"], p["text"], float(score), p.get("title", ""))

    def retrieve(self, question: str, k: int = 5) -> list[Hit]:
        """The ``k`` best passages for one question, best first."""
        return self.retrieve_many([question], k)[0]

    def retrieve_many(self, questions: Sequence[str], k: int = 5) -> list[list[Hit]]:
        """The ``k`` best passages for each question, best first."""
        questions = list(questions)
        return self._search(questions, min(k, len(self.passages))) if questions else []

    def _search(self, questions: list[str], k: int) -> list[list[Hit]]:
        """The top ``k`` (at most the number of passages) for a non-empty list of questions."""
        raise NotImplementedError


class DenseRetriever(Retriever):
    """Embed passages and questions with a sentence embedder (MiniLM by default); rank by cosine.

    The search is exact: every question is compared with every passage (a normalised dot product,
    via ``sentence_transformers.util.semantic_search``), which takes milliseconds for a thousand
    passages. At a million passages one switches to an approximate nearest-neighbour index such
    as FAISS (HNSW or IVF) and accepts a small loss of recall for a large gain in speed.
    """

    def __init__(self, passages: list[dict], model="minilm-l6", with_title: bool = True, batch_size: int = 64,
                 cache: bool = True):
        """``model``: an embedded name, a folder or a loaded SentenceTransformer. With ``cache``, an
        embedded model (whose weights never change) keeps its passage embeddings under
        ``cache_dir()/rag``: encoding the formulary's ~1,100 passages takes 20-70 s on two cores,
        reading them back milliseconds. A folder or a model object (perhaps just fine-tuned) is
        always encoded afresh."""
        from labkit.models import EMBEDDED, load_embedder

        super().__init__(passages, with_title)
        name = model if isinstance(model, str) else None
        self.model = model = load_embedder(name) if name is not None else model
        path = _cache_path(name, self.texts()) if cache and name in EMBEDDED else None
        if path is not None and path.is_file():
            from safetensors.torch import load_file

            self.embeddings = load_file(str(path))["embeddings"]  # safetensors: no pickle is ever loaded
            return
        self.embeddings = model.encode_document(self.texts(), batch_size=batch_size, convert_to_tensor=True,
                                                normalize_embeddings=True, show_progress_bar=False)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            staging = path.with_suffix(f".{os.getpid()}.tmp")
            from safetensors.torch import save_file

            save_file({"embeddings": self.embeddings.cpu().contiguous()}, str(staging))
            os.replace(staging, path)  # atomic: a half-written cache is never read

    def updated(self, passages: list[dict]) -> "DenseRetriever":
        """A retriever over ``passages`` (say, a revised corpus) that embeds only the passages whose
        indexed text is new and reuses every other embedding: keeping a RAG index current costs
        the changed passages, not the corpus. ``reembedded`` says how many were encoded."""
        import torch

        new = DenseRetriever.__new__(DenseRetriever)
        Retriever.__init__(new, passages, self.with_title)
        new.model = self.model
        known = dict(zip(self.texts(), self.embeddings.cpu()))
        texts = new.texts()
        missing = [t for t in dict.fromkeys(texts) if t not in known]
        if missing:
            known.update(zip(missing, self.model.encode_document(
                missing, convert_to_tensor=True, normalize_embeddings=True, show_progress_bar=False).cpu()))
        new.embeddings = torch.stack([known[t] for t in texts])
        new.reembedded = len(missing)
        return new

    def _search(self, questions: list[str], k: int) -> list[list[Hit]]:
        from sentence_transformers.util import dot_score, semantic_search

        queries = self.model.encode_query(questions, convert_to_tensor=True, normalize_embeddings=True,
                                          show_progress_bar=False)
        found = semantic_search(queries, self.embeddings.to(queries.device), top_k=k, score_function=dot_score)
        return [[self.hit(h["corpus_id"], h["score"]) for h in hits] for hits in found]


def _cache_path(model_name: str, texts: list[str]) -> Path:
    from labkit.paths import cache_dir

    digest = hashlib.sha256(json.dumps([model_name, texts]).encode()).hexdigest()[:16]
    return cache_dir() / "rag" / f"{model_name}-{digest}.safetensors"


class BM25Retriever(Retriever):
    """Okapi BM25 over lower-cased word tokens (English stopwords dropped), with ``bm25s``.

    Exact word overlap: strong on invented names such as ``LuviParex`` that an embedder has never
    seen, blind to paraphrase.
    """

    def __init__(self, passages: list[dict], with_title: bool = True, k1: float = 1.5, b: float = 0.75):
        import bm25s

        super().__init__(passages, with_title)
        self.index = bm25s.BM25(k1=k1, b=b)
        self.index.index(bm25s.tokenize(self.texts(), stopwords="en", show_progress=False), show_progress=False)

    def _search(self, questions: list[str], k: int) -> list[list[Hit]]:
        import bm25s

        tokens = bm25s.tokenize(questions, stopwords="en", return_ids=False, show_progress=False)
        ids, scores = self.index.retrieve(tokens, k=k, show_progress=False)
        return [[self.hit(int(i), s) for i, s in zip(row_ids, row_scores)] for row_ids, row_scores in zip(ids, scores)]


class HybridRetriever(Retriever):
    """Reciprocal-rank fusion of retrievers over the same passages: score = sum of 1 / (c + rank).

    Each retriever contributes its top ``depth``; ranks, not raw scores, are fused, so cosine and
    BM25 scales never need calibrating (Cormack et al. 2009 use c = 60).
    """

    def __init__(self, *retrievers: Retriever, depth: int = 50, c: int = 60):
        if len(retrievers) < 2:
            raise ValueError("HybridRetriever: give at least two retrievers")
        ids = [p["id"] for p in retrievers[0].passages]
        if any([p["id"] for p in r.passages] != ids for r in retrievers[1:]):
            raise ValueError("HybridRetriever: the retrievers must index the same passages")
        super().__init__(retrievers[0].passages, retrievers[0].with_title)
        self.retrievers, self.depth, self.c = retrievers, depth, c
        self._index = {pid: i for i, pid in enumerate(ids)}

    def _search(self, questions: list[str], k: int) -> list[list[Hit]]:
        fused: list[dict[str, float]] = [{} for _ in questions]
        for retriever in self.retrievers:
            for scores, hits in zip(fused, retriever.retrieve_many(questions, max(k, self.depth))):
                for rank, h in enumerate(hits, start=1):
                    scores[h.passage_id] = scores.get(h.passage_id, 0.0) + 1.0 / (self.c + rank)
        return [[self.hit(self._index[pid], s) for pid, s in sorted(scores.items(), key=lambda x: -x[1])[:k]]
                for scores in fused]


def retrieval_scores(retriever: Retriever, rows: list[dict], ks: Sequence[int] = (1, 3, 5),
                     depth: int = 10) -> dict[str, float]:
    """Mean hit@k and MRR@``depth`` over ``rows`` (each with ``doc_ids``), at document level.

    hit@k: one of the top ``k`` *passages* comes from a gold document (an interaction row has two;
    either counts). MRR: 1 / rank of the first such passage, 0 beyond ``depth``.
    """
    rows = [r for r in rows if r.get("doc_ids")]
    if not rows:
        raise ValueError("retrieval_scores: no row has doc_ids")
    found = retriever.retrieve_many([question_of(r) for r in rows], max(depth, *ks))
    ranked = [[h.doc_id for h in hits] for hits in found]
    out = {f"hit@{k}": sum(hit_at_k(d, r["doc_ids"], k) for d, r in zip(ranked, rows)) / len(rows) for k in ks}
    out[f"mrr@{depth}"] = sum(reciprocal_rank(d, r["doc_ids"], depth) for d, r in zip(ranked, rows)) / len(rows)
    out["queries"] = float(len(rows))
    return out
