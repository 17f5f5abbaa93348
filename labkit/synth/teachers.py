"""Teachers: the models that write (and judge) synthetic data, behind one small interface.

A teacher does two things, always on a batch of chat conversations:

* ``chat(conversations, max_tokens)`` - one greedy reply per conversation (the text it writes);
* ``choose(conversations, options)`` - for each conversation, a probability for each option
  (``["yes", "no"]`` or ``["1", ..., "5"]``): how a critic or a self-check scores without parsing
  free text.

Two implementations:

* :class:`LocalTeacher` - any causal LM that :func:`labkit.models.load` can load (the embedded
  SmolLM2, a fine-tuned run's folder, a hub id), batched on this machine. ``choose`` reads the
  next-token probabilities of the options directly: one forward pass, no sampling, steady.
* :class:`EndpointTeacher` - any server that speaks the OpenAI chat-completions API, through the
  official ``openai`` client: ``transformers serve`` on this laptop, a team's vLLM or llama.cpp
  server, or a hosted API. Nothing else changes. ``choose`` asks for the option's log-probability
  when the server gives one (OpenAI, vLLM) and otherwise reads the one short answer it wrote
  (``transformers serve`` ignores ``logprobs``): probability 1 for the option it wrote. A critic
  behind such a server therefore scores in whole steps (1, 2, ... 5) instead of smoothly.

The endpoint's key comes from an argument or the environment (``LABKIT_TEACHER_API_KEY``, then
``OPENAI_API_KEY``) and lives only in the client object: :meth:`EndpointTeacher.describe`, which is
what run folders and dataset cards record, never contains it.

>>> teacher = LocalTeacher("smollm2-135m-instruct")                         # doctest: +SKIP
>>> teacher = EndpointTeacher.from_env()   # LABKIT_TEACHER_BASE_URL, _MODEL, _API_KEY  # doctest: +SKIP
>>> teacher.chat([[{"role": "user", "content": "Say hi"}]], max_tokens=8)  # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from labkit.errors import UsageError

Conversation = list[dict]

ENV_BASE_URL = "LABKIT_TEACHER_BASE_URL"
ENV_MODEL = "LABKIT_TEACHER_MODEL"
ENV_KEYS = ("LABKIT_TEACHER_API_KEY", "OPENAI_API_KEY")
#: what a local server that checks no key is sent (the client insists on some string)
NO_KEY = "not-needed"


class Teacher(Protocol):
    name: str

    def chat(self, conversations: list[Conversation], max_tokens: int = 64) -> list[str]: ...

    def choose(self, conversations: list[Conversation], options: list[str]) -> list[dict[str, float]]: ...

    def describe(self) -> dict[str, Any]: ...


class Timed:
    """Wall time and call counts of a teacher's work, so speed can be reported per pair."""

    def __init__(self) -> None:
        self.seconds = {"chat": 0.0, "choose": 0.0}
        self.calls = {"chat": 0, "choose": 0}

    def add(self, kind: str, seconds: float, n: int) -> None:
        self.seconds[kind] += seconds
        self.calls[kind] += n


# ---------------------------------------------------------------------------------------------
# local


class LocalTeacher:
    """A causal LM on this machine: batched greedy generation and next-token option scores.

    Args:
        model: an embedded name, a local model folder or a hub id; or an already loaded
            :class:`labkit.models.LoadedModel` (shared with other code, not loaded twice).
        batch_size: conversations per forward pass. Larger batches are faster per reply until
            padding (rows of very different length) eats the gain.
        label: how the teacher is named in cards and tables (default: the model's name).
    """

    kind = "local"

    def __init__(self, model: Any = "smollm2-135m-instruct", batch_size: int = 16, label: str | None = None):
        from labkit import models

        self.loaded = model if isinstance(model, models.LoadedModel) else models.load(str(model))
        self.batch_size = batch_size
        self.name = label or _short_name(self.loaded.name)
        self.timing = Timed()

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "model": self.name, "decoding": "greedy", "batch_size": self.batch_size}

    def chat(self, conversations: list[Conversation], max_tokens: int = 64) -> list[str]:
        from labkit.models import generate_batch

        if not conversations:
            return []
        start = time.perf_counter()
        order = _by_length(conversations)  # similar lengths share a batch: less padding computed
        replies = generate_batch(self.loaded, [conversations[i] for i in order], max_new_tokens=max_tokens,
                                 batch_size=self.batch_size)
        out = [""] * len(conversations)
        for i, reply in zip(order, replies):
            out[i] = reply
        self.timing.add("chat", time.perf_counter() - start, len(conversations))
        return out

    def choose(self, conversations: list[Conversation], options: list[str]) -> list[dict[str, float]]:
        """P(option) for each conversation, from the first token of each option, renormalised
        over the options (so ``yes`` and ``no`` sum to 1)."""
        import torch

        if not conversations:
            return []
        start = time.perf_counter()
        tok, model = self.loaded.tokenizer, self.loaded.model
        first = _first_tokens(tok, options)
        texts = [tok.apply_chat_template(c, add_generation_prompt=True, tokenize=False) for c in conversations]
        order = _by_length(conversations)
        out: list[dict[str, float]] = [{} for _ in conversations]
        old_side = tok.padding_side
        tok.padding_side = "left"
        try:
            for s in range(0, len(order), self.batch_size):
                idx = order[s : s + self.batch_size]
                enc = tok([texts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False)
                enc = {k: v.to(model.device) for k, v in enc.items()}
                with torch.inference_mode():  # only the last position's logits, not seq x vocab per row
                    logits = model(**enc, logits_to_keep=1).logits[:, -1, :].float()
                probs = torch.softmax(logits, dim=-1)
                for row, i in enumerate(idx):
                    mass = {o: sum(float(probs[row, t]) for t in first[o]) for o in options}
                    out[i] = _normalise(mass)
        finally:
            tok.padding_side = old_side
        self.timing.add("choose", time.perf_counter() - start, len(conversations))
        return out


def _first_tokens(tokenizer, options: list[str]) -> dict[str, list[int]]:
    """The token ids that start each option, with and without a leading space or capital."""
    out = {}
    for option in options:
        ids = set()
        for form in {option, " " + option, option.capitalize(), " " + option.capitalize()}:
            encoded = tokenizer(form, add_special_tokens=False)["input_ids"]
            # a tokenizer that splits digits off a leading space encodes " 1" as [" ", "1"]:
            # a bare-space first token says nothing about the option, so that form is skipped
            if encoded and tokenizer.decode(encoded[:1]).strip():
                ids.add(encoded[0])
        out[option] = sorted(ids)
    clash = [o for o in options if any(set(out[o]) & set(out[p]) for p in options if p != o)]
    if clash:
        raise UsageError(f"options {clash} start with the same token; pick options whose first tokens differ")
    return out


def _by_length(conversations: list[Conversation]) -> list[int]:
    return sorted(range(len(conversations)), key=lambda i: sum(len(t["content"]) for t in conversations[i]))


def _normalise(mass: dict[str, float]) -> dict[str, float]:
    total = sum(mass.values())
    if total <= 0 or not math.isfinite(total):
        return {o: 1.0 / len(mass) for o in mass}
    return {o: v / total for o, v in mass.items()}


def _short_name(name: str) -> str:
    return str(name).rstrip("/").split("/")[-1] if "/" in str(name) and not str(name).startswith("/") else \
        (os.path.basename(str(name).rstrip("/")) or str(name))


# ---------------------------------------------------------------------------------------------
# OpenAI-compatible endpoint


class EndpointTeacher:
    """A model behind any OpenAI-compatible chat-completions endpoint, via the ``openai`` client.

    Args:
        base_url: e.g. ``http://127.0.0.1:8000/v1``; default ``$LABKIT_TEACHER_BASE_URL``.
        model: the model name the server knows; default ``$LABKIT_TEACHER_MODEL``.
        api_key: default ``$LABKIT_TEACHER_API_KEY``, then ``$OPENAI_API_KEY``, then a placeholder
            (a local server checks none). Kept only inside the client; never recorded.
        concurrency: requests in flight at once. A server that batches (vLLM) turns them into one
            batch; ``transformers serve`` without continuous batching answers them in turn.
        timeout: seconds per request.
        label: how the teacher is named in cards and tables (default: the model name).
    """

    kind = "endpoint"

    def __init__(self, base_url: str | None = None, model: str | None = None, api_key: str | None = None,
                 concurrency: int = 4, timeout: float = 120.0, label: str | None = None):
        from openai import OpenAI

        base_url = base_url or os.environ.get(ENV_BASE_URL)
        model = model or os.environ.get(ENV_MODEL)
        if not base_url:
            raise UsageError(f"EndpointTeacher needs a base_url (or ${ENV_BASE_URL}), e.g. http://127.0.0.1:8000/v1")
        if not model:
            raise UsageError(f"EndpointTeacher needs a model name (or ${ENV_MODEL})")
        key = api_key or next((os.environ[k] for k in ENV_KEYS if os.environ.get(k)), None) or NO_KEY
        self.base_url, self.model = base_url.rstrip("/"), model
        self.key_source = "argument" if api_key else next((k for k in ENV_KEYS if os.environ.get(k)), "none")
        self._client = OpenAI(base_url=self.base_url, api_key=key, timeout=timeout, max_retries=1)
        self.concurrency = max(1, int(concurrency))
        self.name = label or _short_name(model)
        self.logprobs: bool | None = None  # learnt on the first choose(): does the server give them?
        self.timing = Timed()

    @classmethod
    def from_env(cls, **kwargs) -> "EndpointTeacher":
        """Everything from ``LABKIT_TEACHER_BASE_URL``, ``LABKIT_TEACHER_MODEL`` and the key variables."""
        return cls(**kwargs)

    def __repr__(self) -> str:  # the key is deliberately absent
        return f"EndpointTeacher(base_url={self.base_url!r}, model={self.model!r}, key from {self.key_source})"

    def describe(self) -> dict[str, Any]:
        """What a run folder or a dataset card records: where and which model, never the key."""
        return {"kind": self.kind, "model": self.name, "base_url": _public_url(self.base_url),
                "decoding": "greedy (temperature 0)", "concurrency": self.concurrency,
                "api_key": f"from {self.key_source} (not recorded)"}

    def _map(self, fn, items: list) -> list:
        if self.concurrency == 1 or len(items) <= 1:
            return [fn(x) for x in items]
        with ThreadPoolExecutor(self.concurrency) as pool:
            return list(pool.map(fn, items))

    def _complete(self, messages: Conversation, max_tokens: int, **extra) -> Any:
        return self._client.chat.completions.create(model=self.model, messages=messages, max_tokens=max_tokens,
                                                    temperature=0.0, **extra)

    def chat(self, conversations: list[Conversation], max_tokens: int = 64) -> list[str]:
        start = time.perf_counter()
        out = self._map(lambda c: (self._complete(c, max_tokens).choices[0].message.content or "").strip(),
                        conversations)
        self.timing.add("chat", time.perf_counter() - start, len(conversations))
        return out

    def choose(self, conversations: list[Conversation], options: list[str]) -> list[dict[str, float]]:
        start = time.perf_counter()
        out = self._map(lambda c: self._choose_one(c, options), conversations)
        self.timing.add("choose", time.perf_counter() - start, len(conversations))
        return out

    def _choose_one(self, conversation: Conversation, options: list[str]) -> dict[str, float]:
        """One short completion. With log-probabilities (OpenAI, vLLM) the options' probabilities
        come from the first token's top candidates; a server that ignores ``logprobs``
        (``transformers serve`` does) still returns the token it wrote, which is then the answer."""
        import openai

        extra = {"logprobs": True, "top_logprobs": 10} if self.logprobs is not False else {}
        try:
            reply = self._complete(conversation, 2, **extra)
        except openai.BadRequestError:
            if not extra:
                raise
            self.logprobs = False  # a server that refuses the field outright
            reply = self._complete(conversation, 2)
        choice = reply.choices[0]
        content = choice.logprobs.content if getattr(choice, "logprobs", None) else None
        if content and content[0].top_logprobs:
            self.logprobs = True
            mass = {o: 0.0 for o in options}
            for cand in content[0].top_logprobs:
                word = cand.token.strip().lower()
                match = next((o for o in options if word and o.lower().startswith(word)), None)
                if match is not None:
                    mass[match] += math.exp(cand.logprob)
            return _normalise(mass)
        self.logprobs = False
        text = (choice.message.content or "").strip().lower()
        picked = next((o for o in options if text.startswith(o.lower())), None)
        if picked is None:
            return {o: 1.0 / len(options) for o in options}  # no readable answer: no opinion
        return {o: float(o == picked) for o in options}


def _public_url(url: str) -> str:
    """The base URL without any user:password@ or query part (those can carry secrets)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
