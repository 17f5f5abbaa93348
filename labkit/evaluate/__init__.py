"""Yardsticks: domain accuracy (``domain``), the general probe (``probe``), retrieval metrics
(``retrieval``) and side-by-side tables of arms vs the baseline (``table``)."""

from labkit.evaluate.domain import DomainReport, evaluate_domain, format_prompt
from labkit.evaluate.probe import ChecksReport, ProbeReport, general_probe, generation_checks
from labkit.evaluate.retrieval import hit_at_k, ndcg_at_k, recall_at_k, reciprocal_rank, retrieval_report
from labkit.evaluate.table import Comparison, compare

__all__ = [
    "ChecksReport", "Comparison", "DomainReport", "ProbeReport", "compare", "evaluate_domain", "format_prompt",
    "general_probe", "generation_checks", "hit_at_k", "ndcg_at_k", "recall_at_k", "reciprocal_rank",
    "retrieval_report",
]
