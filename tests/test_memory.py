"""The memory estimator: formulas, shapes, and the comparison with the seed's figures."""

from __future__ import annotations

import pytest

from labkit import memory
from labkit.memory import PRESETS, ModelShape, estimate


def test_presets_add_up_to_their_parameter_counts():
    for shape in PRESETS.values():
        blocks = shape.block_linear_params + shape.embedding_params
        # What is left over is norms: a tiny fraction.
        assert 0 <= shape.params - blocks < 0.001 * shape.params, shape.name


def test_mlp_width_is_derived_from_the_parameter_count():
    smol = PRESETS["smollm2-135m"]
    derived = ModelShape("smol", smol.params, hidden=576, layers=30, vocab=49152, kv_dim=192, tied_embeddings=True)
    assert abs(derived.mlp_width - 1536) < 2


def test_lora_counts_match_the_lesson():
    eight = PRESETS["llama-3-8b"]
    # One 4096 x 4096 matrix at rank 16: 2 x 4096 x 16.
    assert ModelShape("m", 10**9, 4096, 1, 32000).lora_params(16, "qv") == 2 * 131_072
    # The seed's "~8M at r16" for an 8B model matches q and v adapters.
    assert 6e6 < eight.lora_params(16, "qv") < 9e6
    assert eight.lora_params(16, "all-linear") == 41_943_040


def test_per_parameter_bytes():
    assert memory.per_parameter_bytes("full", "bf16") == {"base": 12, "adapter": 0}
    assert memory.per_parameter_bytes("full", "fp32") == {"base": 16, "adapter": 0}
    assert memory.per_parameter_bytes("lora", "bf16") == {"base": 2, "adapter": 16}
    assert memory.per_parameter_bytes("qlora")["base"] == pytest.approx(0.5159, abs=1e-3)
    assert memory.per_parameter_bytes("lora", optimizer="adamw-8bit")["adapter"] == 10


def test_breakdown_follows_the_formulas():
    shape = PRESETS["llama-3-8b"]
    full = estimate(shape, "full")
    assert full.weights == pytest.approx(shape.params * 2 / 1e9)
    assert full.optimizer == pytest.approx(shape.params * 8 / 1e9)
    lora = estimate(shape, "lora")
    assert lora.trainable_params == shape.lora_params(16)
    assert lora.adapters == pytest.approx(lora.trainable_params * 4 / 1e9)
    assert lora.total < full.total / 4
    qlora = estimate(shape, "qlora")
    assert qlora.weights < lora.weights / 2.5
    assert qlora.total == pytest.approx(sum(v for k, v in qlora.breakdown().items() if k != "total"))


def test_activations_scale_with_tokens_and_checkpointing_cuts_them():
    one = estimate("llama-3-8b", "lora", batch=1, seq_len=512)
    four = estimate("llama-3-8b", "lora", batch=4, seq_len=512)
    assert four.activations == pytest.approx(4 * one.activations)
    ckpt = estimate("llama-3-8b", "lora", gradient_checkpointing=True)
    assert ckpt.activations < one.activations / 3
    # PEFT turns checkpointing on for k-bit training, so the QLoRA default follows it.
    assert estimate("llama-3-8b", "qlora").activations == pytest.approx(
        estimate("llama-3-8b", "qlora", gradient_checkpointing=True).activations)


def test_billions_infer_a_llama_like_shape():
    for key, billions in (("llama-2-13b", 13), ("llama-3-70b", 70)):
        real, guessed = PRESETS[key], memory.resolve(billions)
        assert guessed.layers * guessed.hidden == pytest.approx(real.layers * real.hidden, rel=0.25)
    assert estimate(8, "qlora").total == pytest.approx(estimate("llama-3-8b", "qlora").total, rel=0.3)


def test_smollm2_estimate_is_small_and_shows_its_assumptions():
    e = estimate("smollm2-135m", "lora", dtype="fp32", runtime_gb=0.5)
    assert e.weights == pytest.approx(134_515_008 * 4 / 1e9)
    assert 1 < e.total < 3
    text = e.to_text()
    assert "hidden 576" in text and "batch 1 x 512" in text and "rank 16" in text
    assert "<table>" in e.to_html()


@pytest.mark.parametrize("kwargs,message", [
    ({"model": "gpt-9", "method": "lora"}, "unknown model"),
    ({"model": 8e9, "method": "lora"}, "billions"),
    ({"model": 8, "method": "prefix"}, "method 'prefix'"),
    ({"model": 8, "method": "lora", "dtype": "int3"}, "dtype 'int3'"),
    ({"model": 8, "method": "lora", "targets": "mlp"}, "targets 'mlp'"),
    ({"model": 8, "method": "lora", "batch": 0}, "at least 1"),
])
def test_bad_inputs_say_what_is_wrong(kwargs, message):
    with pytest.raises(ValueError, match=message):
        estimate(**kwargs)
    with pytest.raises(ValueError, match="too few"):
        ModelShape("tiny", 1000, hidden=576, layers=30, vocab=49152)


def test_comparison_with_the_seed():
    rows = {(r.model, r.method): r for r in memory.compare_with_seed()}
    assert len(rows) == 9
    full8 = rows[("Llama 3 8B", "full")]
    assert full8.verdict == "agrees" and full8.ours.total > 80
    lora8 = rows[("Llama 3 8B", "lora")]
    # 32 GB is what fp32 weights give; bf16 weights halve that.
    assert lora8.verdict == "lower" and "fp32" in lora8.why
    assert estimate("llama-3-8b", "lora", dtype="fp32").weights == pytest.approx(32, rel=0.01)
    q13 = rows[("Llama 2 13B", "qlora")]
    assert q13.verdict == "agrees" and 8 < q13.ours.total < 12
    q8 = rows[("Llama 3 8B", "qlora")]
    assert q8.verdict == "higher" and "16-bit" in q8.why and 6 < q8.ours.total < 11
    assert rows[("Llama 3 70B", "qlora")].verdict == "no figure"
    table = memory.comparison_table(list(rows.values()))
    assert table.count("\n") == 10 and "~6 GB" in table


def test_widget_updates():
    w = memory.widget()
    result = w.children[-1]
    assert "Llama 3 8B, qlora" in result.value
    method = w.children[1]
    method.value = "full"
    assert "Llama 3 8B, full" in result.value
    assert "text/markdown" in w._repr_mimebundle_()


@pytest.mark.parametrize("billions", [0.01, 0.1, 0.2])
def test_a_size_below_what_the_estimator_models_says_so_plainly(billions):
    with pytest.raises(ValueError) as info:
        estimate(billions, "lora")
    message = str(info.value)
    assert f"{billions:g}B parameters is below the smallest model this estimator models" in message
    assert f"({memory.MIN_BILLIONS:g}B)" in message and "preset" in message
    assert "ModelShape " + f"{billions:g}B" not in message and "too few" not in message
    # The smallest size it does model gives a shape whose MLP is at least as wide as the model.
    shape = memory.resolve(memory.MIN_BILLIONS)
    assert shape.mlp_width >= shape.hidden


def test_sizes_that_are_not_billions_say_so():
    with pytest.raises(ValueError, match="positive number of billions"):
        estimate(0, "lora")
    with pytest.raises(ValueError, match="goes up to 10,000B"):
        estimate(20_000, "lora")


def test_a_rank_above_the_hidden_size_is_flagged():
    e = estimate("smollm2-135m", "lora", rank=1024)
    assert len(e.warnings) == 1
    warning = e.warnings[0]
    assert "rank 1024 is above this model's hidden size (576)" in warning
    assert "larger than the layer itself" in warning
    assert "more than the 134.5M of the whole model" in warning
    assert "warning: LoRA rank 1024" in e.to_text()
    assert "Warning:" in e.to_html()


def test_a_rank_above_the_narrow_key_value_side_names_those_layers():
    # SmolLM2's k and v projections are 576 x 192: rank 256 exceeds their smaller side only.
    (warning,) = estimate("smollm2-135m", "lora", rank=256).warnings
    assert "k (192), v (192)" in warning and "hidden size" not in warning
    assert estimate("smollm2-135m", "lora", rank=256, targets="qv").warnings[0].count("(192)") == 1


def test_ordinary_ranks_and_full_fine_tuning_carry_no_warning():
    assert estimate("smollm2-135m", "lora", rank=16).warnings == ()
    assert estimate("llama-3-8b", "qlora", rank=64).warnings == ()
    assert estimate("smollm2-135m", "full", rank=1024).warnings == ()
    assert "warning" not in estimate("llama-3-8b", "lora").to_text()


def test_full_fine_tuning_states_both_byte_counts():
    note = estimate("llama-3-8b", "full").assumptions[2]
    assert "12 bytes per parameter" in note and "16 bytes" in note and "master copy" in note
    assert "128 GB instead of 96 GB" in note


def test_widget_explains_out_of_range_inputs_and_fits_its_labels():
    w = memory.widget()
    result = w.children[-1]
    model, billions = w.children[0].children
    model.value = "custom"
    billions.value = 0.01
    assert "below the smallest model this estimator models" in result.value
    assert "too few" not in result.value
    model.value = "smollm2-135m"
    rank = w.children[4].children[0]
    rank.value = 1024
    assert "Warning:" in result.value and "hidden size (576)" in result.value
    controls = [model, billions, w.children[1], w.children[2], *w.children[3].children, *w.children[4].children]
    assert all(c.style.description_width == "initial" for c in controls)


def test_logit_tokens_shrink_only_the_logits_term():
    shape = PRESETS["smollm2-135m"]
    every = estimate(shape, "lora", batch=8, seq_len=84, dtype="fp32")
    answers = estimate(shape, "lora", batch=8, seq_len=84, dtype="fp32", logit_tokens=8 * 27)
    # (8 x 84 - 216) positions x 49,152 words x (4 + 8) bytes
    assert every.activations - answers.activations == pytest.approx((8 * 84 - 216) * 49152 * 12 / 1e9)
    assert every.weights == answers.weights and "216 positions" in " ".join(answers.assumptions)


def test_autocast_counts_bf16_weight_copies_and_mixed_activations():
    shape = PRESETS["smollm2-135m"]
    fp32 = estimate(shape, "full", batch=8, seq_len=84, dtype="fp32", logit_tokens=216)
    mixed = estimate(shape, "full", batch=8, seq_len=84, dtype="fp32", logit_tokens=216, autocast=True)
    bf16 = estimate(shape, "full", batch=8, seq_len=84, dtype="bf16", logit_tokens=216)
    assert mixed.weights == fp32.weights  # the master weights stay fp32
    copies = 2 * shape.params / 1e9
    # activations without the copies lie between all-bf16 and all-fp32
    assert bf16.activations < mixed.activations - copies < fp32.activations
    assert mixed.activations - copies == pytest.approx(
        8 * 84 * 30 * ((2 * 576 + 2 * 192 + 4 * 1536) * 2 + 4 * 576 * 4) / 1e9
        + 216 * 49152 * (2 + 8) / 1e9)
    # QLoRA's 4-bit layers dequantize per call: only its unquantized weights (embedding, norms) get a copy
    q = estimate(shape, "qlora", batch=8, seq_len=84, dtype="fp32", logit_tokens=216, autocast=True,
                 gradient_checkpointing=False)
    lora = estimate(shape, "lora", batch=8, seq_len=84, dtype="fp32", logit_tokens=216, autocast=True)
    assert lora.activations - q.activations == pytest.approx(2 * shape.block_linear_params / 1e9)


@pytest.mark.parametrize("kwargs", [dict(logit_tokens=0), dict(batch=2, seq_len=10, logit_tokens=21),
                                    dict(autocast=True, dtype="bf16")])
def test_new_arguments_refuse_values_that_mean_nothing(kwargs):
    with pytest.raises(ValueError, match="logit_tokens|autocast"):
        estimate("smollm2-135m", "lora", **kwargs)


def test_activation_formula_matches_what_autograd_saves():
    """The per-token activation count is checked against the bytes autograd really keeps for a
    backward pass: one fp32 LoRA forward of SmolLM2 on 2 rows of 48 tokens, every saved tensor
    counted once (weights excluded)."""
    import torch

    from labkit.config import TrainConfig
    from labkit.sft.train import build_model

    model, _ = build_model(TrainConfig(run_name="t", method="lora", rank=16, precision="fp32"))
    model.train()
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved = {}

    def pack(t):
        if isinstance(t, torch.Tensor) and t.untyped_storage().data_ptr() not in params:
            saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    ids = torch.randint(0, 49152, (2, 48))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        hidden = model(input_ids=ids, use_cache=False, output_hidden_states=True, logits_to_keep=1).hidden_states[-1]
        logits = model.get_output_embeddings()(hidden[:, :8].reshape(-1, 576)).float()
        torch.nn.functional.cross_entropy(logits, ids[:, :8].reshape(-1)).backward()
    e = estimate("smollm2-135m", "lora", batch=2, seq_len=48, dtype="fp32", logit_tokens=16)
    assert sum(saved.values()) / 1e9 == pytest.approx(e.activations, rel=0.25)
