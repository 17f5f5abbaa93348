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
from dataclasses import dataclass

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
# parameter arithmetic

@dataclass(frozen=True)
class LlamaShape:
    """The shapes that decide parameter counts in a Llama-style decoder."""

    name: str
    hidden: int
    layers: int
    kv_dim: int  # key/value width: num_key_value_heads * head_dim (grouped-query attention)
    mlp: int
    vocab: int
    tied_embeddings: bool
    head_dim: int = 128

    @classmethod
    def from_hf_config(cls, config, name: str = "") -> "LlamaShape":
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        return cls(name or getattr(config, "_name_or_path", "model"), config.hidden_size, config.num_hidden_layers,
                   config.num_key_value_heads * head_dim, config.intermediate_size, config.vocab_size,
                   bool(getattr(config, "tie_word_embeddings", False)), head_dim)

    def linears(self) -> dict[str, tuple[int, int]]:
        """(in, out) of each linear layer inside one decoder block."""
        h, kv, m = self.hidden, self.kv_dim, self.mlp
        return {"q_proj": (h, h), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (h, h),
                "gate_proj": (h, m), "up_proj": (h, m), "down_proj": (m, h)}

    def total_parameters(self) -> int:
        block = sum(i * o for i, o in self.linears().values()) + 2 * self.hidden  # two RMSNorms
        embeddings = self.vocab * self.hidden * (1 if self.tied_embeddings else 2)
        return self.layers * block + embeddings + self.hidden  # final norm

    def lora_parameters(self, rank: int, targets: str | list[str] = "all-linear") -> int:
        """r * (in + out) for every targeted matrix in every block."""
        chosen = self.linears() if targets == "all-linear" else {k: self.linears()[k] for k in targets}
        return self.layers * sum(rank * (i + o) for i, o in chosen.values())


#: Llama 3 8B's published shapes (hidden 4096, 32 layers, 8 KV heads of 128, MLP 14336).
LLAMA3_8B = LlamaShape("Llama-3-8B", hidden=4096, layers=32, kv_dim=1024, mlp=14336, vocab=128256,
                       tied_embeddings=False)
#: SmolLM2-135M, the course's embedded model (matches its config.json).
SMOLLM2_135M = LlamaShape("SmolLM2-135M", hidden=576, layers=30, kv_dim=192, mlp=1536, vocab=49152,
                          tied_embeddings=True, head_dim=64)


def seed_rank_arithmetic(rank: int, hidden: int = 4096, layers: int = 32, matrices_per_layer: int = 2) -> int:
    """The seed's back-of-envelope count: square hidden x hidden matrices (q and v), every layer.

    This is what reproduces its table (r=16 -> ~8M): it ignores grouped-query attention
    (Llama 3's k/v are 4096 x 1024, not square) and the MLP.
    """
    return layers * matrices_per_layer * rank * (hidden + hidden)


def rank_table(shape: LlamaShape, ranks=(4, 16, 64, 256)) -> list[dict]:
    """Trainable parameters (and % of the model) per rank, for q/k/v/o and for all linear layers."""
    total = shape.total_parameters()
    rows = []
    for r in ranks:
        attn = shape.lora_parameters(r, ["q_proj", "k_proj", "v_proj", "o_proj"])
        full = shape.lora_parameters(r)
        rows.append({"rank": r,
                     "qkvo_params": attn, "qkvo_pct": 100 * attn / total,
                     "all_linear_params": full, "all_linear_pct": 100 * full / total})
    return rows


def count_with_peft(shape: LlamaShape, rank: int, targets="all-linear") -> tuple[int, int]:
    """Build the model on the meta device (no memory) and let PEFT count: (trainable, total)."""
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(hidden_size=shape.hidden, num_hidden_layers=shape.layers,
                         num_attention_heads=shape.hidden // shape.head_dim, head_dim=shape.head_dim,
                         num_key_value_heads=shape.kv_dim // shape.head_dim,
                         intermediate_size=shape.mlp, vocab_size=shape.vocab,
                         tie_word_embeddings=shape.tied_embeddings)
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    peft_model = get_peft_model(model, LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=targets,
                                                  task_type="CAUSAL_LM"))
    trainable, total = peft_model.get_nb_trainable_parameters()
    return int(trainable), int(total)
