import math

import pytest

from labkit.evaluate.retrieval import hit_at_k, ndcg_at_k, reciprocal_rank, retrieval_report


def test_hand_computed_toy():
    ranked = ["d3", "d1", "d7"]
    assert hit_at_k(ranked, {"d1"}, 1) == 0.0
    assert hit_at_k(ranked, {"d1"}, 2) == 1.0
    assert reciprocal_rank(ranked, {"d1"}) == 0.5
    # d1 at rank 2 and d7 at rank 3 relevant; ideal puts them at ranks 1 and 2.
    dcg = 1 / math.log2(3) + 1 / math.log2(4)
    idcg = 1 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_at_k(ranked, {"d1", "d7"}, 10) == pytest.approx(dcg / idcg)


def test_report_averages_three_queries():
    runs = {"q1": ["a", "b"], "q2": ["c", "d"], "q3": ["e", "f"]}
    qrels = {"q1": {"a"}, "q2": {"d"}, "q3": {"x"}}
    report = retrieval_report(runs, qrels, ks=(1,))
    assert report["hit@1"] == pytest.approx(1 / 3)
    assert report["mrr@10"] == pytest.approx((1 + 0.5 + 0) / 3)
