"""Retrieval-augmented generation, small enough to read: chunk, retrieve, answer, measure.

What it is for: lesson 1 ("When RAG hits the wall") measures how often the retriever finds the
right monograph (hit@k) against how often the base model then answers right, and what each
answer costs in prompt tokens and seconds; a stale-knowledge copy of the formulary shows what
RAG does well (an updated document is an updated answer). Lesson 6 (RAFT) builds its training rows
from the same passages, oracle contexts and retrievers.

One idea per module:

* :mod:`~labkit.rag.chunk` - documents into ~300-character passages (``<doc_id>#<n>``);
* :mod:`~labkit.rag.retrieve` - :class:`DenseRetriever` (MiniLM), :class:`BM25Retriever`,
  :class:`HybridRetriever` (reciprocal-rank fusion), and document-level hit@k / MRR;
* :mod:`~labkit.rag.answer` - RAG prompts with labelled passages, batched answers, oracle contexts;
* :mod:`~labkit.rag.stale` - the formulary with a few dosing facts revised;
* :mod:`~labkit.rag.raft` - RAFT training rows: the oracle among distractors, quote-then-answer targets;
* :mod:`~labkit.rag.facts` - the facts of a reply read leniently, JSON or prose ("facts right").

Usage::

    from labkit import models, rag
    from labkit.data.formulary import load_split

    passages = rag.formulary_passages()                   # 1,137 passages of the 312 monographs
    retriever = rag.DenseRetriever(passages)              # MiniLM; embeddings cached after the first time
    rows = load_split("test")
    rag.retrieval_scores(retriever, rows)                 # {"hit@1": ..., "hit@3": ..., "hit@5": ..., "mrr@10": ...}
    contexts = rag.retrieved_contexts(retriever, rows, k=3)
    report = rag.evaluate_rag(models.load(), rows, contexts, limit=30)
    report.accuracy, report.seconds_per_answer, report.prompt_tokens_per_answer
"""

from labkit.rag.answer import (
    RAG_INSTRUCTION, RagAnswers, answer, evaluate_rag, format_passages, oracle_contexts, rag_messages,
    retrieved_contexts, states_answer,
)
from labkit.rag.chunk import chunk_documents, chunk_spans, formulary_passages, rebuild
from labkit.rag.facts import fact_scores, read_facts
from labkit.rag.retrieve import (
    BM25Retriever, DenseRetriever, Hit, HybridRetriever, Retriever, question_of, retrieval_scores,
)
from labkit.rag.raft import RaftConfig, build_raft, length_report, quote_check
from labkit.rag.stale import FactChange, StaleCopy, stale_copy

__all__ = [
    "BM25Retriever", "DenseRetriever", "FactChange", "Hit", "HybridRetriever", "RAG_INSTRUCTION", "RagAnswers",
    "Retriever", "StaleCopy", "answer", "chunk_documents", "chunk_spans", "evaluate_rag", "fact_scores", "format_passages",
    "formulary_passages", "oracle_contexts", "question_of", "rag_messages", "read_facts", "rebuild", "retrieval_scores",
    "retrieved_contexts", "stale_copy", "states_answer", "RaftConfig", "build_raft", "length_report", "quote_check",
]
