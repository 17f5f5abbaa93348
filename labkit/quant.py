"""4-bit quantization up close: NF4 vs FP4 vs plain int4 on a real weight matrix.

QLoRA (Dettmers et al., 2023, "QLoRA: Efficient Finetuning of Quantized LLMs") stores the frozen
base in 4-bit NormalFloat (NF4): 16 levels placed at quantiles of a normal distribution, because
trained weights are roughly normal, so equal-probability bins waste fewer codes on empty tails
than evenly spaced int4 levels do. Each block of 64 weights is scaled by its absolute maximum;
"double quantization" then stores those per-block scales in 8 bits as well.

NF4 and FP4 come from bitsandbytes (what training uses); int4 is written here, blockwise
absmax with the same block size, as the naive baseline to compare against.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

BLOCK = 64


def nf4_levels() -> torch.Tensor:
    """The 16 NF4 code values in [-1, 1], as bitsandbytes uses them."""
    import bitsandbytes.functional as F

    return F.get_4bit_type("nf4", device="cpu").float()


def nf4_levels_from_normal() -> torch.Tensor:
    """Rebuild NF4 from the paper's recipe: quantiles of N(0, 1), made exactly zero-centred.

    8 levels from the positive half and 7 from the negative half (plus an exact zero), each
    half's quantiles taken at evenly spaced probabilities with offset 0.9677 (= 1 - 1/(2*15.5)),
    then normalised to [-1, 1]. Matches bitsandbytes' table to ~1e-4.
    """
    normal = torch.distributions.Normal(0.0, 1.0)
    offset = 0.9677083
    pos = normal.icdf(torch.linspace(offset, 0.5, 9)[:-1])
    neg = -normal.icdf(torch.linspace(offset, 0.5, 8)[:-1])
    levels = torch.cat([neg, torch.zeros(1), pos])
    levels = levels / levels.abs().max()
    return torch.sort(levels).values


def int4_roundtrip(weight: torch.Tensor, block: int = BLOCK) -> torch.Tensor:
    """Symmetric int4 (levels -7..7) with one absmax scale per block: quantize, then back."""
    flat = weight.float().reshape(-1, block)
    scale = flat.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / 7
    return (torch.round(flat / scale).clamp(-7, 7) * scale).reshape(weight.shape)


def bnb_roundtrip(weight: torch.Tensor, quant_type: str, block: int = BLOCK) -> torch.Tensor:
    """Quantize with bitsandbytes (``nf4`` or ``fp4``) and dequantize back to float32."""
    import bitsandbytes.functional as F

    packed, state = F.quantize_4bit(weight.float().contiguous(), blocksize=block, quant_type=quant_type)
    return F.dequantize_4bit(packed, state, blocksize=block, quant_type=quant_type).float()


@dataclass
class QuantError:
    scheme: str
    rmse: float
    mean_abs: float
    relative: float  # ||W - Q(W)|| / ||W||
    errors: torch.Tensor  # every element's error, for the histogram

    def row(self) -> dict:
        return {"scheme": self.scheme, "rmse": self.rmse, "mean_abs_error": self.mean_abs,
                "relative_error": self.relative}


def compare_schemes(weight: torch.Tensor, block: int = BLOCK) -> list[QuantError]:
    """Round-trip one matrix through int4, FP4 and NF4 and measure what each loses."""
    weight = weight.detach().float()
    results = []
    for name, approx in (("int4 (absmax)", int4_roundtrip(weight, block)),
                         ("FP4", bnb_roundtrip(weight, "fp4", block)),
                         ("NF4", bnb_roundtrip(weight, "nf4", block))):
        err = (approx - weight).flatten()
        results.append(QuantError(name, float(err.pow(2).mean().sqrt()), float(err.abs().mean()),
                                  float(err.norm() / weight.norm()), err))
    return results


def bits_per_parameter(double_quant: bool, block: int = BLOCK, dq_block: int = 256) -> float:
    """Storage per weight: 4 bits plus the block scale's share (fp32, or 8-bit when double-quantized)."""
    if not double_quant:
        return 4 + 32 / block
    return 4 + 8 / block + 32 / (block * dq_block)


def plot_levels_and_errors(weight: torch.Tensor, results: list[QuantError], title: str = ""):
    """Left: the NF4 levels over the block-normalised weight histogram. Right: error histograms."""
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
    blocks = weight.detach().float().reshape(-1, BLOCK)
    normalised = (blocks / blocks.abs().amax(dim=1, keepdim=True)).flatten()
    ax1.hist(normalised.numpy(), bins=120, density=True, color="lightgray", label="weights / block absmax")
    for i, level in enumerate(nf4_levels().tolist()):
        ax1.axvline(level, color="tab:blue", linewidth=0.9, label="NF4 levels" if i == 0 else None)
    for i, level in enumerate((torch.arange(-7, 8) / 7).tolist()):
        ax1.axvline(level, color="tab:red", linewidth=0.6, linestyle=":", label="int4 levels" if i == 0 else None)
    ax1.set_title("16 NF4 levels sit where the weights are")
    ax1.legend(fontsize=8)
    lim = float(max(r.errors.abs().quantile(0.999) for r in results))
    for r in results:
        ax2.hist(r.errors.numpy(), bins=150, range=(-lim, lim), histtype="step", linewidth=1.3,
                 label=f"{r.scheme}: RMSE {r.rmse:.2e}")
    ax2.set_yscale("log")
    ax2.set_title("round-trip error per weight")
    ax2.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
