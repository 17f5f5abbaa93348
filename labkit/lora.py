"""LoRA from scratch, for teaching, and parameter arithmetic from real model configs.

LoRA (Hu et al., 2021, "LoRA: Low-Rank Adaptation of Large Language Models") freezes a weight
matrix W (out x in) and learns its update as a product of two thin matrices:

    W' = W + (alpha / r) * B @ A,      A: r x in,   B: out x r

B starts at zero, so at step 0 the adapted layer *is* the base layer; A starts random so that
gradients reach B. Only A and B train: r * (in + out) numbers instead of in * out.

:class:`LoRALinear` is the whole idea in a dozen lines; the course checks it against PEFT's
layer on the same weights (:func:`from_peft`). Training in labkit uses PEFT itself.

>>> import torch
>>> base = torch.nn.Linear(8, 4)
>>> layer = LoRALinear(base, rank=2, alpha=4)
>>> torch.equal(layer(torch.ones(1, 8)), base(torch.ones(1, 8)))   # B = 0: no change yet
True
"""

from __future__ import annotations

import math
import torch
from torch import nn


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank update (alpha / rank) * B @ A."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float = 0.0):
        super().__init__()
        if rank <= 0:
            raise ValueError(f"rank={rank}: must be a positive integer")
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.rank, self.alpha = rank, alpha
        self.scaling = alpha / rank
        self.A = nn.Parameter(torch.empty(rank, base.in_features))
        self.B = nn.Parameter(torch.zeros(base.out_features, rank))
        # Same init as the paper and PEFT: A random (Kaiming-uniform), B zero.
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x @ A.T @ B.T costs r * (in + out) per token: never build the out x in product here.
        return self.base(x) + (self.dropout(x) @ self.A.T @ self.B.T) * self.scaling

    def delta_weight(self) -> torch.Tensor:
        return self.scaling * self.B @ self.A

    def merged(self) -> nn.Linear:
        """A plain Linear with the update folded in: same outputs, zero extra inference cost."""
        out = nn.Linear(self.base.in_features, self.base.out_features, bias=self.base.bias is not None)
        with torch.no_grad():
            out.weight.copy_(self.base.weight + self.delta_weight())
            if self.base.bias is not None:
                out.bias.copy_(self.base.bias)
        return out

    def trainable_parameters(self) -> int:
        return self.A.numel() + self.B.numel()


def from_peft(peft_layer, adapter: str = "default") -> LoRALinear:
    """Our LoRALinear holding exactly the weights of a PEFT ``lora.Linear`` (to compare outputs)."""
    base = peft_layer.base_layer
    rank = peft_layer.r[adapter]
    ours = LoRALinear(base, rank=rank, alpha=peft_layer.lora_alpha[adapter])
    with torch.no_grad():
        ours.A.copy_(peft_layer.lora_A[adapter].weight)
        ours.B.copy_(peft_layer.lora_B[adapter].weight)
    ours.scaling = peft_layer.scaling[adapter]
    return ours


# ---------------------------------------------------------------------------------------------
# parameter arithmetic (model shapes live in labkit.memory, shared with the memory estimator)

ATTENTION = "attention"  # q, k, v, o
ALL_LINEAR = "all-linear"  # q, k, v, o, gate, up, down


def seed_rank_arithmetic(rank: int, hidden: int = 4096, layers: int = 32, matrices_per_layer: int = 2) -> int:
    """The seed's back-of-envelope count: square hidden x hidden matrices (q and v), every layer.

    This is what reproduces its table (r=16 -> ~8M): it ignores grouped-query attention
    (Llama 3's k/v are 4096 x 1024, not square) and the MLP.
    """
    return layers * matrices_per_layer * rank * (hidden + hidden)


def rank_table(model="llama-3-8b", ranks=(4, 16, 64, 256)) -> list[dict]:
    """Trainable parameters (and % of the model) per rank: the seed's count, q/k/v/o, all linear."""
    from labkit.memory import resolve

    shape = resolve(model)
    rows = []
    for r in ranks:
        attn, full = shape.lora_params(r, ATTENTION), shape.lora_params(r, ALL_LINEAR)
        rows.append({"rank": r, "seed_style": seed_rank_arithmetic(r, shape.hidden, shape.layers),
                     "qkvo_params": attn, "qkvo_pct": 100 * attn / shape.params,
                     "all_linear_params": full, "all_linear_pct": 100 * full / shape.params})
    return rows


def count_with_peft(model="llama-3-8b", rank: int = 16, targets: str | list[str] = "all-linear") -> tuple[int, int]:
    """Build the real architecture on the meta device (no memory) and let PEFT count.

    Returns (trainable, total) exactly as PEFT reports them for ``get_peft_model`` — the check
    that the closed-form arithmetic above and in ``labkit.memory`` is right.
    """
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    from labkit.memory import resolve

    shape = resolve(model)
    head_dim = 64  # any width dividing hidden and kv gives the same parameter count
    config = LlamaConfig(hidden_size=shape.hidden, num_hidden_layers=shape.layers, head_dim=head_dim,
                         num_attention_heads=shape.hidden // head_dim, num_key_value_heads=shape.kv // head_dim,
                         intermediate_size=shape.mlp_width, vocab_size=shape.vocab,
                         tie_word_embeddings=shape.tied_embeddings)
    with torch.device("meta"):
        base = LlamaForCausalLM(config)
    peft_model = get_peft_model(base, LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=targets,
                                                 task_type="CAUSAL_LM"))
    trainable, total = peft_model.get_nb_trainable_parameters()
    return int(trainable), int(total)
