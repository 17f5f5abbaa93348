"""Answer with retrieved passages in the prompt (RAG), and with perfect retrieval (the oracle).

A RAG prompt is the row's own system prompt (the answer format) plus one instruction, then the
``k`` passages, each labelled with its passage id so an answer can cite it, then the question::

    system: You answer questions about the Northwind formulary ... Reply with one JSON object ...
            Use the passages below; each starts with its id in square brackets.
    user:   Passages:
            [drug:luviparex#0] LuviParex
            Indication of LuviParex: clot prevention. ...

            Question: What is the usual adult dose of LuviParex?

:func:`oracle_contexts` hands each row the passages that state its answer, so retrieval is right
by construction: whatever the model still gets wrong is the model's doing, not the retriever's.
"""

from __future__ import annotations

from dataclasses import dataclass

from labkit.evaluate.domain import DomainReport, evaluate_domain, generate_measured
from labkit.rag.retrieve import Hit, Retriever, question_of

RAG_INSTRUCTION = "Use the passages below; each starts with its id in square brackets."


def format_passages(hits: list[Hit]) -> str:
    """Passages as the prompt shows them: ``[id] title`` then the text, a blank line between."""
    return "\n\n".join(f"[{h.passage_id}] {h.title}".rstrip() + "\n" + h.text.strip() for h in hits)


def rag_messages(row: dict, hits: list[Hit], system: str | None = None,
                 instruction: str = RAG_INSTRUCTION) -> list[dict]:
    """The chat messages for one row: system (``system`` or the row's own) + instruction, passages, question."""
    if system is None:
        system = next((t["content"] for t in row.get("messages", []) if t["role"] == "system"), "")
    return [{"role": "system", "content": f"{system}\n{instruction}".strip()},
            {"role": "user", "content": f"Passages:\n{format_passages(hits)}\n\nQuestion: {question_of(row)}"}]


def retrieved_contexts(retriever: Retriever, rows: list[dict], k: int = 3) -> list[list[Hit]]:
    """The top ``k`` passages for each row's question, one batched search."""
    return retriever.retrieve_many([question_of(r) for r in rows], k)


def _class_plural(drug: str) -> str | None:
    from labkit.data.formulary import CLASSES

    return next((c.plural for c in CLASSES if drug.endswith(c.suffix)), None)


def states_answer(row: dict, passage: dict) -> bool:
    """Does ``passage`` state ``row``'s answer? Formulary rows by their facts (for an interaction,
    the line of one drug's monograph about the other drug's class); other rows when every value of
    ``row["answer"]`` appears in the text."""
    text, answer = passage["text"].lower(), row.get("answer")
    if not isinstance(answer, dict):
        return False
    category, drugs = row.get("category"), row.get("drugs") or []
    if category == "dosing" and drugs:
        return f"{answer['dose_mg']} mg {answer['frequency']}".lower() in text
    if category == "profile" and drugs:
        return answer["class"].lower() in text and answer["indication"].lower() in text
    if category == "interaction" and len(drugs) == 2:
        others = [d for d in drugs if "drug:" + d.lower() != passage["doc_id"]] or drugs[:1]
        plural = _class_plural(others[0])
        return plural is not None and plural.lower() in text
    return all(str(v).lower() in text for v in answer.values())


def oracle_contexts(rows: list[dict], passages: list[dict]) -> list[list[Hit]]:
    """Each row's gold passages: those of its ``doc_ids`` that state its answer (all of the gold
    documents' passages when none does), in corpus order, each with score 1.0."""
    by_doc: dict[str, list[dict]] = {}
    for p in passages:
        by_doc.setdefault(p["doc_id"], []).append(p)
    contexts = []
    for row in rows:
        candidates = [p for doc in row.get("doc_ids", []) for p in by_doc.get(doc, [])]
        if not candidates:
            raise ValueError(f"oracle_contexts: no passage of row {row.get('id')!r}'s doc_ids {row.get('doc_ids')}")
        gold = [p for p in candidates if states_answer(row, p)] or candidates
        contexts.append([Hit(p["id"], p["doc_id"], p["text"], 1.0, p.get("title", "")) for p in gold])
    return contexts


@dataclass
class RagAnswers:
    """Replies with what each one was shown: the passage ids, prompt size and time per answer."""

    replies: list[str]
    passage_ids: list[list[str]]
    prompt_tokens: list[int]
    seconds: list[float]


def answer(loaded, rows: list[dict], contexts: list[list[Hit]], system: str | None = None,
           max_new_tokens: int = 64, batch_size: int = 16) -> RagAnswers:
    """Greedy replies of ``loaded`` to each row's question with its passages in the prompt."""
    if len(contexts) != len(rows):
        raise ValueError(f"answer: {len(contexts)} contexts for {len(rows)} rows")
    prompts = [rag_messages(row, hits, system) for row, hits in zip(rows, contexts)]
    measured = generate_measured(loaded, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size)
    return RagAnswers([m["reply"] for m in measured], [[h.passage_id for h in hits] for hits in contexts],
                      [m["prompt_tokens"] for m in measured], [m["seconds"] for m in measured])


def evaluate_rag(loaded, rows: list[dict], contexts: list[list[Hit]], system: str | None = None,
                 limit: int | None = None, max_new_tokens: int | None = None, batch_size: int = 16) -> DomainReport:
    """:func:`~labkit.evaluate.domain.evaluate_domain` with RAG prompts; each prediction also
    carries the ``passage_ids`` it was shown (``limit`` picks a category-balanced subset)."""
    if len(contexts) != len(rows):
        raise ValueError(f"evaluate_rag: {len(contexts)} contexts for {len(rows)} rows")
    prompts = [rag_messages(row, hits, system) for row, hits in zip(rows, contexts)]
    report = evaluate_domain(loaded, rows, max_new_tokens=max_new_tokens, batch_size=batch_size, limit=limit,
                             prompts=prompts)
    for p in report.predictions:
        p["passage_ids"] = [h.passage_id for h in contexts[p["row_index"]]]
    return report
