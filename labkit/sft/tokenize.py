"""Chat rows -> token ids with a loss mask on assistant tokens only.

Each assistant turn's span is found by rendering the conversation up to that turn with the chat
template (prefix with the generation prompt, then prefix with the turn itself) and mapping those
character spans onto tokens through the tokenizer's offsets. That works for multi-turn chats and
for any template that renders a conversation as a growing prefix (ChatML, Llama 3, Qwen ...),
without needing ``{% generation %}`` markers in the template.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass


@dataclass
class TokenStats:
    rows: int
    tokens: int
    assistant_tokens: int
    truncated: int
    dropped: int
    max_length: int
    longest: int = 0  # tokens in the longest row: the padded width of the first, longest batch
    longest_answer: int = 0  # answer tokens in the row with the most: what the LM head projects

    def describe(self) -> str:
        return (f"{self.rows} rows, {self.tokens} tokens ({self.assistant_tokens} trained), "
                f"{self.truncated} truncated to {self.max_length}, {self.dropped} dropped")


def render(tokenizer, messages: list[dict], add_generation_prompt: bool = False) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)


def assistant_spans(tokenizer, messages: list[dict]) -> tuple[str, list[tuple[int, int]]]:
    """The rendered text and the character spans the model should learn to produce."""
    full = render(tokenizer, messages)
    spans = []
    for i, turn in enumerate(messages):
        if turn["role"] != "assistant":
            continue
        start = len(render(tokenizer, messages[:i], add_generation_prompt=True))
        end = len(render(tokenizer, messages[: i + 1]))
        if not full.startswith(render(tokenizer, messages[: i + 1])):
            raise ValueError("the chat template does not render conversations as growing prefixes; "
                             "assistant-only loss needs that property")
        spans.append((start, end))
    return full, spans


def tokenize_rows(rows: list[dict], tokenizer, max_length: int, source: str = "dataset"):
    """Tokenize chat rows for training; returns (list of {input_ids, completion_mask}, TokenStats).

    Rows longer than ``max_length`` are cut (keeping the start) and counted; a row whose every
    assistant token was cut is dropped and counted, since it would teach nothing.
    """
    out, truncated, dropped, total, trained = [], 0, 0, 0, 0
    for row in rows:
        text, spans = assistant_spans(tokenizer, row["messages"])
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids, offsets = enc["input_ids"], enc["offset_mapping"]
        mask = [int(any(s <= a < e for s, e in spans)) for a, _ in offsets]
        if len(ids) > max_length:
            truncated += 1
            ids, mask = ids[:max_length], mask[:max_length]
        if not any(mask):
            dropped += 1
            continue
        out.append({"input_ids": ids, "completion_mask": mask})
        total += len(ids)
        trained += sum(mask)
    stats = TokenStats(len(out), total, trained, truncated, dropped, max_length,
                       max((len(r["input_ids"]) for r in out), default=0),
                       max((sum(r["completion_mask"]) for r in out), default=0))
    if truncated or dropped:
        warnings.warn(f"{source}: {truncated} of {len(rows)} rows longer than max_length={max_length} were "
                      f"truncated; {dropped} lost every answer token and were dropped", stacklevel=2)
    return out, stats


def fingerprint_rows(rows: list[dict]) -> str:
    """A stable hash of the conversations, so a run is reused only on identical data."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(json.dumps(row["messages"], sort_keys=True, ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()[:16]
