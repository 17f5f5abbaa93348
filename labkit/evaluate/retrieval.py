"""Retrieval yardsticks: hit@k, MRR, nDCG@k (binary or graded relevance).

``ranked`` is the list of document ids a system returned for one query, best first;
``relevant`` maps the ids that count to their gain (use 1 for binary relevance).
Averaging over queries is left to :func:`retrieval_report`.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence


def _gains(relevant) -> Mapping[str, float]:
    return relevant if isinstance(relevant, Mapping) else {doc: 1.0 for doc in relevant}


def hit_at_k(ranked: Sequence[str], relevant, k: int) -> float:
    """1.0 if any relevant document is in the top k, else 0.0."""
    gains = _gains(relevant)
    return float(any(doc in gains for doc in ranked[:k]))


def recall_at_k(ranked: Sequence[str], relevant, k: int) -> float:
    gains = _gains(relevant)
    return sum(1 for doc in ranked[:k] if doc in gains) / len(gains) if gains else 0.0


def reciprocal_rank(ranked: Sequence[str], relevant, k: int | None = None) -> float:
    """1/rank of the first relevant document (0 if none within k)."""
    gains = _gains(relevant)
    for rank, doc in enumerate(ranked[:k] if k else ranked, start=1):
        if doc in gains:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(ranked: Sequence[str], relevant, k: int = 10) -> float:
    """Normalised discounted cumulative gain: sum gain/log2(rank+1), divided by the ideal."""
    gains = _gains(relevant)
    dcg = sum(gains.get(doc, 0.0) / math.log2(rank + 1) for rank, doc in enumerate(ranked[:k], start=1))
    ideal = sorted(gains.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(rank + 1) for rank, g in enumerate(ideal, start=1))
    return dcg / idcg if idcg > 0 else 0.0


def retrieval_report(runs: Mapping[str, Sequence[str]], qrels: Mapping[str, object],
                     ks: Sequence[int] = (1, 3, 10)) -> dict[str, float]:
    """Mean hit@k, recall@k, MRR@10 and nDCG@10 over queries that have relevant documents."""
    queries = [q for q in runs if _gains(qrels.get(q, {}))]
    if not queries:
        raise ValueError("retrieval_report: no query has a relevant document")
    out: dict[str, float] = {}
    for k in ks:
        out[f"hit@{k}"] = sum(hit_at_k(runs[q], qrels[q], k) for q in queries) / len(queries)
        out[f"recall@{k}"] = sum(recall_at_k(runs[q], qrels[q], k) for q in queries) / len(queries)
    out["mrr@10"] = sum(reciprocal_rank(runs[q], qrels[q], 10) for q in queries) / len(queries)
    out["ndcg@10"] = sum(ndcg_at_k(runs[q], qrels[q], 10) for q in queries) / len(queries)
    out["queries"] = float(len(queries))
    return out
