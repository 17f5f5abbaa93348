"""Configs: one base for every typed, validated config in labkit, and `TrainConfig` for fine-tuning.

:class:`ConfigBase` gives each config dataclass the same behaviour: ``from_dict`` (an unknown
field names the nearest real one), ``from_yaml`` (relative paths resolved against the file),
``to_dict`` / ``to_yaml``, ``replace`` and ``fingerprint`` (the short hash that names a run
folder), and one error type, :class:`ConfigError`, whose message names the field and the value.
:class:`TrainConfig` (LoRA / QLoRA / full) lives here; ``labkit.embed.EmbedConfig`` builds on the
same base.

Course names and the TRL / PEFT names they set (``labkit.sft.train`` applies them):

==========================  ===================================================================
TrainConfig (course name)   TRL ``SFTConfig`` / transformers ``TrainingArguments`` / PEFT name
==========================  ===================================================================
``learning_rate``           ``learning_rate``
``epochs``                  ``num_train_epochs``
``max_steps``               ``max_steps``
``batch_size``              ``per_device_train_batch_size`` (eval: twice that, unless
                            ``trainer: {per_device_eval_batch_size: ...}``)
``grad_accum``              ``gradient_accumulation_steps``
``max_length``              labkit truncates while tokenizing (SFTConfig ``max_length`` is None)
``eval_every``              ``eval_steps`` and ``save_steps``
``log_every``               ``logging_steps``
``warmup_ratio``            ``warmup_steps`` (a value below 1 is a fraction of the steps)
``weight_decay``            ``weight_decay``
``seed``                    ``seed`` and ``data_seed``
``precision``               ``bf16``
``padding_free``            ``padding_free``
``gradient_checkpointing``  ``activation_checkpointing`` (and ``gradient_checkpointing``)
``early_stopping_patience`` ``EarlyStoppingCallback(early_stopping_patience=...)``
``keep_weights``            ``load_best_model_at_end`` (``best`` -> True, ``last`` -> False)
``rank``                    LoraConfig ``r``
``alpha``                   LoraConfig ``lora_alpha``
``dropout``                 LoraConfig ``lora_dropout``
``target_modules``          LoraConfig ``target_modules``
``method: qlora``           ``BitsAndBytesConfig(load_in_4bit, nf4, double quant)`` +
                            ``prepare_model_for_kbit_training``
``chat_template``           ``tokenizer.chat_template``
==========================  ===================================================================

Everything else passes through two sections, checked against the installed libraries' own
dataclasses (a misspelt field names the nearest real one): ``trainer:`` takes any ``SFTConfig`` /
``TrainingArguments`` field (``report_to``, ``optim``, ``lr_scheduler_type``, ``save_total_limit``,
``max_grad_norm``, ``push_to_hub`` ...) and ``lora:`` any ``LoraConfig`` field (``use_rslora``,
``use_dora``, ``bias``, ``modules_to_save``, ``layers_to_transform`` ...). A field that has a course
name above is refused in the section (one name, one place), and so are the few labkit owns:
``output_dir`` (the run folder), ``completion_only_loss`` / ``assistant_only_loss`` (labkit masks the
loss to the answers itself), ``dataset_text_field`` / ``dataset_kwargs`` and ``packing`` (labkit
converts and tokenizes the rows itself; ``padding_free`` is its packing without bin-packing),
``chat_template_path`` (use ``chat_template``), ``resume_from_checkpoint`` (``--resume``), and
LoRA's ``task_type``. Both sections are part of the run's hash.

>>> cfg = TrainConfig(method="lora", rank=16, epochs=2)
>>> cfg.resolved_learning_rate()
0.0002
>>> TrainConfig(rank=0)
Traceback (most recent call last):
...
labkit.config.ConfigError: rank=0: must be a positive integer (the LoRA rank r; the seed starts at 16)
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from labkit.errors import LabkitError

METHODS = ("lora", "qlora", "full")
PRECISIONS = ("auto", "fp32", "bf16")
KEEP_WEIGHTS = ("best", "last")

#: trainer: / lora: fields that have a course name (TRL or PEFT name -> course name).
TRAINER_COURSE_NAMES = {
    "learning_rate": "learning_rate", "num_train_epochs": "epochs", "max_steps": "max_steps",
    "per_device_train_batch_size": "batch_size", "gradient_accumulation_steps": "grad_accum",
    "max_length": "max_length", "eval_steps": "eval_every", "save_steps": "eval_every",
    "logging_steps": "log_every", "warmup_steps": "warmup_ratio", "weight_decay": "weight_decay",
    "seed": "seed", "data_seed": "seed", "bf16": "precision", "padding_free": "padding_free",
    "activation_checkpointing": "gradient_checkpointing", "gradient_checkpointing": "gradient_checkpointing",
    "load_best_model_at_end": "keep_weights",
}
LORA_COURSE_NAMES = {"r": "rank", "lora_alpha": "alpha", "lora_dropout": "dropout", "target_modules": "target_modules"}
#: trainer: / lora: fields labkit sets itself, and why.
TRAINER_OWNED = {
    "output_dir": "the run folder is labkit's (runs/<name>-<hash>/)",
    "completion_only_loss": "labkit computes the loss on the assistant's tokens itself",
    "assistant_only_loss": "labkit computes the loss on the assistant's tokens itself",
    "dataset_text_field": "labkit converts and tokenizes the rows itself (labkit.data.shapes)",
    "dataset_kwargs": "labkit converts and tokenizes the rows itself (labkit.data.shapes)",
    "packing": "labkit tokenizes rows itself; padding_free: true gives packing without bin-packing",
    "packing_strategy": "labkit tokenizes rows itself; padding_free: true gives packing without bin-packing",
    "eval_packing": "labkit tokenizes rows itself; padding_free: true gives packing without bin-packing",
    "chat_template_path": "use the course field chat_template (a file or a template string)",
    "resume_from_checkpoint": "use labkit train --resume (or train(..., resume=True))",
}
LORA_OWNED = {"task_type": "labkit trains causal LMs (CAUSAL_LM)",
              "peft_type": "this section configures LoRA", "base_model_name_or_path": "set by the model"}

#: The seed's learning-rate baselines, meant for 7-8B models trained for thousands of steps.
SEED_LEARNING_RATES = {"full": 2e-5, "lora": 5e-5, "qlora": 2e-5}
#: What the embedded 135M model needs instead. A model this small, trained for a few hundred steps
#: on a CPU, barely moves at the seed's rates (measured: LoRA at 5e-5 had not learned the answer
#: format after two epochs); small models tolerate, and need, roughly 4-10x larger steps. QLoRA
#: stays at LoRA's rate here because NF4 noise on a 135M model is small next to the signal.
SMALL_MODEL_LEARNING_RATES = {"full": 5e-5, "lora": 2e-4, "qlora": 2e-4}
SMALL_MODELS = ("smollm2-135m-instruct",)


class ConfigError(LabkitError, ValueError):
    """A config field has a bad value; the message names the field and the value."""


class ConfigBase:
    """What every labkit config dataclass shares. Subclasses are ``@dataclass`` es.

    ``_unhashed`` names fields that do not change a run's result (its name, where its files
    are), so they stay out of :meth:`fingerprint`; :meth:`_hashed` may resolve defaults (``None``
    meaning "per-method default") so that spelling a default out does not change the hash.
    """

    _unhashed: ClassVar[tuple[str, ...]] = ()
    _path_fields: ClassVar[tuple[str, ...]] = ()

    def replace(self, **changes: Any):
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def _hashed(self) -> dict[str, Any]:
        return {k: v for k, v in self.to_dict().items() if k not in self._unhashed}

    def fingerprint(self, extra: str = "") -> str:
        """Ten hex digits of everything that changes the result (plus ``extra``, e.g. the data's hash)."""
        blob = json.dumps(self._hashed(), sort_keys=True) + "|" + extra
        return hashlib.sha256(blob.encode()).hexdigest()[:10]

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config"):
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: expected a mapping of field: value, got {type(values).__name__}")
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(known))
        if unknown:
            near = difflib.get_close_matches(unknown[0], known, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise ConfigError(f"{source}: unknown field {unknown[0]!r}{hint} (known fields: {', '.join(sorted(known))})")
        try:
            return cls(**_numbers_from_strings(cls, values))
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None

    @classmethod
    def from_yaml(cls, path: str | Path):
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: no such config file")
        values = read_yaml_mapping(path)

        config = cls.from_dict(values, source=str(path))
        # Relative data paths are relative to the config file, not to wherever labkit was started.
        changes = {name: str((path.parent / getattr(config, name)).resolve()) for name in cls._path_fields
                   if getattr(config, name) and not Path(getattr(config, name)).is_absolute()}
        return config.replace(**changes) if changes else config


@dataclass
class TrainConfig(ConfigBase):
    """Everything that decides a fine-tuning run. Identical configs (and data) share one run folder.

    Attributes:
        run_name: folder prefix under ``runs/``; the folder is ``<run_name>-<config hash>``.
        model: an embedded model name, a local folder, or a Hugging Face id.
        method: ``lora`` (frozen base + low-rank adapters), ``qlora`` (the same on a 4-bit NF4
            base) or ``full`` (every weight trained).
        rank: LoRA rank r, the inner width of B·A. The seed's sweet spot is 16.
        alpha: LoRA scale numerator; the update is (alpha / rank)·B·A. Default ``2 * rank``, a
            common choice that keeps the effective step size similar across ranks.
        dropout: dropout on the adapter input (LoRA/QLoRA only). 0 by default, as in PEFT: the
            seed names no value, and on a CPU drawing the random masks took 15% of a LoRA step
            (profiled). Try 0.05-0.1 when a small dataset overfits.
        target_modules: which linear layers get adapters: ``"all-linear"`` (default; the QLoRA
            paper found all layers matter) or a list such as ``["q_proj", "v_proj"]``.
        learning_rate: peak LR. ``None`` picks a per-method default: the seed's 2e-5 / 5e-5 /
            2e-5 (full / LoRA / QLoRA) for other models; for the embedded 135M model 5e-5 /
            2e-4 / 2e-4, because a model that small on a few hundred steps barely moves at the
            seed's rates (see ``SMALL_MODEL_LEARNING_RATES``).
        epochs: passes over the training set. The seed's recipe: 2-3.
        max_steps: stop after this many optimizer steps (overrides ``epochs``); the smoke
            profile uses it to keep CI fast.
        batch_size: examples per device per step. The seed's typical range: 4-8.
        grad_accum: micro-batches accumulated per optimizer step (effective batch =
            batch_size x grad_accum x devices).
        max_length: tokens per example; longer examples are truncated with a counted warning.
        eval_fraction: share of the training data held out for validation when no eval set is
            given; the seed suggests 10-20%.
        eval_every: evaluate (and checkpoint) every N optimizer steps; ``None`` picks about eight
            evaluations per run.
        log_every: log train loss every N steps; ``None`` picks about twice per evaluation.
        early_stopping_patience: stop after this many evaluations without a better validation
            loss; the best checkpoint is kept. ``None`` disables.
        warmup_ratio: share of steps spent warming the LR up from 0.
        weight_decay: AdamW weight decay.
        seed: seeds data order, adapter init and dropout; same seed, same run.
        precision: ``auto`` (bf16 autocast where the hardware has native bf16, else fp32),
            ``fp32`` or ``bf16``.
        double_quant: QLoRA only: also quantize the NF4 block scales.
        padding_free: flatten each batch into one sequence without pad tokens. Off by default:
            it pays off with a varlen attention kernel (flash-attention on a GPU), but PyTorch's
            CPU attention sees one long sequence with a block mask, so its cost grows with the
            square of the whole batch's length. Measured here on 8 formulary rows: 3.3 s per
            step packed vs 2.8 s padded. Off, batches are padded and rows of similar length are
            grouped (``group_by_length``), so little padding is computed either way.
        gradient_checkpointing: recompute activations in the backward pass instead of storing
            them: less memory, about a third more compute. ``None`` (default) means on for QLoRA
            and off otherwise. QLoRA exists to save memory and its paper trains with
            checkpointing (PEFT's ``prepare_model_for_kbit_training`` turns it on too): at 135M
            the activations, not the weights, fill most of the memory (measured: 1.5 GB of
            activations against 0.5 GB of fp32 weights for a batch of 8 chat rows), so 4-bit
            weights alone save little. For LoRA and full fine-tuning labkit leaves it off
            because CPU time is the scarce resource here (TRL turns it on by default).
        train_file, eval_file: training / validation data, used by ``labkit train --config``:
            a ``.jsonl`` / ``.json`` / ``.csv`` / ``.tsv`` / ``.parquet`` file or a ``datasets``
            ``save_to_disk`` folder, in any shape :mod:`labkit.data.shapes` accepts (chat
            messages, TRL prompt/completion, Alpaca, ShareGPT, question/answer columns).
        chat_template: a Jinja chat template (a file path, or the template itself) for a model
            whose tokenizer has none, or to replace its own; saved with the adapter.
        keep_weights: ``best`` (default: the checkpoint with the lowest validation loss is
            reloaded and saved) or ``last`` (the weights as training left them).
        keep_checkpoints: keep ``checkpoints/`` in the run folder after a successful run (by
            default they are deleted once the weights are saved). How many are kept while
            training: ``trainer: {save_total_limit: N}`` (labkit's default 2).
        trainer: pass-through ``SFTConfig`` / ``TrainingArguments`` fields (see the table above),
            e.g. ``{report_to: [tensorboard], optim: adafactor, max_grad_norm: 0.5}``.
        lora: pass-through ``LoraConfig`` fields, e.g. ``{use_rslora: true, bias: lora_only}``.
        train_split, eval_split: which split of a DatasetDict (saved or in memory) to read;
            ``train`` for training, and for validation the first of ``validation`` / ``test`` /
            ``eval`` that exists unless ``eval_split`` names one.
        question_column, answer_column: the column (or key) names of question/answer data.
        system_prompt: a system turn added to rows that have none (converted shapes and chat rows).

    The data options above change the rows, not the recipe: the run's hash covers the rows
    themselves, so they stay out of the config's part of the hash.
    """

    run_name: str = "run"
    model: str = "smollm2-135m-instruct"
    method: str = "lora"
    rank: int = 16
    alpha: float | None = None
    dropout: float = 0.0
    target_modules: Any = "all-linear"
    learning_rate: float | None = None
    epochs: float = 2.0
    max_steps: int | None = None
    batch_size: int = 8
    grad_accum: int = 1
    max_length: int = 512
    eval_fraction: float = 0.1
    eval_every: int | None = None
    log_every: int | None = None
    early_stopping_patience: int | None = 3
    warmup_ratio: float = 0.05
    weight_decay: float = 0.0
    seed: int = 0
    precision: str = "auto"
    double_quant: bool = True
    padding_free: bool = False
    gradient_checkpointing: bool | None = None
    train_file: str | None = None
    eval_file: str | None = None
    train_split: str = "train"
    eval_split: str | None = None
    question_column: str = "question"
    answer_column: str = "answer"
    system_prompt: str | None = None

    chat_template: str | None = None
    keep_weights: str = "best"
    keep_checkpoints: bool = False
    trainer: dict = field(default_factory=dict)
    lora: dict = field(default_factory=dict)

    _unhashed: ClassVar[tuple[str, ...]] = ("run_name", "train_file", "eval_file", "train_split", "eval_split",
                                            "question_column", "answer_column", "system_prompt",
                                            "keep_checkpoints")
    #: fields added after runs were cached: hashed only when set, so older runs keep their hash
    _hashed_if_set: ClassVar[dict[str, Any]] = {"chat_template": None, "keep_weights": "best", "trainer": {},
                                                 "lora": {}}
    _path_fields: ClassVar[tuple[str, ...]] = ("train_file", "eval_file")

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> ConfigError:
            return ConfigError(f"{name}={getattr(self, name)!r}: {why}")

        if not isinstance(self.run_name, str) or not self.run_name or any(c in self.run_name for c in "/\\ "):
            raise bad("run_name", "must be a non-empty name without spaces or slashes")
        if self.method not in METHODS:
            raise bad("method", f"unknown method; expected one of {', '.join(METHODS)}")
        if not _is_int(self.rank) or self.rank <= 0:
            raise bad("rank", "must be a positive integer (the LoRA rank r; the seed starts at 16)")
        if self.alpha is not None and (not _is_number(self.alpha) or self.alpha <= 0):
            raise bad("alpha", "must be a positive number (the update is scaled by alpha / rank)")
        if not _is_number(self.dropout) or not 0 <= self.dropout < 1:
            raise bad("dropout", "must be in [0, 1)")
        if not (self.target_modules == "all-linear" or (
                isinstance(self.target_modules, (list, tuple)) and self.target_modules
                and all(isinstance(m, str) and m for m in self.target_modules))):
            raise bad("target_modules", "must be 'all-linear' or a non-empty list of module names")
        if self.learning_rate is not None and (not _is_number(self.learning_rate) or self.learning_rate <= 0):
            raise bad("learning_rate", "must be a positive number such as 2e-4")
        if self.learning_rate is not None and self.learning_rate > 1e-1:
            raise bad("learning_rate", "is far too large for fine-tuning (typical: 1e-5 to 1e-3)")
        if not _is_number(self.epochs) or self.epochs <= 0:
            raise bad("epochs", "must be positive (the seed's recipe: 2-3)")
        if self.max_steps is not None and (not _is_int(self.max_steps) or self.max_steps <= 0):
            raise bad("max_steps", "must be a positive integer or None")
        for name in ("batch_size", "grad_accum", "max_length"):
            if not _is_int(getattr(self, name)) or getattr(self, name) <= 0:
                raise bad(name, "must be a positive integer")
        if self.max_length < 16:
            raise bad("max_length", "is too short to hold a prompt and an answer (use 128 or more)")
        if not _is_number(self.eval_fraction) or not 0 < self.eval_fraction < 1:
            raise bad("eval_fraction", "must be strictly between 0 and 1 (the seed suggests 0.1-0.2)")
        for name in ("eval_every", "log_every", "early_stopping_patience"):
            value = getattr(self, name)
            if value is not None and (not _is_int(value) or value <= 0):
                raise bad(name, "must be a positive integer or None")
        if not _is_number(self.warmup_ratio) or not 0 <= self.warmup_ratio < 1:
            raise bad("warmup_ratio", "must be in [0, 1)")
        if not _is_number(self.weight_decay) or self.weight_decay < 0:
            raise bad("weight_decay", "must be >= 0")
        if not _is_int(self.seed):
            raise bad("seed", "must be an integer")
        for name in ("double_quant", "padding_free"):
            if not isinstance(getattr(self, name), bool):
                raise bad(name, "must be true or false")
        if self.gradient_checkpointing is not None and not isinstance(self.gradient_checkpointing, bool):
            raise bad("gradient_checkpointing", "must be true, false or null (auto: on for qlora)")
        for name in ("train_split", "question_column", "answer_column"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise bad(name, "must be a non-empty name")
        for name in ("eval_split", "system_prompt"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), str):
                raise bad(name, "must be text or null")
        if self.chat_template is not None and (not isinstance(self.chat_template, str) or not self.chat_template.strip()):
            raise bad("chat_template", "must be a template file path or a Jinja template string")
        if self.keep_weights not in KEEP_WEIGHTS:
            raise bad("keep_weights", f"expected one of {', '.join(KEEP_WEIGHTS)}")
        if not isinstance(self.keep_checkpoints, bool):
            raise bad("keep_checkpoints", "must be true or false")
        for name in ("trainer", "lora"):
            if not isinstance(getattr(self, name), dict):
                raise bad(name, "must be a mapping of field: value")
        if self.lora and self.method == "full":
            raise bad("lora", "applies to method lora or qlora; a full fine-tune has no adapters")
        _check_section("trainer", self.trainer, TRAINER_COURSE_NAMES, TRAINER_OWNED, "SFTConfig / TrainingArguments")
        _check_section("lora", self.lora, LORA_COURSE_NAMES, LORA_OWNED, "LoraConfig")
        if self.precision not in PRECISIONS:
            raise bad("precision", f"expected one of {', '.join(PRECISIONS)}")
        if isinstance(self.target_modules, tuple):
            self.target_modules = list(self.target_modules)

    # -----------------------------------------------------------------------------------------
    def resolved_gradient_checkpointing(self) -> bool:
        if self.gradient_checkpointing is not None:
            return self.gradient_checkpointing
        return self.method == "qlora"

    def resolved_alpha(self) -> float:
        return float(self.alpha) if self.alpha is not None else 2.0 * self.rank

    def resolved_learning_rate(self) -> float:
        if self.learning_rate is not None:
            return float(self.learning_rate)
        table = SMALL_MODEL_LEARNING_RATES if self.model in SMALL_MODELS else SEED_LEARNING_RATES
        return table[self.method]

    def resolved_chat_template(self) -> str | None:
        """The template text: the file's content when ``chat_template`` names a file."""
        value = self.chat_template
        if value is None or "{{" in value or "{%" in value:
            return value
        path = Path(value).expanduser()
        if not path.is_file():
            raise ConfigError(f"chat_template={value!r}: no such file (give a Jinja template file or the template "
                              "itself, which contains {% ... %} / {{ ... }})")
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"chat_template={value!r}: cannot read it ({exc})") from None

    def _hashed(self) -> dict[str, Any]:
        relevant = super()._hashed()
        relevant["alpha"] = self.resolved_alpha()
        relevant["learning_rate"] = self.resolved_learning_rate()
        for name, default in self._hashed_if_set.items():
            if relevant.get(name) == default:
                relevant.pop(name, None)
        if self.chat_template is not None:  # the template itself, not where its file lives
            relevant["chat_template"] = hashlib.sha256((self.resolved_chat_template() or "").encode()).hexdigest()
        return relevant

    @classmethod
    def from_yaml(cls, path: str | Path):
        config = super().from_yaml(path)
        template = config.chat_template
        if template and "{{" not in template and "{%" not in template and not Path(template).expanduser().is_absolute():
            config = config.replace(chat_template=str((Path(path).parent / template).resolve()))
        return config


def library_fields(kind: str) -> list[str]:
    """The real field names of TRL's ``SFTConfig`` (``kind="trainer"``) or PEFT's ``LoraConfig``
    (``"lora"``), as installed. Importing TRL takes seconds (torch), so the names are cached per
    installed version under labkit's cache folder; a config without these sections never asks."""
    from importlib import metadata

    from labkit import paths

    libs = ("trl", "transformers") if kind == "trainer" else ("peft",)
    try:
        tag = "-".join(f"{lib}{metadata.version(lib)}" for lib in libs)
    except metadata.PackageNotFoundError:
        tag = None
    cache = paths.cache_dir() / "fields" / f"{kind}-{tag}.json" if tag else None
    if cache is not None and cache.is_file():
        try:
            return json.loads(cache.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            pass
    if kind == "trainer":
        from trl import SFTConfig as cls
    else:
        from peft import LoraConfig as cls
    names = sorted(f.name for f in dataclasses.fields(cls) if f.init)
    if cache is not None:
        try:
            from labkit.files import write_atomic

            write_atomic(cache, json.dumps(names))
        except OSError:
            pass  # a read-only cache only costs the import next time
    return names


def _check_section(name: str, values: dict, course: dict[str, str], owned: dict[str, str], what: str) -> None:
    """Each key of a pass-through section must be a real field of the library's dataclass that has
    no course name and that labkit does not set itself."""
    if not values:
        return
    real = None
    for key in values:
        if key in course:
            raise ConfigError(f"{name}.{key}: set this with the course field {course[key]!r} "
                              f"(labkit maps {course[key]} to {key})")
        if key in owned:
            raise ConfigError(f"{name}.{key}: not passed through: {owned[key]}")
        real = real if real is not None else library_fields(name)
        if key not in real:
            near = difflib.get_close_matches(str(key), real, n=1, cutoff=0.6)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise ConfigError(f"{name}: unknown field {key!r}{hint} (any {what} field is accepted)")


def _numbers_from_strings(cls, values: dict[str, Any]) -> dict[str, Any]:
    """PyYAML (YAML 1.1) reads ``2e-4`` and ``1e9`` as strings: accept a numeric string for a float field."""
    floats = {f.name for f in dataclasses.fields(cls) if "float" in str(f.type)}
    out = dict(values)
    for name in floats & set(out):
        if isinstance(out[name], str):
            try:
                out[name] = float(out[name])
            except ValueError:
                pass  # the field's own check names the bad value
    return out


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """A YAML file's top-level mapping. Errors name the file and line; a key given twice is refused
    with both line numbers (PyYAML would silently keep the last one)."""
    import yaml

    class _StrictLoader(yaml.SafeLoader):
        pass

    def construct_mapping(loader, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ConfigError(f"{path}:{line}: {key!r} is set twice (lines {seen[key]} and {line}); keep one")
            seen[key] = line
        return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)

    _StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text (byte {exc.start}); re-save it as UTF-8") from None
    try:
        values = yaml.load(text, Loader=_StrictLoader) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(yaml_error(path, exc)) from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping of field: value, got {type(values).__name__}")
    return values


def yaml_error(path: str | Path, exc: Exception) -> str:
    """One line for a PyYAML error, on the line where the problem starts.

    PyYAML marks where it *noticed* a problem (``problem_mark``): for a bracket or quote left open
    that is the next line or the end of the file. When it also knows where the unfinished
    construct began (``context_mark``), that line is the one to open, so it leads.
    """
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    pmark, cmark = getattr(exc, "problem_mark", None), getattr(exc, "context_mark", None)
    context = (getattr(exc, "context", None) or "").removeprefix("while ").strip()
    context = {"parsing a flow sequence": "the [ ... ] list", "parsing a flow mapping": "the { ... } mapping",
               "scanning a quoted scalar": "the quoted text", "parsing a block mapping": "the indented block",
               "parsing a block collection": "the indented list"}.get(context, context or "the value")
    if cmark is not None and pmark is not None and cmark.line < pmark.line:
        return (f"{path}:{cmark.line + 1}: not valid YAML: {context} that starts on line {cmark.line + 1}, "
                f"column {cmark.column + 1} is not finished ({problem} on line {pmark.line + 1})")
    if pmark is not None:
        return f"{path}:{pmark.line + 1}: not valid YAML ({problem}, column {pmark.column + 1})"
    return f"{path}: not valid YAML ({problem})"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)

