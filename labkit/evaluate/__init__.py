"""Yardsticks: domain accuracy (``domain``), the general probe (``probe``), forgetting before vs after
(``forgetting``), retrieval metrics (``retrieval``), claims (``claims``) and side-by-side tables of arms
vs the baseline (``table``).

The names below load on first use: importing a light submodule (``claims``, ``table``, the CLI's
``forgetting`` parser) must not pull torch in with the package.
"""

from __future__ import annotations

import importlib

_WHERE = {
    "DomainReport": "domain", "evaluate_domain": "domain", "format_prompt": "domain",
    "ChecksReport": "probe", "ProbeReport": "probe", "general_probe": "probe", "generation_checks": "probe",
    "hit_at_k": "retrieval", "ndcg_at_k": "retrieval", "recall_at_k": "retrieval",
    "reciprocal_rank": "retrieval", "retrieval_report": "retrieval",
    "Comparison": "table", "compare": "table",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'labkit.evaluate' has no attribute {name!r}")
    return getattr(importlib.import_module(f"labkit.evaluate.{_WHERE[name]}"), name)
