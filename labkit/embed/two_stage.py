"""Two-stage retrieval with one Matryoshka model: a cheap 64-dim shortlist, a full-dim rerank.

Stage 1 scores every document with only the first 64 numbers of its embedding (an index six
times smaller than the full one for MiniLM's 384) and keeps the best ``shortlist_k``. Stage 2
rescores just those with the full embedding. Kusupati et al. (2022, "Matryoshka Representation
Learning") call this adaptive retrieval; it only works when the 64-dim prefix is itself a good
embedding, which is what Matryoshka training buys.

:func:`quality` compares the final top-k with full-dim brute force on real queries;
:func:`speed` times both on the same embeddings (tiled to a production-sized corpus) and returns
the ratio, measured in the same process, so the machine's load cancels out as far as it can;
:func:`storage` is arithmetic.

>>> q, d = query_embs, doc_embs                                           # doctest: +SKIP
>>> idx = two_stage_search(q, d, shortlist_dim=64, shortlist_k=30, k=10)   # doctest: +SKIP
"""

from __future__ import annotations

import time
from typing import Mapping, Sequence

import numpy as np

from labkit.embed.evaluate import truncate
from labkit.evaluate.retrieval import ndcg_at_k


def _topk(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k best per row, best first (argpartition, then sort only the k)."""
    n = scores.shape[1]
    k = min(k, n)
    # Partition without negating: -scores would copy the whole score matrix once more.
    part = np.argpartition(scores, n - k, axis=1)[:, n - k:]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def brute_force_search(queries: np.ndarray, docs: np.ndarray, k: int = 10) -> np.ndarray:
    """Top-k document rows per query by full-dim cosine (inputs already unit length)."""
    return _topk(queries @ docs.T, k)


def two_stage_search(queries: np.ndarray, docs: np.ndarray, shortlist_dim: int = 64, shortlist_k: int = 30,
                     k: int = 10, docs_small: np.ndarray | None = None) -> np.ndarray:
    """Top-k rows: shortlist by the first ``shortlist_dim`` dims, rerank the shortlist at full dim.

    ``queries`` and ``docs`` are full-dim and unit length; ``docs_small`` is the precomputed
    (re-normalised) shortlist index, built once per corpus with :func:`truncate`.
    """
    if shortlist_k < k:
        raise ValueError(f"shortlist_k={shortlist_k}: must be >= k={k}")
    if docs_small is None:
        docs_small = truncate(docs, shortlist_dim)
    candidates = _topk(truncate(queries, shortlist_dim) @ docs_small.T, shortlist_k)  # (nq, shortlist_k)
    rerank = np.einsum("qd,qcd->qc", queries, docs[candidates])
    return np.take_along_axis(candidates, _topk(rerank, k), axis=1)


def quality(queries: np.ndarray, docs: np.ndarray, doc_ids: Sequence[str], qrels: Sequence[set[str]],
            shortlist_dim: int = 64, shortlist_k: int = 30, k: int = 10) -> dict[str, float]:
    """nDCG@k of two-stage vs brute force on real queries, and how often their top-k agree."""
    brute = brute_force_search(queries, docs, k)
    staged = two_stage_search(queries, docs, shortlist_dim, shortlist_k, k)
    ids = np.asarray(doc_ids)
    ndcg_brute = float(np.mean([ndcg_at_k(list(ids[row]), rel, k) for row, rel in zip(brute, qrels)]))
    ndcg_staged = float(np.mean([ndcg_at_k(list(ids[row]), rel, k) for row, rel in zip(staged, qrels)]))
    overlap = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(brute, staged)]))
    return {
        "ndcg@10 brute force": ndcg_brute, "ndcg@10 two-stage": ndcg_staged,
        "quality ratio": ndcg_staged / ndcg_brute if ndcg_brute else float("nan"),
        "top-10 overlap with brute force": overlap, "shortlist_k": shortlist_k, "corpus": len(doc_ids),
    }


def _median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def speed(queries: np.ndarray, docs: np.ndarray, rows: int = 100_000, shortlist_dim: int = 64,
          shortlist_k: int = 30, k: int = 10, repeats: int = 5, n_queries: int = 32) -> dict[str, float]:
    """Per-query latency of brute force vs two-stage on ``docs`` tiled to ``rows`` rows.

    Queries are searched one at a time (a search box, not a batch job), which makes a scan
    memory-bound: reading 64 floats per document instead of 384 is where the time goes.
    Both are timed in the same process, alternately, so their *ratio* is what to trust.
    """
    reps = int(np.ceil(rows / len(docs)))
    big = np.ascontiguousarray(np.tile(docs, (reps, 1))[:rows], dtype=np.float32)
    small = np.ascontiguousarray(truncate(big, shortlist_dim), dtype=np.float32)
    qs = [np.ascontiguousarray(q[None, :], dtype=np.float32) for q in queries[:n_queries]]

    def brute():
        for q in qs:
            brute_force_search(q, big, k)

    def staged():
        for q in qs:
            two_stage_search(q, big, shortlist_dim, shortlist_k, k, docs_small=small)

    brute(), staged()  # warm caches and code paths before timing
    brute_s, staged_s = [], []
    for _ in range(repeats):
        brute_s.append(_median_seconds(brute, 1))
        staged_s.append(_median_seconds(staged, 1))
    brute_ms = 1000 * float(np.median(brute_s)) / len(qs)
    staged_ms = 1000 * float(np.median(staged_s)) / len(qs)
    return {"corpus rows": rows, "brute force ms/query": brute_ms, "two-stage ms/query": staged_ms,
            "speed ratio (brute / two-stage)": brute_ms / staged_ms}


def storage(rows: int, full_dim: int, shortlist_dim: int = 64, bytes_per_value: int = 4) -> dict[str, float]:
    """Index sizes in MiB: the full-dim index, the shortlist index, and both kept together."""
    mib = 1024 * 1024
    full = rows * full_dim * bytes_per_value / mib
    small = rows * shortlist_dim * bytes_per_value / mib
    return {"full index MiB": full, "shortlist index MiB": small,
            "storage ratio (full / shortlist)": full / small,
            "both kept, vs full alone": (full + small) / full}


def report(queries: np.ndarray, docs: np.ndarray, doc_ids: Sequence[str], qrels: Sequence[set[str]],
           rows: int = 100_000, shortlist_dim: int = 64, shortlist_k: int = 30) -> Mapping[str, float]:
    """Quality (real corpus), speed (tiled to ``rows``) and storage, in one flat dict."""
    queries = truncate(np.asarray(queries, dtype=np.float32), queries.shape[1])
    docs = truncate(np.asarray(docs, dtype=np.float32), docs.shape[1])
    out: dict[str, float] = {}
    out.update(quality(queries, docs, doc_ids, qrels, shortlist_dim, shortlist_k))
    out.update(speed(queries, docs, rows, shortlist_dim, shortlist_k))
    out.update(storage(rows, docs.shape[1], shortlist_dim))
    return out
