"""From-scratch LoRA equals PEFT's; parameter arithmetic equals PEFT's count; NF4 up close."""

from __future__ import annotations

import pytest
import torch

from labkit import lora, quant


def _peft_layer(rank=8, alpha=16, seed=0):
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(48, 32))
    model = get_peft_model(net, LoraConfig(r=rank, lora_alpha=alpha, target_modules=["0"], lora_dropout=0.0))
    layer = model.base_model.model[0]
    with torch.no_grad():  # a trained-looking adapter: B away from zero
        layer.lora_B["default"].weight.normal_(0, 0.1)
    return layer


def test_scratch_lora_matches_peft_on_the_same_weights():
    peft_layer = _peft_layer()
    ours = lora.from_peft(peft_layer)
    x = torch.randn(5, 48)
    with torch.no_grad():
        assert torch.allclose(ours(x), peft_layer(x), atol=1e-5)
        assert torch.allclose(ours.merged()(x), peft_layer(x), atol=1e-5)


def test_scratch_lora_starts_as_the_base_model_and_only_trains_a_and_b():
    base = torch.nn.Linear(16, 8)
    layer = lora.LoRALinear(base, rank=4, alpha=8)
    x = torch.randn(3, 16)
    assert torch.equal(layer(x), base(x))
    trainable = [n for n, p in layer.named_parameters() if p.requires_grad]
    assert sorted(trainable) == ["A", "B"]
    assert layer.trainable_parameters() == 4 * (16 + 8)
    # one SGD step moves the output and leaves the base weight alone
    w0 = base.weight.clone()
    layer(x).pow(2).sum().backward()
    with torch.no_grad():
        for p in (layer.A, layer.B):
            p -= 0.1 * p.grad
    assert not torch.equal(layer(x), base(x))
    assert torch.equal(base.weight, w0)


def test_rank_table_reproduces_the_seed_and_real_shapes():
    rows = {r["rank"]: r for r in lora.rank_table("llama-3-8b")}
    # the seed's table: ~2M / ~8M / ~33M / ~131M for r = 4 / 16 / 64 / 256
    assert rows[16]["seed_style"] == 8_388_608 and rows[4]["seed_style"] == 2_097_152
    assert rows[256]["seed_style"] == pytest.approx(131e6, rel=0.03)
    # the real Llama 3 8B shapes give more on all linear layers, less on q/v only
    assert rows[16]["all_linear_params"] == 41_943_040
    assert rows[16]["qkvo_params"] == 13_631_488


@pytest.mark.parametrize("model", ["llama-3-8b", "smollm2-135m"])
def test_closed_form_equals_peft_count(model):
    from labkit.memory import resolve

    shape = resolve(model)
    trainable, total = lora.count_with_peft(model, rank=16)
    assert trainable == shape.lora_params(16, "all-linear")
    assert total - trainable == shape.params  # the presets' parameter counts are exact
    qv, _ = lora.count_with_peft(model, rank=16, targets=["q_proj", "v_proj"])
    assert qv == shape.lora_params(16, "qv")


def test_nf4_levels_are_normal_quantiles():
    ours, theirs = quant.nf4_levels_from_normal(), quant.nf4_levels()
    assert len(theirs) == 16 and theirs.min() == -1 and theirs.max() == 1 and 0 in theirs.tolist()
    assert torch.allclose(ours, theirs, atol=1e-4)


def test_nf4_beats_int4_and_fp4_on_a_real_weight_matrix(smollm):
    weight = smollm.model.model.layers[3].mlp.up_proj.weight
    errors = {r.scheme: r.rmse for r in quant.compare_schemes(weight)}
    assert errors["NF4"] < errors["int4 (absmax)"]
    assert errors["NF4"] < errors["FP4"]


def test_bits_per_parameter():
    assert quant.bits_per_parameter(double_quant=False) == 4.5
    assert quant.bits_per_parameter(double_quant=True) == pytest.approx(4.127, abs=1e-3)
