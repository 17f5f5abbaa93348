"""The RAG / fine-tune / RAFT flowchart as a function."""

from __future__ import annotations

import itertools

import pytest

from labkit import decide
from labkit.decide import Situation, recommend


def _expected(changes, fmt, terms, both):
    if changes:
        return "rag"
    if fmt or terms:
        return "fine-tune"
    return "raft" if both else "rag"


@pytest.mark.parametrize("answers", list(itertools.product([False, True], repeat=4)))
def test_every_path_through_the_flowchart(answers):
    rec = recommend(Situation(*answers))
    assert rec.approach == _expected(*answers)
    # The walk stops at the first yes.
    assert len(rec.path) == (answers.index(True) + 1 if True in answers else 4)


def test_the_seed_decision_points():
    legal = recommend(Situation(needs_consistent_format=True))
    assert legal.approach == "fine-tune" and "format" in legal.reason
    assert recommend(Situation()).approach == "rag"
    trail = recommend(Situation(search_returns_wrong_documents=True))
    assert any("embedding model" in n for n in trail.notes)


def test_too_few_examples_means_not_yet():
    rec = recommend(Situation(domain_terms_misused=True, examples=120))
    assert rec.approach == "fine-tune" and "do not fine-tune yet" in rec.notes[0]
    assert not recommend(Situation(domain_terms_misused=True, examples=2000)).notes
    assert not recommend(Situation(examples=10)).notes  # RAG needs no training data
    with pytest.raises(ValueError):
        Situation(examples=-1)


def test_fresh_data_with_format_problems_mentions_raft():
    rec = recommend(Situation(data_changes_often=True, needs_consistent_format=True))
    assert rec.approach == "rag" and "RAFT" in rec.notes[0]
    assert "=> Use RAG" in rec.to_text()


def test_widget_follows_the_toggles():
    w = decide.widget()
    result = w.children[-1]
    assert "RAG" in result.value
    format_toggle = w.children[1].children[1]
    format_toggle.value = True
    assert "FINE-TUNE" in result.value
    assert w._repr_mimebundle_()["text/markdown"] == decide.flowchart_markdown()
