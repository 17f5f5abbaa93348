"""Yardsticks: retrieval metrics (``retrieval``), domain accuracy and the general probe."""

from labkit.evaluate.retrieval import hit_at_k, ndcg_at_k, recall_at_k, reciprocal_rank, retrieval_report

__all__ = ["hit_at_k", "ndcg_at_k", "recall_at_k", "reciprocal_rank", "retrieval_report"]
