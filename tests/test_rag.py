"""The RAG engine: chunks cover their documents, retrieval metrics equal hand counts, the oracle
shows the gold passage, the per-row evaluator scores RAG prompts, the stale copy changes only
what it says it changes. No causal LM is loaded: generation is replaced by a stand-in."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest

from labkit.data import formulary as F
from labkit.evaluate import domain
from labkit.rag import (
    BM25Retriever, DenseRetriever, Hit, HybridRetriever, Retriever, chunk_documents, chunk_spans, evaluate_rag,
    formulary_passages, oracle_contexts, question_of, rag_messages, rebuild, retrieval_scores, retrieved_contexts,
    stale_copy,
)

TINY_DOCS = [
    {"id": "cats", "title": "Cats", "text": "Cats purr when they are content and sleep sixteen hours a day."},
    {"id": "volcano", "title": "Volcanoes", "text": "A volcano erupts when magma pushes up through the crust."},
    {"id": "bread", "title": "Bread", "text": "Bread rises because yeast ferments sugar into carbon dioxide."},
    {"id": "tides", "title": "Tides", "text": "Tides follow the pull of the moon on the oceans."},
    {"id": "chess", "title": "Chess", "text": "In chess the bishop moves diagonally across the board."},
]
# The third question is labelled with the wrong document on purpose: every retriever puts the cat
# document first, so by hand hit@1 = 2/3; with 5 one-passage documents hit@5 = 3/3; and the MRR
# is (1 + 1 + 1/r) / 3 for some rank r of the tides document in 2..5.
TINY_ROWS = [
    {"question": "Why does bread rise?", "doc_ids": ["bread"]},
    {"question": "How does a bishop move in chess?", "doc_ids": ["chess"]},
    {"question": "Why do cats purr?", "doc_ids": ["tides"]},
]


@pytest.fixture(scope="module")
def minilm():
    from labkit.models import load_embedder

    return load_embedder("minilm-l6")


@pytest.fixture(scope="module")
def passages():
    return formulary_passages()


# -- chunking ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("size,overlap", [(300, 0), (300, 80), (120, 30)])
def test_chunks_cover_every_formulary_document(size, overlap):
    docs = F.corpus()
    chunks = chunk_documents(docs, size=size, overlap=overlap)
    assert rebuild(chunks) == {d["id"]: d["text"] for d in docs}
    assert len({c["id"] for c in chunks}) == len(chunks)
    text = {d["id"]: d["text"] for d in docs}
    for c in chunks:
        assert c["id"].startswith(c["doc_id"] + "#") and c["text"] == text[c["doc_id"]][c["start"]:c["end"]]
        # Longer than size only when a single sentence is (never cut mid-sentence below 2 x size).
        assert len(c["text"]) <= size or chunk_spans(c["text"], size) == [(0, len(c["text"]))]
    if overlap == 0:
        for d in docs:  # plain concatenation gives the document back
            assert "".join(c["text"] for c in chunks if c["doc_id"] == d["id"]) == d["text"]


def test_chunk_spans_by_hand():
    text = "One two.\nThree four five.\nSix."
    assert chunk_spans(text, size=18) == [(0, 9), (9, 26), (26, 30)]  # lines, each kept whole
    assert chunk_spans(text, size=30) == [(0, 30)]
    assert chunk_spans(text, size=26, overlap=17) == [(0, 26), (9, 30)]  # repeats "Three four five.\n"
    with pytest.raises(ValueError):
        rebuild([{"id": "d#1", "doc_id": "d", "text": "x", "start": 5, "end": 6}])  # a gap


# -- retrieval ----------------------------------------------------------------------------------------

class Fixed(Retriever):
    """Returns a fixed ranking per question: metrics must equal a hand count."""

    def __init__(self, passages, rankings):
        super().__init__(passages)
        self.rankings = rankings

    def _search(self, questions, k):
        index = {p["id"]: i for i, p in enumerate(self.passages)}
        return [[self.hit(index[pid], 1.0) for pid in self.rankings[q][:k]] for q in questions]


def test_document_level_metrics_by_hand():
    pas = [{"id": f"{d}#{n}", "doc_id": d, "text": "x"} for d in "abc" for n in range(2)]
    rows = [{"question": "q1", "doc_ids": ["a"]}, {"question": "q2", "doc_ids": ["b", "c"]},
            {"question": "q3", "doc_ids": ["c"]}]
    fixed = Fixed(pas, {"q1": ["a#1", "b#0"],          # a passage of a at rank 1
                        "q2": ["a#0", "a#1", "c#1"],   # the second gold doc at rank 3
                        "q3": ["b#0", "b#1", "a#0"]})  # never
    scores = retrieval_scores(fixed, rows, ks=(1, 3))
    assert scores == {"hit@1": pytest.approx(1 / 3), "hit@3": pytest.approx(2 / 3),
                      "mrr@10": pytest.approx((1 + 1 / 3 + 0) / 3), "queries": 3.0}


@pytest.mark.parametrize("kind", ["dense", "bm25", "hybrid"])
def test_hit_at_k_on_a_tiny_corpus_equals_the_hand_count(kind, minilm):
    pas = chunk_documents(TINY_DOCS)
    assert len(pas) == 5  # one passage per document
    dense = DenseRetriever(pas, model=minilm)
    retriever = {"dense": dense, "bm25": BM25Retriever(pas), "hybrid": HybridRetriever(dense, BM25Retriever(pas))}[kind]
    top = [hits[0].doc_id for hits in retriever.retrieve_many([r["question"] for r in TINY_ROWS], k=1)]
    assert top == ["bread", "chess", "cats"]
    scores = retrieval_scores(retriever, TINY_ROWS, ks=(1, 5))
    assert scores["hit@1"] == pytest.approx(2 / 3) and scores["hit@5"] == 1.0
    assert (2 + 1 / 5) / 3 - 1e-9 <= scores["mrr@10"] <= (2 + 1 / 2) / 3 + 1e-9
    hits = retriever.retrieve("Why does bread rise?", k=3)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True) and isinstance(hits[0], Hit)
    if kind == "hybrid":  # both rank bread first: 1/61 + 1/61
        assert hits[0].score == pytest.approx(2 / 61)


def test_dense_embeddings_are_cached_for_embedded_models(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_CACHE_DIR", str(tmp_path))
    pas = chunk_documents(TINY_DOCS)
    first = DenseRetriever(pas, model="minilm-l6")
    assert len(list((tmp_path / "rag").glob("minilm-l6-*.safetensors"))) == 1
    again = DenseRetriever(pas, model="minilm-l6")
    assert (again.embeddings == first.embeddings).all()
    assert not list((tmp_path / "rag").glob("*.pt"))  # safetensors only: nothing a pickle loader would read
    assert again.retrieve("Why does bread rise?", 1)[0].doc_id == "bread"


def test_dense_retrieval_on_the_formulary_is_far_above_chance(minilm):
    """20 real test questions against their 30 gold monographs, the 12 class overviews (which name
    every drug) and 10 more monographs: ~200 passages, a sixth of the corpus, so it takes seconds."""
    rows = F.load_split("test")[:20]
    gold = {d for r in rows for d in r["doc_ids"]}
    docs = F.corpus()
    keep = gold | {d["id"] for d in docs[:12]} | set([d["id"] for d in docs[12:] if d["id"] not in gold][:10])
    pas = chunk_documents([d for d in docs if d["id"] in keep])
    scores = retrieval_scores(DenseRetriever(pas, model=minilm), rows, ks=(5,))

    def chance(row):  # a random ranking: 1 - P(no gold passage among the first 5)
        g = sum(p["doc_id"] in row["doc_ids"] for p in pas)
        return 1 - math.comb(len(pas) - g, 5) / math.comb(len(pas), 5)

    random_hit5 = sum(map(chance, rows)) / len(rows)
    assert random_hit5 < 0.3 and scores["hit@5"] >= 0.85, (scores, random_hit5)


# -- answering ----------------------------------------------------------------------------------------

def test_oracle_prompt_holds_the_gold_passage(passages):
    rows = F.load_split("test")
    contexts = oracle_contexts(rows, passages)
    by_category = {}
    for row, hits in zip(rows, contexts):
        by_category.setdefault(row["category"], (row, hits))
        assert hits and all(h.doc_id in row["doc_ids"] for h in hits)
    dose_row, dose_hits = by_category["dosing"]
    a = dose_row["answer"]
    prompt = rag_messages(dose_row, dose_hits)
    assert prompt[0]["content"].startswith(F.SYSTEM_PROMPT)
    user = prompt[1]["content"]
    assert f"Usual adult dose: {a['dose_mg']} mg {a['frequency']}." in user
    assert all(h.text.strip() in user and f"[{h.passage_id}]" in user for h in dose_hits)
    assert user.endswith("Question: " + question_of(dose_row))
    pair_row, pair_hits = by_category["interaction"]  # one passage from each drug's monograph
    assert sorted(h.doc_id for h in pair_hits) == sorted(pair_row["doc_ids"])


class FakeTokenizer:
    def apply_chat_template(self, messages, add_generation_prompt=True, tokenize=False):
        return "\n".join(f"{m['role']}: {m['content']}" for m in messages) + "\nassistant:"

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": text.split()}


def test_per_row_prompts_score_a_model_that_reads_its_passages(passages, monkeypatch):
    """A stand-in model answers right exactly when its prompt shows passages: with oracle contexts
    it scores 100%, with the rows' own prompts 0%, and each prediction keeps its passages and cost."""
    rows = F.load_split("test")
    truth = {question_of(r): r["messages"][-1]["content"] for r in rows}

    def fake_generate(loaded, prompts, max_new_tokens=64, batch_size=16, **_):
        users = [p[-1]["content"] for p in prompts]
        replies = [truth[u.rsplit("Question: ", 1)[1]] if "Passages:" in u else "I am not sure." for u in users]
        tok = loaded.tokenizer
        tokens = [len(tok(tok.apply_chat_template(p))["input_ids"]) for p in prompts]
        return {"replies": replies, "prompt_tokens": tokens, "seconds": [0.0] * len(prompts), "total_seconds": 0.0}

    monkeypatch.setattr(domain, "generate_timed", fake_generate)
    lm = SimpleNamespace(tokenizer=FakeTokenizer(), model=None)
    contexts = oracle_contexts(rows, passages)
    report = evaluate_rag(lm, rows, contexts, limit=9)
    assert report.n == 9 and report.accuracy == 1.0 and report.json_valid_rate == 1.0
    assert set(report.per_category) == {"interaction", "dosing", "profile"}
    for p in report.predictions:
        assert rows[p["row_index"]]["id"] == p["id"]
        assert p["passage_ids"] == [h.passage_id for h in contexts[p["row_index"]]]
        assert p["prompt_tokens"] > 20 and p["seconds"] >= 0
    plain = domain.evaluate_domain(lm, rows, limit=9, system="Answer in JSON.", shots=rows[:1])  # today's signature
    assert plain.accuracy == 0.0 and plain.prompt_tokens_per_answer < report.prompt_tokens_per_answer
    assert "prompt tokens per answer" in str(report)
    with pytest.raises(ValueError, match="prompts="):
        domain.evaluate_domain(lm, rows, prompts=[[]] * len(rows), system="x")


def test_retrieved_contexts_feed_rag_messages(passages):
    bm25 = BM25Retriever(passages)
    rows = F.load_split("test")[:3]
    contexts = retrieved_contexts(bm25, rows, k=3)
    assert [len(c) for c in contexts] == [3, 3, 3]
    assert all(f"[{h.passage_id}]" in rag_messages(r, c)[1]["content"] for r, c in zip(rows, contexts) for h in c)


# -- stale knowledge ----------------------------------------------------------------------------------

def test_stale_copy_changes_exactly_the_chosen_facts(passages):
    corpus, rows = F.corpus(), F.load_split("test")
    stale = stale_copy(rows, corpus, n=20, seed=7)
    assert len(stale.changes) == 20 and len({c.drug for c in stale.changes}) == 20
    assert stale_copy(rows, corpus, n=20, seed=7).changes == stale.changes  # deterministic
    changed = {c.doc_id: c for c in stale.changes}
    for old, new in zip(corpus, stale.corpus):
        if old["id"] not in changed:
            assert new == old
            continue
        c = changed[old["id"]]
        diff = [(a, b) for a, b in zip(old["text"].splitlines(), new["text"].splitlines()) if a != b]
        assert len(old["text"].splitlines()) == len(new["text"].splitlines()) and len(diff) == 1
        assert diff[0][0].startswith("Usual adult dose: ") and diff[0][1].startswith("Usual adult dose: ")
        assert f" {c.new} mg " in diff[0][1] and f" {c.old} mg " in diff[0][0] and c.new != c.old
    row_ids = {r for c in stale.changes for r in c.row_ids}
    assert len(row_ids) >= 20
    for old, new in zip(rows, stale.rows):
        if old["id"] not in row_ids:
            assert new == old
            continue
        c = next(c for c in stale.changes if old["id"] in c.row_ids)
        assert {k for k in old if old[k] != new[k]} == {"answer", "messages"}
        assert new["answer"] == {**old["answer"], "dose_mg": c.new} and old["answer"]["dose_mg"] == c.old
        assert json.loads(new["messages"][-1]["content"]) == new["answer"]
        assert new["messages"][:-1] == old["messages"][:-1]
    assert {r["id"] for r in stale.changed_rows} == row_ids and len(stale.changed_docs) == 20
    # The oracle finds the revised line in the revised corpus.
    new_passages = formulary_passages(corpus=stale.corpus)
    for row, hits in zip(stale.changed_rows, oracle_contexts(stale.changed_rows, new_passages)):
        assert f"{row['answer']['dose_mg']} mg {row['answer']['frequency']}" in hits[0].text


def test_updated_dense_index_reembeds_only_changed_passages(minilm):
    pas = chunk_documents(TINY_DOCS)
    dense = DenseRetriever(pas, model=minilm, cache=False)
    revised = [dict(p, text="Tides follow the pull of the sun and the moon.") if p["doc_id"] == "tides" else p
               for p in pas]
    updated = dense.updated(revised)
    assert updated.reembedded == 1 and [p["id"] for p in updated.passages] == [p["id"] for p in pas]
    fresh = DenseRetriever(revised, model=minilm, cache=False)
    assert (updated.embeddings - fresh.embeddings).abs().max() < 1e-5
    assert updated.retrieve("What pulls the tides?", 1)[0].text.startswith("Tides follow the pull of the sun")
    assert dense.updated(pas).reembedded == 0


def test_facts_are_read_from_json_or_prose():
    from labkit.rag import fact_scores, read_facts

    dose = {"id": "d", "category": "dosing", "answer": {"dose_mg": 10, "frequency": "twice daily"}}
    pair = {"id": "i", "category": "interaction",
            "answer": {"severity": "major", "mechanism": "additive bleeding", "action": "avoid"}}
    assert read_facts(dose, "Take 10 mg twice daily.") == {"dose_mg": True, "frequency": True}
    assert read_facts(dose, '```json\n{"dose_mg": 10, "frequency": "once daily"}\n```') == \
        {"dose_mg": True, "frequency": False}
    assert read_facts(dose, "5 mg or 10 mg twice daily") == {"dose_mg": False, "frequency": True}  # hedged dose
    assert all(read_facts(pair, "Major interaction: additive bleeding. Avoid the combination.").values())
    scores = fact_scores([dose, pair], [{"id": "d", "reply": "10 mg twice daily"}, {"id": "i", "reply": "minor"}])
    assert scores == {"facts_right": 0.5, "fact_credit": 0.5, "n": 2}
