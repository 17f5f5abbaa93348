"""How much memory does fine-tuning take? An estimator with every assumption spelled out.

``estimate(model, method)`` splits training memory into six lines, all in GB (10^9 bytes):

- **weights**: the model itself. ``full`` and ``lora``: every parameter at ``dtype`` (2 bytes for
  bf16, 4 for fp32). ``qlora``: the linear layers of the transformer blocks in NF4 with double
  quantization, 4.127 bits each (4 bits + an 8-bit scale per 64 weights + a 32-bit scale per 256
  scales); embeddings, the output head and norms stay at ``dtype``, as bitsandbytes leaves them.
- **gradients**: one per trainable parameter, at ``dtype`` for full fine-tuning, fp32 for adapters.
- **optimizer states**: AdamW keeps two fp32 moments per trainable parameter (8 bytes);
  ``adamw-8bit`` keeps two 8-bit moments (2 bytes); ``sgd`` keeps none.
- **adapters**: the LoRA matrices themselves, fp32 (4 bytes per parameter). Their count comes
  from the model's shape: rank x (in + out) for every targeted linear layer.
- **activations**: what the backward pass needs, for ``batch`` x ``seq_len`` tokens. Per token and
  layer a Llama-style block keeps about 6h + 2kv + 4I values (h hidden width, kv key/value width,
  I MLP width: norm inputs, projections, attention output, the gated MLP's four intermediates),
  at ``dtype``; attention is assumed memory-efficient (SDPA / flash: no seq^2 term). Gradient
  checkpointing keeps only each layer's input (h values) plus one layer being recomputed. The
  loss adds the logits: ``logit_tokens`` x vocab x (``dtype`` + 8) bytes (an fp32 copy and its
  gradient), every position unless fewer go through the head. Under ``autocast`` (bf16 compute
  over fp32 weights) the projections' outputs are bf16, the residual stream and norms fp32, and a
  bf16 copy of each fp32 weight stays cached for the step. Checked against the bytes autograd
  saves for SmolLM2 (``tests/test_memory.py``); what a CPU process holds beyond those (allocator
  leftovers, a bf16 step's extra working memory) is not modelled.
  This follows Korthikanti et al. 2022 ("Reducing activation recomputation"), adapted to
  SwiGLU; LoRA dropout is assumed 0 (PEFT's default), which adds no copies.
- **overhead**: ``runtime_gb``, a fixed allowance for the CUDA context and allocator slack, or
  the Python + torch process itself on a CPU. Calibrate it by measuring an idle process.

Per parameter, the big three lines are therefore (bf16, AdamW): full 2 + 2 + 8 = 12 bytes;
LoRA 2 bytes frozen + 16 bytes per adapter parameter; QLoRA ~0.52 bytes frozen + 16 per adapter
parameter. ``per_parameter_bytes`` returns exactly these numbers. The 12 bytes of full fine-tuning
leave out the fp32 master copy of the weights that mixed-precision training usually keeps; with it
the figure is 16 bytes (about 128 GB for 8B parameters). Each estimate's assumptions give both.

The estimator models Llama-style decoders: a size given in billions must be at least
``MIN_BILLIONS`` (below that the inferred shape stops looking like a transformer), and a LoRA rank
above the smaller side of a targeted matrix is counted but flagged in ``Estimate.warnings``.

A model is a ``ModelShape`` (real architecture numbers), a preset name (``PRESETS``) or a number
of parameters in billions, for which a Llama-like shape is inferred (see ``ModelShape.from_params``).
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

GB = 1e9
METHODS = ("full", "lora", "qlora")
DTYPE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}
OPTIMIZER_BYTES = {"adamw": 8, "adamw-8bit": 2, "sgd": 0}
NF4_BYTES = (4 + 8 / 64 + 32 / (64 * 256)) / 8  # 4-bit codes + double-quantized block scales
ADAPTER_BYTES = 4  # LoRA matrices are kept in fp32 so small updates are not rounded away
MASTER_COPY_BYTES = 4  # the fp32 master weights of mixed-precision full fine-tuning (not counted)
# Below this size, ModelShape.from_params's Llama-like rule (hidden = 128 x layers, a 32k-token
# vocabulary) leaves an MLP narrower than the hidden size: not a shape worth estimating from.
MIN_BILLIONS = 0.25
MAX_BILLIONS = 10_000
TARGETS = {
    "attention": ("q", "k", "v", "o"),
    "qv": ("q", "v"),
    "all-linear": ("q", "k", "v", "o", "gate", "up", "down"),
}


@dataclass(frozen=True)
class ModelShape:
    """The few architecture numbers the estimate needs (a Llama-style decoder).

    ``intermediate`` (MLP width) is derived from ``params`` when omitted; ``kv_dim`` (width of the
    K and V projections, smaller than ``hidden`` with grouped-query attention) defaults to
    ``hidden``.
    """

    name: str
    params: int
    hidden: int
    layers: int
    vocab: int
    intermediate: int | None = None
    kv_dim: int | None = None
    tied_embeddings: bool = False

    def __post_init__(self):
        for name in ("params", "hidden", "layers", "vocab"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"ModelShape.{name} must be positive, got {getattr(self, name)!r}")
        if self.mlp_width <= 0:
            raise ValueError(f"ModelShape {self.name}: {self.params:,} parameters are too few for "
                             f"{self.layers} layers of width {self.hidden} and a {self.vocab}-token vocabulary")

    @classmethod
    def from_params(cls, params: float, *, name: str | None = None, hidden: int | None = None,
                    layers: int | None = None, vocab: int = 32000, tied_embeddings: bool = False,
                    **kwargs) -> "ModelShape":
        """A plausible shape for a bare parameter count (any missing field is inferred).

        Llama-family models keep hidden ~= 128 x layers and about 12 x hidden^2 parameters per
        layer, so layers ~= (params / 196608)^(1/3). Activations scale with layers x hidden, which
        this rule gets within ~15% for Llama 2 13B and Llama 3 8B / 70B.
        """
        params = int(params)
        if layers is None:
            layers = max(1, round((params / (12 * 128 ** 2)) ** (1 / 3))) if hidden is None else \
                max(1, round(params / (12 * hidden ** 2)))
        if hidden is None:
            hidden = 128 * layers
        return cls(name=name or f"{params / 1e9:g}B", params=params, hidden=hidden, layers=layers,
                   vocab=vocab, tied_embeddings=tied_embeddings, **kwargs)

    @property
    def kv(self) -> int:
        return self.kv_dim or self.hidden

    @property
    def embedding_params(self) -> int:
        return self.vocab * self.hidden * (1 if self.tied_embeddings else 2)

    @property
    def mlp_width(self) -> int:
        if self.intermediate:
            return self.intermediate
        per_layer = (self.params - self.embedding_params) / self.layers
        attention = 2 * self.hidden ** 2 + 2 * self.hidden * self.kv
        return int((per_layer - attention) / (3 * self.hidden))

    def linears(self) -> dict[str, tuple[int, int]]:
        """(in, out) of each linear layer in one block."""
        h, kv, i = self.hidden, self.kv, self.mlp_width
        return {"q": (h, h), "k": (h, kv), "v": (h, kv), "o": (h, h),
                "gate": (h, i), "up": (h, i), "down": (i, h)}

    @property
    def block_linear_params(self) -> int:
        return self.layers * sum(a * b for a, b in self.linears().values())

    def lora_params(self, rank: int, targets: str = "all-linear") -> int:
        """Trainable LoRA parameters: rank x (in + out) per targeted layer, in every block."""
        names = TARGETS[targets]
        return self.layers * sum(rank * (a + b) for n, (a, b) in self.linears().items() if n in names)


PRESETS = {
    "smollm2-135m": ModelShape("SmolLM2-135M", 134_515_008, hidden=576, layers=30, vocab=49152,
                               intermediate=1536, kv_dim=192, tied_embeddings=True),
    "llama-2-7b": ModelShape("Llama 2 7B", 6_738_415_616, hidden=4096, layers=32, vocab=32000,
                             intermediate=11008),
    "llama-3-8b": ModelShape("Llama 3 8B", 8_030_261_248, hidden=4096, layers=32, vocab=128256,
                             intermediate=14336, kv_dim=1024),
    "llama-2-13b": ModelShape("Llama 2 13B", 13_015_864_320, hidden=5120, layers=40, vocab=32000,
                              intermediate=13824),
    "llama-3-70b": ModelShape("Llama 3 70B", 70_553_706_496, hidden=8192, layers=80, vocab=128256,
                              intermediate=28672, kv_dim=1024),
}


def resolve(model) -> ModelShape:
    """A ``ModelShape``, a preset name, or a number of parameters in billions."""
    if isinstance(model, ModelShape):
        return model
    if isinstance(model, str):
        key = model.strip().lower()
        if key not in PRESETS:
            raise ValueError(f"unknown model {model!r}; presets: {', '.join(PRESETS)}, or a size in billions")
        return PRESETS[key]
    if isinstance(model, (int, float)) and not isinstance(model, bool):
        if model > MAX_BILLIONS:
            raise ValueError(f"model size {model:g} should be in billions of parameters (e.g. 8 or 0.5), and this "
                             f"estimator goes up to {MAX_BILLIONS:,}B; for an exact count use "
                             "ModelShape.from_params(134_515_008, ...)")
        if not model > 0:
            raise ValueError(f"model size {model:g}: give a positive number of billions of parameters (e.g. 8 or 0.5)")
        if model < MIN_BILLIONS:
            raise ValueError(f"{model:g}B parameters is below the smallest model this estimator models from a size "
                             f"alone ({MIN_BILLIONS:g}B): at that size it cannot guess a realistic layout of layers. "
                             "For SmolLM2-135M choose its preset; for another small model give its real shape "
                             "with ModelShape(name, params, hidden=..., layers=..., vocab=...).")
        return ModelShape.from_params(model * 1e9)
    raise TypeError(f"model must be a ModelShape, a preset name or billions of parameters, not {type(model).__name__}")


def per_parameter_bytes(method: str, dtype: str = "bf16", optimizer: str = "adamw") -> dict[str, float]:
    """Bytes per frozen or trained base parameter, and per adapter parameter, for one method."""
    _check(method, dtype, optimizer)
    d, o = DTYPE_BYTES[dtype], OPTIMIZER_BYTES[optimizer]
    adapter = ADAPTER_BYTES * 2 + o  # weight + gradient (both fp32) + optimizer states
    if method == "full":
        return {"base": d + d + o, "adapter": 0.0}
    return {"base": d if method == "lora" else NF4_BYTES, "adapter": float(adapter)}


def _check(method: str, dtype: str, optimizer: str) -> None:
    if method not in METHODS:
        raise ValueError(f"method {method!r}: expected one of {', '.join(METHODS)}")
    if dtype not in DTYPE_BYTES:
        raise ValueError(f"dtype {dtype!r}: expected one of {', '.join(DTYPE_BYTES)}")
    if optimizer not in OPTIMIZER_BYTES:
        raise ValueError(f"optimizer {optimizer!r}: expected one of {', '.join(OPTIMIZER_BYTES)}")


@dataclass(frozen=True)
class Estimate:
    """One memory estimate in GB, with the assumptions that produced it."""

    model: str
    method: str
    weights: float
    gradients: float
    optimizer: float
    adapters: float
    activations: float
    overhead: float
    trainable_params: int
    assumptions: tuple[str, ...] = field(default=())
    warnings: tuple[str, ...] = field(default=())  # inputs the estimate counts but would not make sense

    LINES = ("weights", "gradients", "optimizer", "adapters", "activations", "overhead")

    @property
    def total(self) -> float:
        return sum(getattr(self, name) for name in self.LINES)

    def breakdown(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in self.LINES} | {"total": self.total}

    def to_text(self) -> str:
        lines = [f"{self.model}, {self.method}: {self.total:.1f} GB "
                 f"({self.trainable_params / 1e6:,.1f}M trainable parameters)"]
        lines += [f"warning: {w}" for w in self.warnings]
        lines += [f"  {name:<12}{value:8.2f} GB" for name, value in self.breakdown().items() if name != "total"]
        lines += ["assumptions:"] + [f"  - {a}" for a in self.assumptions]
        return "\n".join(lines)

    def to_html(self) -> str:
        rows = "".join(f"<tr><td>{name}</td><td style='text-align:right'>{value:.2f}</td></tr>"
                       for name, value in self.breakdown().items() if name != "total")
        notes = "".join(f"<li>{html.escape(a)}</li>" for a in self.assumptions)
        warnings = "".join(f"<p style='color:#a40000'><b>Warning:</b> {html.escape(w)}</p>" for w in self.warnings)
        return (f"<p><b>{self.model}, {self.method}: {self.total:.1f} GB</b> "
                f"({self.trainable_params / 1e6:,.1f}M trainable parameters)</p>{warnings}"
                f"<table><tr><th>part</th><th>GB</th></tr>{rows}"
                f"<tr><td><b>total</b></td><td style='text-align:right'><b>{self.total:.2f}</b></td></tr></table>"
                f"<details><summary>Assumptions</summary><ul>{notes}</ul></details>")

    _repr_html_ = to_html

    def __str__(self) -> str:
        return self.to_text()


def estimate(model, method: str, *, batch: int = 1, seq_len: int = 512, rank: int = 16,
             targets: str = "all-linear", dtype: str = "bf16", optimizer: str = "adamw",
             gradient_checkpointing: bool | None = None, runtime_gb: float = 1.0,
             logit_tokens: int | None = None, autocast: bool = False) -> Estimate:
    """Training memory for ``model`` (shape, preset or billions) with ``method`` (full|lora|qlora).

    See the module docstring for every formula. ``dtype`` is the precision of the frozen weights
    (full and LoRA), of the non-quantized parts (QLoRA) and of activations.
    ``gradient_checkpointing=None`` means on for QLoRA (PEFT's ``prepare_model_for_kbit_training``
    turns it on by default) and off otherwise.

    ``seq_len`` should be the longest padded row a step sees, not the average: the peak is set by
    the longest batch (length-grouped sampling even puts it first). ``logit_tokens`` is how many
    positions per step go through the output head (default ``batch x seq_len``, every position, as
    a model's own loss does; labkit's CPU loss projects only the answer tokens).

    ``autocast=True`` is mixed precision over fp32 weights (``dtype="fp32"``): the projections run
    and save their outputs in bf16 while the residual stream and norms stay fp32, and torch's
    autocast cache holds a bf16 copy of every fp32 weight a matmul touches until the step ends.
    """
    shape = resolve(model)
    _check(method, dtype, optimizer)
    if targets not in TARGETS:
        raise ValueError(f"targets {targets!r}: expected one of {', '.join(TARGETS)}")
    if batch < 1 or seq_len < 1 or rank < 1:
        raise ValueError("batch, seq_len and rank must be at least 1")
    if logit_tokens is not None and not 1 <= logit_tokens <= batch * seq_len:
        raise ValueError(f"logit_tokens={logit_tokens}: expected 1 to batch x seq_len ({batch * seq_len})")
    if autocast and dtype != "fp32":
        raise ValueError(f"autocast=True is bf16 compute over fp32 weights: give dtype='fp32', not {dtype!r}")
    d, o = DTYPE_BYTES[dtype], OPTIMIZER_BYTES[optimizer]
    p = shape.params

    if method == "full":
        trainable, adapters = p, 0.0
        weights, gradients, optimizer_gb = p * d, p * d, p * o
    else:
        trainable = shape.lora_params(rank, targets)
        adapters = trainable * ADAPTER_BYTES
        gradients, optimizer_gb = trainable * ADAPTER_BYTES, trainable * o
        if method == "lora":
            weights = p * d
        else:
            quantized = shape.block_linear_params
            weights = quantized * NF4_BYTES + (p - quantized) * d

    if gradient_checkpointing is None:
        gradient_checkpointing = method == "qlora"
    tokens = batch * seq_len
    logit_tokens = tokens if logit_tokens is None else logit_tokens
    h, kv, mlp = shape.hidden, shape.kv, shape.mlp_width
    if autocast:  # matmul outputs (q, k, v, attention, the MLP's four) in bf16; residual and norms fp32
        layer_bytes, residual_bytes = (2 * h + 2 * kv + 4 * mlp) * 2 + 4 * h * 4, 4 * h
        compute = 2
    else:
        layer_bytes, residual_bytes = (6 * h + 2 * kv + 4 * mlp) * d, d * h
        compute = d
    if gradient_checkpointing:
        acts = tokens * (shape.layers * residual_bytes + layer_bytes)
    else:
        acts = tokens * shape.layers * layer_bytes
    acts += logit_tokens * shape.vocab * (compute + 8)
    if autocast:  # bf16 copies of the fp32 weights the matmuls read (QLoRA's 4-bit layers dequantize instead)
        acts += 2 * (p if method != "qlora" else p - shape.block_linear_params)

    where = "frozen" if method != "full" else "trained"
    weight_note = (f"{where} weights at {dtype} ({d} bytes per parameter)" if method != "qlora" else
                   f"block linear layers in NF4 ({NF4_BYTES:.3f} bytes per parameter, double quantization); "
                   f"embeddings, head and norms ({(p - shape.block_linear_params) / 1e6:,.0f}M parameters) at {dtype}")
    assumptions = (
        f"model: {shape.name}, {p / 1e9:.3g}B parameters, {shape.layers} layers, hidden {shape.hidden}, "
        f"MLP {shape.mlp_width}, K/V width {shape.kv}, vocabulary {shape.vocab}",
        weight_note,
        (_full_note(p, dtype, d, o) if method == "full" else
         f"LoRA rank {rank} on {targets} ({'+'.join(TARGETS[targets])}) in every layer: "
         f"{trainable / 1e6:,.1f}M parameters, fp32 weights and gradients"),
        f"optimizer {optimizer}: {o} bytes of state per trainable parameter",
        f"activations for batch {batch} x {seq_len} tokens at "
        + ("bf16 (projections) and fp32 (residual stream, norms) under autocast, plus the autocast cache's "
           "bf16 weight copies" if autocast else dtype)
        + ", memory-efficient attention, "
        + ("gradient checkpointing on" if gradient_checkpointing else "no gradient checkpointing")
        + f"; logits of {logit_tokens} positions and their fp32 gradient: "
          f"{logit_tokens * shape.vocab * (compute + 8) / GB:.2f} GB",
        f"overhead: a fixed {runtime_gb:g} GB for the runtime (CUDA context or the Python process)",
    )
    warnings = () if method == "full" else _rank_warnings(shape, rank, targets, trainable)
    return Estimate(model=shape.name, method=method, weights=weights / GB, gradients=gradients / GB,
                    optimizer=optimizer_gb / GB, adapters=adapters / GB, activations=acts / GB,
                    overhead=runtime_gb, trainable_params=trainable, assumptions=assumptions,
                    warnings=warnings)


def _full_note(params: int, dtype: str, d: int, o: int) -> str:
    counted = d + d + o
    if dtype == "fp32":
        return (f"full fine-tuning: weights and gradients at fp32 ({counted} bytes per parameter with the "
                "optimizer); fp32 weights need no separate master copy")
    return (f"full fine-tuning: weights and gradients at {dtype}, optimizer states fp32: {counted} bytes per "
            f"parameter. Mixed-precision training usually also keeps an fp32 master copy of the weights, "
            f"{MASTER_COPY_BYTES} bytes more: {counted + MASTER_COPY_BYTES} bytes, "
            f"{params * (counted + MASTER_COPY_BYTES) / GB:.0f} GB instead of {params * counted / GB:.0f} GB "
            "for these lines (not counted here)")


def _rank_warnings(shape: ModelShape, rank: int, targets: str, trainable: int) -> tuple[str, ...]:
    """A plain warning when the LoRA rank exceeds the smaller side of a targeted matrix.

    An update B·A of an (in x out) layer has rank at most min(in, out), so a larger rank adds nothing
    a full update could not, and its rank x (in + out) numbers then outnumber the layer's in x out.
    """
    layers = {n: sides for n, sides in shape.linears().items() if n in TARGETS[targets]}
    too_wide = {n: min(a, b) for n, (a, b) in layers.items() if rank > min(a, b)}
    if not too_wide:
        return ()
    adapted = shape.layers * sum(a * b for a, b in layers.values())
    why = ("A LoRA rank cannot usefully exceed the smaller side of the matrix it adapts: beyond it the "
           "update can express nothing more, and the adapter, rank x (in + out) numbers, is larger than "
           "the layer itself (in x out).")
    if len(too_wide) == len(layers) and rank > shape.hidden:
        head = f"LoRA rank {rank} is above this model's hidden size ({shape.hidden})."
    else:
        sides = ", ".join(f"{n} ({w})" for n, w in too_wide.items())
        head = f"LoRA rank {rank} is above the smaller side of some adapted layers: {sides}."
    size = (f"Here the adapters would hold {trainable / 1e6:,.1f}M parameters"
            + (f", more than the {shape.params / 1e6:,.1f}M of the whole model." if trainable > shape.params else
               f", against {adapted / 1e6:,.1f}M in the layers they adapt." if trainable > adapted else "."))
    advice = (f"Choose a rank well below {min(too_wide.values())}, the narrowest side adapted here; "
              "8 to 64 is the usual range.")
    return (f"{head} {why} {size} {advice}",)


# ---------------------------------------------------------------------------------------------
# The seed article's figures, side by side with ours


@dataclass(frozen=True)
class SeedFigure:
    model: str
    method: str
    gb: float
    text: str
    at_least: bool = False


SEED_FIGURES = (
    SeedFigure("llama-3-8b", "full", 80, "80+ GB", at_least=True),
    SeedFigure("llama-3-8b", "lora", 32, "~32 GB"),
    SeedFigure("llama-3-8b", "qlora", 6, "~6 GB"),
    SeedFigure("llama-2-13b", "lora", 52, "~52 GB"),
    SeedFigure("llama-2-13b", "qlora", 10, "~10 GB"),
)


@dataclass(frozen=True)
class Comparison:
    model: str
    method: str
    ours: Estimate
    seed: SeedFigure | None
    verdict: str  # "agrees" | "higher" | "lower" | "no figure"
    why: str


def _why(shape: ModelShape, method: str, ours: Estimate, seed: SeedFigure, verdict: str, kwargs: dict) -> str:
    if method == "full":
        return (f"AdamW's two fp32 moments alone take {ours.optimizer:.0f} GB, so any honest figure is "
                "above 80 GB; one 80 GB card needs 8-bit optimizer states, offloading or sharding.")
    if method == "lora":
        fp32 = estimate(shape, method, **{**kwargs, "dtype": "fp32"})
        return (f"{seed.text} is what 4-byte (fp32) frozen weights give ({shape.params * 4 / GB:.0f} GB of "
                f"weights; our fp32 total is {fp32.total:.0f} GB). Kept in bf16, as is usual on a GPU, "
                f"the weights take {ours.weights:.0f} GB.")
    plain = estimate(shape, method, **{**kwargs, "gradient_checkpointing": False})
    unquantized = (shape.params - shape.block_linear_params) / 1e9
    text = (f"Weights {ours.weights:.1f} GB: the block layers in 4-bit, plus {unquantized:.2f}B parameters "
            f"(embeddings, head) that bitsandbytes leaves in 16-bit. Activations {ours.activations:.1f} GB "
            f"with gradient checkpointing ({plain.activations:.1f} GB without, total {plain.total:.1f} GB).")
    if verdict == "higher":
        text += (f" The seed's {seed.text} is about the 4-bit weights of {shape.params / 1e9:.0f}B parameters "
                 f"({shape.params * NF4_BYTES / GB:.1f} GB) plus a little: it leaves out the 16-bit "
                 "embeddings, which Llama 3's 128k-token vocabulary makes large.")
    return text


def compare_with_seed(tolerance: float = 0.25, **kwargs) -> list[Comparison]:
    """Our estimate beside each of the seed's figures, plus 70B (the seed gives none).

    ``agrees`` means within ``tolerance`` (or above an "at least" figure). ``kwargs`` go to
    ``estimate`` (batch, seq_len, dtype ...).
    """
    figures = {(f.model, f.method): f for f in SEED_FIGURES}
    out = []
    for model in ("llama-3-8b", "llama-2-13b", "llama-3-70b"):
        shape = PRESETS[model]
        for method in METHODS:
            ours = estimate(shape, method, **kwargs)
            seed = figures.get((model, method))
            if seed is None:
                out.append(Comparison(shape.name, method, ours, None, "no figure",
                                      "The seed quotes no figure for this combination."))
                continue
            if seed.at_least:
                verdict = "agrees" if ours.total >= seed.gb else "lower"
            elif abs(ours.total - seed.gb) <= tolerance * seed.gb:
                verdict = "agrees"
            else:
                verdict = "higher" if ours.total > seed.gb else "lower"
            out.append(Comparison(shape.name, method, ours, seed, verdict,
                                  _why(shape, method, ours, seed, verdict, kwargs)))
    return out


def comparison_table(rows: list[Comparison]) -> str:
    """A Markdown table of ``compare_with_seed`` rows."""
    head = ("| model | method | weights | grads + optimizer | adapters | activations | overhead | "
            "ours (GB) | seed | verdict |\n|---|---|---:|---:|---:|---:|---:|---:|---|---|")
    lines = [head]
    for r in rows:
        e = r.ours
        lines.append(f"| {r.model} | {r.method} | {e.weights:.1f} | {e.gradients + e.optimizer:.1f} | "
                     f"{e.adapters:.2f} | {e.activations:.1f} | {e.overhead:.1f} | **{e.total:.1f}** | "
                     f"{r.seed.text if r.seed else '—'} | {r.verdict} |")
    return "\n".join(lines)



def widget():
    """Model x method -> GB, with the breakdown and assumptions, updating as you change inputs."""
    import ipywidgets as widgets

    from labkit.ui import FallbackBox

    # "initial" sizes each label to its text, so long ones ("checkpointing") are not cut off.
    label = {"style": {"description_width": "initial"}}
    model = widgets.Dropdown(options=[(s.name, k) for k, s in PRESETS.items()] + [("custom size", "custom")],
                             value="llama-3-8b", description="model", **label)
    billions = widgets.BoundedFloatText(value=8, min=0.01, max=MAX_BILLIONS, step=0.5, description="billions",
                                        **label)
    method = widgets.ToggleButtons(options=METHODS, value="qlora", description="method", **label)
    dtype = widgets.ToggleButtons(options=("bf16", "fp32"), value="bf16", description="weights", **label)
    optimizer = widgets.Dropdown(options=tuple(OPTIMIZER_BYTES), value="adamw", description="optimizer", **label)
    batch = widgets.BoundedIntText(value=1, min=1, max=1024, description="batch", **label)
    seq_len = widgets.BoundedIntText(value=512, min=16, max=131072, step=128, description="seq len", **label)
    rank = widgets.BoundedIntText(value=16, min=1, max=1024, description="LoRA rank", **label)
    # Dropdown treats None as "nothing selected", hence string keys for the three states.
    checkpointing = widgets.Dropdown(options=[("as PEFT does", "default"), ("on", "on"), ("off", "off")],
                                     value="default", description="checkpointing", **label)
    result = widgets.HTML()
    controls = (model, billions, method, dtype, optimizer, batch, seq_len, rank, checkpointing)

    def update(_=None):
        billions.disabled = model.value != "custom"
        chosen = billions.value if model.value == "custom" else model.value
        try:
            e = estimate(chosen, method.value, batch=batch.value, seq_len=seq_len.value, rank=rank.value,
                         dtype=dtype.value, optimizer=optimizer.value,
                         gradient_checkpointing={"default": None, "on": True, "off": False}[checkpointing.value])
            result.value = e.to_html()
        except ValueError as exc:
            result.value = f"<p><b>Cannot estimate:</b> {html.escape(str(exc))}</p>"

    for control in controls:
        control.observe(update, names="value")
    update()
    return FallbackBox([widgets.HBox([model, billions]), method, dtype,
                        widgets.HBox([batch, seq_len]), widgets.HBox([rank, checkpointing, optimizer]), result],
                       plain="Memory estimator (interactive when the notebook runs).",
                       markdown="*Memory estimator: interactive when the notebook runs; the table below is static.*")
