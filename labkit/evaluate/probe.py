"""Has the model forgotten how to be a general assistant? A probe and a few generation checks.

Two views of forgetting, both cheap enough to run after every training arm:

* :func:`general_probe` scores the multiple-choice items of :func:`labkit.data.general.probe` by
  log-likelihood: for each choice, how likely is the model to reply with exactly that text? The
  highest-scoring choice is its answer. No generation, no parsing, so the number moves only
  when the model's knowledge moves (the same idea as the MMLU / HellaSwag benchmarks).
* :func:`generation_checks` asks the questions the seed article uses to show forgetting ("What's
  15 x 23?", "Write me a haiku", ...) and shows the replies, so a learner *sees* a model that
  answers everything like a formulary.
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

from labkit.evaluate.domain import balanced
from labkit.models import LoadedModel, generate_batch, to_messages
from labkit.paths import profile

SMOKE_ITEMS = 60  # ten per subject: enough to see "clearly above chance" in a CI run


def sequence_logprobs(
    loaded: LoadedModel,
    pairs: Sequence[tuple[str | list[dict], str]],
    system: str | None = None,
    batch_size: int = 16,
) -> list[tuple[float, int]]:
    """``(sum of log-probabilities, number of tokens)`` of each continuation given its prompt.

    The prompt goes through the chat template (it ends where the assistant's reply begins); the
    continuation is tokenized on its own and appended, so its tokens are exactly the ones scored.
    Sequences are sorted by length and right-padded in batches, which keeps padding small.
    """
    import torch

    tok, model = loaded.tokenizer, loaded.model
    seqs: list[tuple[list[int], int]] = []  # (ids, index where the continuation starts)
    for prompt, continuation in pairs:
        text = tok.apply_chat_template(to_messages(prompt, system), add_generation_prompt=True, tokenize=False)
        ctx = tok(text, add_special_tokens=False)["input_ids"]
        cont = tok(continuation, add_special_tokens=False)["input_ids"]
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
    normalize: str = "mean",
    system: str | None = None,
) -> ProbeReport:
    """Multiple-choice accuracy by log-likelihood of each choice as the assistant's reply.

    Args:
        items: ``{"id", "subject", "question", "choices", "answer_index"}`` dicts; default
            :func:`labkit.data.general.probe`.
        limit: score a subject-balanced subset; default all items in the ``full`` profile and
            ``SMOKE_ITEMS`` in ``smoke``.
        normalize: ``"mean"`` (default) divides each choice's log-likelihood by its token count;
            ``"sum"`` uses the raw total. We length-normalise because the choices differ in length
            ("Washington, D.C." is five tokens, "Rome" one) and a raw sum punishes every extra
            token, so a short wrong answer beats a long right one. On the shipped probe the mean
            also scored higher for the base model (see the docs of the probe data).
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
    pairs = [(item["question"], choice) for item in items for choice in item["choices"]]
    scores = iter(sequence_logprobs(loaded, pairs, system=system, batch_size=batch_size))
    results, per_subject = [], {}
    for item in items:
        raw = [next(scores) for _ in item["choices"]]
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
    return _has("i'm", "i am", "thank", "hello", "hi", "good", "great", "well", "help")(reply)


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


def generation_checks(loaded: LoadedModel, max_new_tokens: int = 40, system: str | None = None) -> ChecksReport:
    """Greedy replies to the seed's forgetting questions; a reply fails if it shows the domain."""
    replies = generate_batch(loaded, [p for p, _, _ in CHECKS], max_new_tokens=max_new_tokens, system=system)
    checks = []
    for (prompt, expect, ok), reply in zip(CHECKS, replies):
        leaked = any(mark in reply.lower() for mark in _DOMAIN_MARKS)
        checks.append(GenerationCheck(prompt, expect, reply, passed=ok(reply) and not leaked))
    return ChecksReport(checks)
