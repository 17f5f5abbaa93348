"""Has the model forgotten how to be a general assistant? A probe and a few generation checks.

Two views of forgetting, both cheap enough to run after every training arm:

* :func:`general_probe` scores the multiple-choice items of :func:`labkit.data.general.probe` by
  log-likelihood: how likely is the model to answer with each choice? The most likely choice is
  its answer. No generation, no parsing, so the number moves only when the model's knowledge
  moves (the same idea as the MMLU / HellaSwag benchmarks the seed mentions).
* :func:`generation_checks` asks the questions the seed article uses to show forgetting ("What's
  15 x 23?", "Write me a haiku", ...) and shows the replies, so a learner *sees* a model that
  answers everything like a formulary.
"""

from __future__ import annotations

import html
import re
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

from labkit.evaluate.domain import balanced
from labkit.models import LoadedModel, generate_batch, to_messages
from labkit.paths import profile

SMOKE_ITEMS = 60  # ten per subject: enough to see "clearly above chance" in a CI run
ANSWER_PREFIX = "The answer is"


def sequence_logprobs(
    loaded: LoadedModel,
    pairs: Sequence[tuple[str | list[dict], str]],
    system: str | None = None,
    batch_size: int = 16,
    answer_prefix: str = "",
) -> list[tuple[float, int]]:
    """``(sum of log-probabilities, number of tokens)`` of each continuation given its prompt.

    The prompt goes through the chat template (it ends where the assistant's reply begins, plus
    ``answer_prefix`` if given); the continuation is tokenized on its own and appended, so its
    tokens are exactly the ones scored. Sequences are sorted by length and right-padded in
    batches, which keeps padding small. This is the plain reference; the probe uses the faster
    :func:`choice_logprobs`, which must agree with it.
    """
    import torch

    tok, model = loaded.tokenizer, loaded.model
    seqs: list[tuple[list[int], int]] = []  # (ids, index where the continuation starts)
    for prompt, continuation in pairs:
        ctx = tok(_context(tok, prompt, system, answer_prefix), add_special_tokens=False)["input_ids"]
        cont = tok(_spaced(continuation, answer_prefix), add_special_tokens=False)["input_ids"]
        if not cont:
            raise ValueError(f"empty continuation for prompt {prompt!r}")
        seqs.append((ctx + cont, len(ctx)))
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i][0]))
    out: list[tuple[float, int]] = [(0.0, 0)] * len(seqs)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        width = max(len(seqs[i][0]) for i in chunk)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, i in enumerate(chunk):
            seq = seqs[i][0]
            ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
        with torch.inference_mode():
            logits = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device)).logits
        for row, i in enumerate(chunk):
            seq, cut = seqs[i]
            # The logit at position p predicts token p + 1.
            rows = logits[row, cut - 1 : len(seq) - 1].float().log_softmax(-1)
            targets = torch.tensor(seq[cut:], device=rows.device)
            out[i] = (float(rows.gather(1, targets[:, None]).sum()), len(seq) - cut)
    return out


def _context(tok, prompt, system: str | None, answer_prefix: str) -> str:
    return tok.apply_chat_template(to_messages(prompt, system), add_generation_prompt=True, tokenize=False) + answer_prefix


def _spaced(choice: str, answer_prefix: str) -> str:
    """After a prefix like "The answer is", a choice starts a new word."""
    return " " + choice if answer_prefix and not answer_prefix.endswith((" ", "\n")) else choice


def _forward_kwargs(model) -> tuple[str, dict]:
    """The KV-cache argument's name in this transformers version, and "only the last logits" if known."""
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    params = inspect.signature(type(base).forward).parameters
    last_only = {"logits_to_keep": 1} if "logits_to_keep" in params else {}
    return ("cache" if "cache" in params else "past_key_values"), last_only


def choice_logprobs(
    loaded: LoadedModel,
    questions: Sequence[str | list[dict]],
    choices: Sequence[Sequence[str]],
    system: str | None = None,
    batch_size: int = 16,
    answer_prefix: str = "",
) -> list[list[tuple[float, int]]]:
    """Like :func:`sequence_logprobs` for every (question, choice), but the prompt runs once.

    The choices of a question share its prompt (about 37 tokens) and are short (about 2 tokens),
    so the prompt is run once, its key/value cache copied to each choice, and only the choice
    tokens are run again: about 3.5x less compute than scoring each full sequence. Prompts are
    left-padded with explicit positions, so the numbers equal the unbatched ones (the tests check).
    """
    import torch

    tok, model = loaded.tokenizer, loaded.model
    ctx = [tok(_context(tok, q, system, answer_prefix), add_special_tokens=False)["input_ids"] for q in questions]
    conts = [[tok(_spaced(c, answer_prefix), add_special_tokens=False)["input_ids"] for c in cs] for cs in choices]
    if any(not c for cs in conts for c in cs):
        raise ValueError("a choice is empty")
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    cache_kw, last_only = _forward_kwargs(model)
    out: list[list[tuple[float, int]]] = [[] for _ in questions]
    order = sorted(range(len(questions)), key=lambda i: len(ctx[i]))
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        width = max(len(ctx[i]) for i in chunk)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, i in enumerate(chunk):  # left padding: every prompt ends at the last column
            ids[row, width - len(ctx[i]) :] = torch.tensor(ctx[i])
            mask[row, width - len(ctx[i]) :] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        device = model.device
        with torch.inference_mode():
            # Only the last position's logits are needed here; skipping the rest saves ~20% of the work.
            first = model(input_ids=ids.to(device), attention_mask=mask.to(device),
                          position_ids=positions.to(device), use_cache=True, **last_only)
            cache = getattr(first, "cache", None) or getattr(first, "past_key_values", None)
            head = first.logits[:, -1].float().log_softmax(-1)
            owners = [row for row, i in enumerate(chunk) for _ in conts[i]]
            seqs = [c for i in chunk for c in conts[i]]
            scores = [float(head[owners[j], seq[0]]) for j, seq in enumerate(seqs)]
            rest = max(len(seq) for seq in seqs) - 1
            if rest > 0:  # run tokens 1..n-1 of every choice on top of a copy of its prompt's cache
                cache.batch_select_indices(torch.tensor(owners, device=device))
                tail = torch.full((len(seqs), rest), pad, dtype=torch.long)
                tail_mask = torch.zeros((len(seqs), rest), dtype=torch.long)
                for j, seq in enumerate(seqs):
                    tail[j, : len(seq) - 1] = torch.tensor(seq[:-1])
                    tail_mask[j, : len(seq) - 1] = 1
                owner_idx = torch.tensor(owners)
                full_mask = torch.cat([mask[owner_idx], tail_mask], dim=1)
                tail_pos = mask.sum(-1)[owner_idx][:, None] + torch.arange(rest)[None, :]
                second = model(input_ids=tail.to(device), attention_mask=full_mask.to(device),
                               position_ids=tail_pos.to(device), use_cache=True, **{cache_kw: cache})
                logp = second.logits.float().log_softmax(-1)
                for j, seq in enumerate(seqs):
                    scores[j] += sum(float(logp[j, t - 1, seq[t]]) for t in range(1, len(seq)))
        k = 0
        for i in chunk:
            out[i] = [(scores[k + c], len(conts[i][c])) for c in range(len(conts[i]))]
            k += len(conts[i])
    return out


@dataclass
class ProbeReport:
    """Accuracy on the general-knowledge probe, with chance level and a per-subject breakdown."""

    accuracy: float
    per_subject: dict[str, float]
    chance: float
    n: int
    seconds: float
    normalize: str
    results: list[dict] = field(default_factory=list, repr=False)

    def summary(self, prefix: str = "probe") -> dict[str, float]:
        return {f"{prefix}_acc": self.accuracy, f"{prefix}_chance": self.chance}

    def wrong(self) -> list[dict]:
        return [r for r in self.results if not r["correct"]]

    def __str__(self) -> str:
        lines = [f"general probe: {self.accuracy:.1%} of {self.n} items (chance {self.chance:.0%}), "
                 f"{self.seconds:.1f} s"]
        lines += [f"  {subject:<10} {acc:.0%}" for subject, acc in self.per_subject.items()]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        cells = "".join(f"<tr><td>{html.escape(s)}</td><td>{a:.0%}</td></tr>" for s, a in self.per_subject.items())
        return (f"<b>General probe</b>: {self.accuracy:.1%} of {self.n} items "
                f"(chance {self.chance:.0%}, {self.seconds:.1f} s)"
                f"<table><tr><th>subject</th><th>accuracy</th></tr>{cells}</table>")


def general_probe(
    loaded: LoadedModel,
    items: list[dict] | None = None,
    limit: int | None = None,
    batch_size: int = 16,
    normalize: str = "sum",
    system: str | None = None,
    answer_prefix: str = ANSWER_PREFIX,
) -> ProbeReport:
    """Multiple-choice accuracy by log-likelihood of each choice as the start of the assistant's reply.

    The question is asked in the chat template (the model never sees the choices); the reply is
    begun with ``answer_prefix`` ("The answer is") and each choice is scored as its next words.
    The highest total log-probability wins.

    Args:
        items: ``{"id", "subject", "question", "choices", "answer_index"}`` dicts; default
            :func:`labkit.data.general.probe`.
        limit: score a subject-balanced subset; default all items in the ``full`` profile and
            ``SMOKE_ITEMS`` in ``smoke``.
        normalize: ``"sum"`` (default) compares total log-probabilities; ``"mean"`` divides by
            the number of tokens. We do *not* length-normalise by default: after the first token
            of a choice the rest is nearly certain ("Jup" -> "iter"), so a per-token mean rewards
            long wrong answers. Measured with SmolLM2-135M on 60 items, before we added the
            prefix: sum 58%, mean 45%; listing the choices in the question, 33% (a 135M model
            cannot yet pick from a list). The prefix then lifted the whole probe from 54% to 59%
            (chance 25%), mostly on numbers, which a bare reply rarely starts with.
        system: system prompt; default ``None`` lets the chat template add its own, as in a chat.
    """
    if normalize not in ("mean", "sum"):
        raise ValueError(f"normalize={normalize!r}: expected 'mean' or 'sum'")
    if items is None:
        from labkit.data.general import probe

        items = probe()
    if limit is None:
        limit = SMOKE_ITEMS if profile() == "smoke" else len(items)
    items = balanced(list(items), limit, key="subject")
    start = time.perf_counter()
    all_scores = choice_logprobs(loaded, [item["question"] for item in items], [item["choices"] for item in items],
                                 system=system, batch_size=batch_size, answer_prefix=answer_prefix)
    results, per_subject = [], {}
    for item, raw in zip(items, all_scores):
        values = [total / n if normalize == "mean" else total for total, n in raw]
        pick = max(range(len(values)), key=values.__getitem__)
        correct = pick == item["answer_index"]
        results.append({"id": item["id"], "subject": item["subject"], "question": item["question"],
                        "predicted": item["choices"][pick], "answer": item["choices"][item["answer_index"]],
                        "correct": correct, "scores": values})
        per_subject.setdefault(item["subject"], []).append(correct)
    n = len(results)
    return ProbeReport(
        accuracy=sum(r["correct"] for r in results) / n if n else 0.0,
        per_subject={s: sum(v) / len(v) for s, v in per_subject.items()},
        chance=sum(1 / len(item["choices"]) for item in items) / n if n else 0.0,
        n=n,
        seconds=time.perf_counter() - start,
        normalize=normalize,
        results=results,
    )


# ---------------------------------------------------------------------------------------------
# generation checks


@dataclass
class GenerationCheck:
    prompt: str
    expect: str  # what a healthy general assistant does, in words
    reply: str = ""
    passed: bool = False


def _has(*words: str) -> Callable[[str], bool]:
    return lambda reply: any(w in reply.lower() for w in words)


def _haiku_like(reply: str) -> bool:
    lines = [line for line in reply.splitlines() if line.strip()]
    return 2 <= len(lines) <= 6 and len(reply.split()) <= 40


def _conversational(reply: str) -> bool:
    return bool(re.search(r"\b(i'm|i am|thanks?|hello|hi|good|great|well|fine|help)\b", reply.lower()))


CHECKS: tuple[tuple[str, str, Callable[[str], bool]], ...] = (
    ("What's 15 x 23?", "says 345", _has("345")),
    ("What is the capital of France?", "says Paris", _has("paris")),
    ("Write me a haiku about the sea.", "a few short lines of verse", _haiku_like),
    ("Hello, how are you?", "a friendly reply", _conversational),
)
# Signs that the domain has leaked into a general reply: JSON, formulary words, drug suffixes.
_DOMAIN_MARKS = ("{", "severity", "mechanism", "dose_mg", "interaction", "formulary",
                 "parex", "brelix", "kafen", "vasil", "cardol", "quilan", "dorin", "micor",
                 "gravin", "lipex", "zeprin", "glinex")


@dataclass
class ChecksReport:
    """The replies to the forgetting questions, each marked passed or not."""

    checks: list[GenerationCheck]

    @property
    def passed(self) -> int:
        return sum(c.passed for c in self.checks)

    @property
    def rate(self) -> float:
        return self.passed / len(self.checks) if self.checks else 0.0

    def __iter__(self):
        return iter(self.checks)

    def __len__(self) -> int:
        return len(self.checks)

    def __getitem__(self, i: int) -> GenerationCheck:
        return self.checks[i]

    def __str__(self) -> str:
        lines = [f"generation checks: {self.passed}/{len(self.checks)} passed"]
        for c in self.checks:
            reply = " / ".join(c.reply.splitlines())
            lines.append(f"  [{'ok' if c.passed else 'FAIL'}] {c.prompt} -> {reply[:100]}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(c.prompt)}</td><td style='white-space:pre-wrap'>{html.escape(c.reply)}</td>"
            f"<td>{'✅' if c.passed else '❌'} {html.escape(c.expect)}</td></tr>"
            for c in self.checks
        )
        return (f"<b>Generation checks</b>: {self.passed}/{len(self.checks)} passed"
                f"<table><tr><th>prompt</th><th>reply</th><th>healthy if</th></tr>{rows}</table>")


def domain_leak(reply: str) -> bool:
    """Does a reply to a general prompt show the domain (JSON braces, formulary words, drug names)?"""
    return any(mark in reply.lower() for mark in _DOMAIN_MARKS)


def check_reply(index: int, reply: str) -> bool:
    """Does ``reply`` pass check ``index`` of :data:`CHECKS`? It fails if it shows the domain."""
    return CHECKS[index][2](reply) and not domain_leak(reply)


def generation_checks(loaded: LoadedModel, max_new_tokens: int = 40, system: str | None = None) -> ChecksReport:
    """Greedy replies to the seed's forgetting questions ("What's 15 x 23?", ...), each judged."""
    replies = generate_batch(loaded, [p for p, _, _ in CHECKS], max_new_tokens=max_new_tokens, system=system)
    return ChecksReport([GenerationCheck(prompt, expect, reply, passed=check_reply(i, reply))
                         for i, ((prompt, expect, _), reply) in enumerate(zip(CHECKS, replies))])
