"""RAFT training rows: a question, its passages (the oracle among distractors, or distractors only)
and an answer that quotes the passage it relies on (Zhang et al. 2024, "RAFT: Adapting Language
Model to Domain Specific RAG").

What a row teaches depends on what its context holds:

* **oracle rows** (a share ``oracle_fraction`` = P of the rows, 0.7 by default): the passage(s)
  that state the answer (the *oracle*, :func:`labkit.rag.oracle_contexts`) shuffled among
  ``num_distractors`` passages that do not. The target finds the line, quotes it verbatim between
  ``##begin_quote##`` and ``##end_quote##``, then gives the JSON answer on its own last line;
* **distractor-only rows** (the other 1 - P): as many passages as an oracle row shows, none of
  them an oracle, so the model cannot tell the two kinds apart by counting. The target is either
  the same answer (``no_oracle_target="memory"``, as in the paper: fall back on what training
  taught) or an explicit ``{"answer": "not in the passages"}`` (``"abstain"``).

Distractors are ``"hard"`` (the passages a retriever ranks highest for the question that are not
an oracle: in the formulary, near-twin monographs of the same drug class) or ``"random"``.

Exactly ``round(P * n)`` rows (half rounded up) hold the oracle, chosen by a seeded draw, not a
coin flip per row; every choice (which rows, which distractors, the passage order) comes from
``seed`` and is recorded on the row under ``"raft"``. Rows are chat rows the trainer takes as they
are, and keep the source row's ``id``, ``category``, ``answer``, ``drugs`` and ``doc_ids``.

Rows are built from *chunks* (:func:`labkit.rag.formulary_passages`; lesson 6 cuts ~160-character
passages, one or two monograph lines, for rows of ~340 tokens), not whole ~760-character
monographs: with whole monographs an oracle and three distractors come to ~1,000 tokens, several
times the cost of a training step on a CPU. :func:`length_report` gives the token
lengths of built rows; a row over ``max_length`` loses distractors (``overflow="trim"``, counted
in a warning) or stops the build (``overflow="error"``).

>>> from labkit import rag
>>> passages = rag.formulary_passages()                                   # doctest: +SKIP
>>> rows = rag.build_raft(train_rows, passages, rag.RaftConfig(), retriever=rag.DenseRetriever(passages))  # doctest: +SKIP
>>> rag.length_report(rows)                                               # doctest: +SKIP
{'rows': 480, 'min': ..., 'median': ..., 'max': ..., 'over': 0, 'max_length': 512}
"""

from __future__ import annotations

import json
import math
import random
import re
import statistics
import warnings
from dataclasses import dataclass
from typing import ClassVar

from labkit.config import ConfigBase, ConfigError, _is_int, _is_number
from labkit.rag.answer import RAG_INSTRUCTION, oracle_contexts, rag_messages, states_answer
from labkit.rag.retrieve import Hit, Retriever, question_of

QUOTE_BEGIN, QUOTE_END = "##begin_quote##", "##end_quote##"
ABSTAIN_TEXT = "not in the passages"
ABSTAIN_ANSWER = {"answer": ABSTAIN_TEXT}
#: The instruction after the system prompt when answers quote first (``cot=True``).
COT_INSTRUCTION = (f"Use the passages below; each starts with its id in square brackets. Quote the line that "
                   f"answers between {QUOTE_BEGIN} and {QUOTE_END}, then give the JSON object on its own last line.")
NO_ORACLE_REASON = "No passage answers this question"
_QUOTE_RE = re.compile(re.escape(QUOTE_BEGIN) + r"(.*?)" + re.escape(QUOTE_END), re.S)


@dataclass(frozen=True)
class RaftConfig(ConfigBase):
    """How a RAFT training set is built (the builder's equivalent of PEFT's ``LoraConfig``).

    Attributes:
        oracle_fraction: P, the share of rows whose context holds the oracle passage(s); the rest
            hold distractors only. The article and the paper use about 0.7 (0.8 in some of the
            paper's runs); 1.0 is "always show the right page", 0.0 "never".
        num_distractors: passages that do not state the answer, shown beside the oracle (3-4 in
            the article). A distractor-only row shows as many passages in all as an oracle row.
        distractors: ``"hard"``: the passages the retriever ranks highest for the question that
            are not an oracle (needs ``retriever=``); ``"random"``: any non-oracle passages.
        no_oracle_target: what a distractor-only row teaches. ``"memory"``: the same answer, from
            what the model knows (the paper's choice); ``"abstain"``: the explicit answer
            ``{"answer": "not in the passages"}``.
        cot: answers quote the line that answers between ``##begin_quote##`` and
            ``##end_quote##`` before the JSON (the paper's chain of thought, shortened); ``False``
            trains the JSON answer alone.
        seed: seeds every choice: which rows hold the oracle, random distractors, passage order.
        max_length: the longest row in tokens (chat template included); match the
            ``TrainConfig.max_length`` the rows will be trained with.
        overflow: a row longer than ``max_length``: ``"trim"`` drops distractors, last shown
            first, until it fits (a warning counts them); ``"error"`` refuses to build.
        system: the system prompt of every row; ``None`` keeps each row's own.
        depth: how many retrieved passages hard distractors are picked from (ranked best first).
    """

    oracle_fraction: float = 0.7
    num_distractors: int = 3
    distractors: str = "hard"
    no_oracle_target: str = "memory"
    cot: bool = True
    seed: int = 0
    max_length: int = 512
    overflow: str = "trim"
    system: str | None = None
    depth: int = 20

    _choices: ClassVar[dict[str, tuple[str, ...]]] = {
        "distractors": ("hard", "random"), "no_oracle_target": ("memory", "abstain"), "overflow": ("trim", "error")}

    def __post_init__(self):
        p = self.oracle_fraction
        if not _is_number(p) or not 0 <= p <= 1:
            raise ConfigError(f"oracle_fraction={p!r}: must be a number from 0 to 1 (the share of rows holding the oracle)")
        if not _is_int(self.num_distractors) or self.num_distractors < 0:
            raise ConfigError(f"num_distractors={self.num_distractors!r}: must be an integer >= 0 (the article uses 3-4)")
        for name, allowed in self._choices.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ConfigError(f"{name}={value!r}: expected one of {', '.join(map(repr, allowed))}")
        if not isinstance(self.cot, bool):
            raise ConfigError(f"cot={self.cot!r}: must be True or False")
        if not _is_int(self.seed):
            raise ConfigError(f"seed={self.seed!r}: must be an integer")
        if not _is_int(self.max_length) or self.max_length < 32:
            raise ConfigError(f"max_length={self.max_length!r}: must be an integer >= 32 (tokens per row)")
        if self.system is not None and not isinstance(self.system, str):
            raise ConfigError(f"system={self.system!r}: must be a string or None")
        if not _is_int(self.depth) or self.depth < 1:
            raise ConfigError(f"depth={self.depth!r}: must be a positive integer")

    def instruction(self) -> str:
        return COT_INSTRUCTION if self.cot else RAG_INSTRUCTION


def oracle_count(n: int, fraction: float) -> int:
    """How many of ``n`` rows hold the oracle: ``fraction * n`` rounded half up (70 of 100 at 0.7)."""
    return min(n, math.floor(fraction * n + 0.5 + 1e-9))


# ---------------------------------------------------------------------------------------------
# answers


def quote_line(row: dict, passage: Hit | dict) -> str:
    """The line of an oracle ``passage`` that states ``row``'s answer, verbatim (stripped): the span a
    RAFT answer quotes. The whole passage (stripped) when no single line states it."""
    text = passage.text if isinstance(passage, Hit) else passage["text"]
    doc_id = passage.doc_id if isinstance(passage, Hit) else passage["doc_id"]
    for line in text.splitlines():
        if line.strip() and states_answer(row, {"text": line, "doc_id": doc_id}):
            return line.strip()
    return text.strip()


def target(row: dict, oracle: list[Hit] | None, config: RaftConfig) -> tuple[str, str | None]:
    """The answer a row trains (and the quoted span, None when it quotes nothing)."""
    answer = json.dumps(row["answer"], ensure_ascii=False)
    if oracle:
        if not config.cot:
            return answer, None
        quote = quote_line(row, oracle[0])
        return f"{QUOTE_BEGIN}{quote}{QUOTE_END}\n{answer}", quote
    if config.no_oracle_target == "abstain":
        abstain = json.dumps(ABSTAIN_ANSWER)
        return (f"{NO_ORACLE_REASON}.\n{abstain}" if config.cot else abstain), None
    return (f"{NO_ORACLE_REASON}; from what I know:\n{answer}" if config.cot else answer), None


# ---------------------------------------------------------------------------------------------
# building


def _tokenizer(tokenizer=None, model: str = "smollm2-135m-instruct"):
    if tokenizer is not None:
        return tokenizer
    from transformers import AutoTokenizer

    from labkit.models import resolve

    return AutoTokenizer.from_pretrained(resolve(model)[0])


def row_tokens(row: dict, tokenizer) -> int:
    """A chat row's length in tokens, chat template included (what the trainer sees)."""
    text = tokenizer.apply_chat_template(row["messages"], tokenize=False)
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def build_raft(rows: list[dict], passages: list[dict], config: RaftConfig | None = None,
               retriever: Retriever | None = None, tokenizer=None) -> list[dict]:
    """RAFT rows from question ``rows`` (each with ``answer`` and ``doc_ids``) over ``passages``.

    ``retriever`` (indexing ``passages``) ranks the hard distractors; ``tokenizer`` (default:
    SmolLM2's) measures rows against ``max_length``. See the module doc for what a row holds.
    """
    config = config or RaftConfig()
    if not rows:
        raise ValueError("build_raft: no rows")
    if config.distractors == "hard" and retriever is None:
        raise ValueError("build_raft: distractors='hard' needs retriever= (or set distractors='random')")
    rng = random.Random(config.seed)
    n = len(rows)
    with_oracle = set(rng.sample(range(n), oracle_count(n, config.oracle_fraction)))
    oracles = oracle_contexts(rows, passages)
    by_id = {p["id"]: p for p in passages}
    ranked: list[list[str]] = [[] for _ in rows]
    if config.distractors == "hard":
        ranked = [[h.passage_id for h in hits]
                  for hits in retriever.retrieve_many([question_of(r) for r in rows], config.depth)]
    tok = _tokenizer(tokenizer)
    built, trimmed = [], 0
    for i, (row, oracle) in enumerate(zip(rows, oracles)):
        has_oracle = i in with_oracle
        gold = {h.passage_id for h in oracle}
        wanted = config.num_distractors + (0 if has_oracle else len(oracle))
        picked = [pid for pid in dict.fromkeys(ranked[i]) if pid not in gold and pid in by_id][:wanted]
        if len(picked) < wanted:  # random distractors, or too few retrieved: draw the rest at random
            pool = [p["id"] for p in passages if p["id"] not in gold and p["id"] not in picked]
            picked += rng.sample(pool, min(wanted - len(picked), len(pool)))
        shown = (list(oracle) if has_oracle else []) + [_hit(by_id[pid]) for pid in picked]
        rng.shuffle(shown)
        out, dropped = _row(row, shown, oracle if has_oracle else None, config, picked, has_oracle), []
        while row_tokens(out, tok) > config.max_length:
            left = [h for h in shown if h.passage_id not in gold]
            if config.overflow == "error" or not left:
                raise ValueError(
                    f"build_raft: row {row.get('id')!r} is {row_tokens(out, tok)} tokens, over max_length="
                    f"{config.max_length}" + (" even with no distractors" if not left else "")
                    + ": lower num_distractors, chunk the passages smaller or raise max_length"
                    + ("" if config.overflow == "trim" else ", or set overflow='trim'"))
            shown.remove(left[-1])
            dropped.append(left[-1].passage_id)
            out = _row(row, shown, oracle if has_oracle else None, config, picked, has_oracle)
        if dropped:
            trimmed += 1
            out["raft"]["dropped"] = dropped
        built.append(out)
    if trimmed:
        warnings.warn(f"build_raft: {trimmed} of {n} rows were over max_length={config.max_length} tokens and lost "
                      "distractors to fit (overflow='trim')", stacklevel=2)
    return built


def _hit(p: dict) -> Hit:
    return Hit(p["id"], p["doc_id"], p["text"], 0.0, p.get("title", ""))


def _row(row: dict, shown: list[Hit], oracle: list[Hit] | None, config: RaftConfig, picked: list[str],
         has_oracle: bool) -> dict:
    answer, quote = target(row, oracle, config)
    prompt = rag_messages(row, shown, system=config.system, instruction=config.instruction())
    meta = {"has_oracle": has_oracle, "oracle_ids": [h.passage_id for h in oracle] if oracle else [],
            "distractor_ids": [pid for pid in picked if pid in {h.passage_id for h in shown}],
            "order": [h.passage_id for h in shown], "quote": quote, "seed": config.seed,
            "distractors": config.distractors, "no_oracle_target": config.no_oracle_target, "cot": config.cot}
    keep = {k: row[k] for k in ("id", "category", "answer", "drugs", "doc_ids") if k in row}
    return {**keep, "messages": [*prompt, {"role": "assistant", "content": answer}], "raft": meta}


def without_oracle(retriever: Retriever, rows: list[dict], passages: list[dict], k: int = 3) -> list[list[Hit]]:
    """Each row's top ``k`` retrieved passages with its oracle passages taken out (the next ones
    move up): the context a model sees when retrieval missed the answer."""
    oracles = oracle_contexts(rows, passages)
    found = retriever.retrieve_many([question_of(r) for r in rows], k + max(len(o) for o in oracles))
    return [[h for h in hits if h.passage_id not in {o.passage_id for o in oracle}][:k]
            for hits, oracle in zip(found, oracles)]


# ---------------------------------------------------------------------------------------------
# reading built rows and replies


def length_report(rows: list[dict], tokenizer=None, max_length: int | None = None) -> dict:
    """Token lengths of chat rows: ``{"rows", "min", "median", "max", "mean", "over", "max_length"}``
    (``over``: rows longer than ``max_length``, default 512: TrainConfig's default)."""
    if not rows:
        raise ValueError("length_report: no rows")
    tok = _tokenizer(tokenizer)
    lengths = [row_tokens(r, tok) for r in rows]
    limit = max_length or 512
    return {"rows": len(rows), "min": min(lengths), "median": statistics.median(lengths), "max": max(lengths),
            "mean": statistics.fmean(lengths), "over": sum(n > limit for n in lengths), "max_length": limit}


def quotes(reply: str) -> list[str]:
    """The spans of ``reply`` between ``##begin_quote##`` and ``##end_quote##``."""
    return _QUOTE_RE.findall(reply)


def quote_check(replies: list[str], contexts: list[list[Hit] | list[str]]) -> dict:
    """How faithful quoted spans are: ``{"n", "quoted", "verbatim", "verbatim_of_quoted"}``.

    ``quoted``: share of replies with at least one quote; ``verbatim``: share of replies whose
    every quoted span (stripped, non-empty) is a verbatim substring of one of the passages that
    reply was given; ``verbatim_of_quoted``: the same among the replies that quote (None if none).
    """
    if len(replies) != len(contexts):
        raise ValueError(f"quote_check: {len(replies)} replies for {len(contexts)} contexts")
    quoted = verbatim = 0
    for reply, context in zip(replies, contexts):
        spans = [q.strip() for q in quotes(reply)]
        if not spans:
            continue
        quoted += 1
        texts = [c.text if isinstance(c, Hit) else str(c) for c in context]
        verbatim += all(s and any(s in t for t in texts) for s in spans)
    n = len(replies)
    return {"n": n, "quoted": quoted / n if n else None, "verbatim": verbatim / n if n else None,
            "verbatim_of_quoted": verbatim / quoted if quoted else None}


def abstained(reply: str) -> bool:
    """Does the reply say the answer is not in the passages?"""
    return ABSTAIN_TEXT in reply.lower()


def final_json(reply: str) -> dict | None:
    """The JSON object on the reply's last non-empty line (where a RAFT answer puts it), else None."""
    lines = [line for line in reply.strip().splitlines() if line.strip()]
    try:
        value = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None
