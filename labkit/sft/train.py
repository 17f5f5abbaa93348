"""Supervised fine-tuning with TRL + PEFT: ``lora``, ``qlora`` and ``full`` from one TrainConfig.

No hand-written loop: TRL's SFTTrainer trains, PEFT holds the adapters, bitsandbytes the 4-bit
base. labkit adds what a course needs around it: assistant-only loss for any chat template,
length-grouped batches, an LM head that projects only the answer tokens on a CPU, bf16
autocast where the CPU has it, early stopping that keeps the best
adapter, resumable checkpoints, cached run folders, live curves and honest speed/memory figures.

>>> run = train(TrainConfig(method="lora", rank=16), "data/formulary/train.jsonl")  # doctest: +SKIP
>>> run.best_eval_loss, run.tokens_per_second, run.peak_rss_bytes                    # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Iterable

from labkit import allocator, paths, runs
from labkit.config import ConfigError, TrainConfig
from labkit.data.chat import DataError
from labkit.sft.data import (  # noqa: F401 - as_rows, split_eval and load_data are used from here too
    DuplicateRowsWarning, as_rows, load_data, read_train_eval, shown, split_eval, warn_duplicates)
from labkit.live import LiveBoard, LiveLossCallback, ProgressCallback, ProgressLine, quiet_trainer
from labkit.measure import PeakMemory
from labkit.sft.loss import answer_only_loss
from labkit.sft.run import Run
from labkit.sft.tokenize import fingerprint_rows, tokenize_rows

try:
    from transformers import TrainerCallback
    from trl import SFTTrainer
except ImportError:  # pragma: no cover - labkit's light modules stay importable without them
    TrainerCallback = object  # type: ignore[misc,assignment]
    SFTTrainer = object  # type: ignore[misc,assignment]


# ---------------------------------------------------------------------------------------------
# data


# ---------------------------------------------------------------------------------------------
# model


def use_bf16(config: TrainConfig) -> bool:
    import torch

    from labkit.models import cpu_has_bf16

    if config.precision != "auto":
        return config.precision == "bf16"
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return cpu_has_bf16()


def build_model(config: TrainConfig):
    """The model to train (PEFT-wrapped for lora/qlora) and its tokenizer."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    from labkit import models

    # Frozen weights need no fp32 master copy: with bf16 compute, LoRA keeps its base in bf16 (half
    # the memory, and autocast no longer re-casts every weight on every step); PEFT still keeps the
    # adapters in fp32. Full fine-tuning keeps fp32 weights for the optimizer (mixed precision).
    if config.method == "qlora":
        precision = "nf4"
    elif config.method == "lora" and use_bf16(config):
        precision = "bf16"
    else:
        precision = "fp32"
    loaded = models.load(config.model, precision=precision, double_quant=config.double_quant)
    model = loaded.model
    apply_chat_template(loaded.tokenizer, config)
    if config.method == "full":
        model.train()
        return model, loaded.tokenizer
    if config.method == "qlora":
        # (casts norms to fp32 and, with checkpointing, lets gradients reach the adapters' inputs).
        # PEFT still calls transformers' old checkpointing name; its FutureWarning is not the user's to act on.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*gradient_checkpointing_enable.*deprecated", category=FutureWarning)
            model = prepare_model_for_kbit_training(
                model, use_gradient_checkpointing=config.resolved_gradient_checkpointing())
    settings = dict(bias="none")
    settings.update(pass_through(LoraConfig, config.lora))  # lora: section (checked in TrainConfig)
    try:
        lora = LoraConfig(
            r=config.rank,
            lora_alpha=config.resolved_alpha(),
            lora_dropout=config.dropout,
            target_modules=config.target_modules,
            task_type="CAUSAL_LM",
            **settings,
        )
    except (TypeError, ValueError) as exc:
        if not config.lora:
            raise
        raise ConfigError(f"lora: {exc}") from None
    return get_peft_model(model, lora), loaded.tokenizer


def apply_chat_template(tokenizer, config: TrainConfig) -> None:
    """Use the config's chat template, if any; without one, a tokenizer that has none is an error
    that says what to set (transformers would fail later, deep inside apply_chat_template)."""
    template = config.resolved_chat_template()
    if template:
        tokenizer.chat_template = template
    elif not getattr(tokenizer, "chat_template", None):
        raise ConfigError(f"model={config.model!r}: its tokenizer has no chat template; set chat_template in the "
                          "config (a Jinja template file, or the template itself)")


def pass_through(cls, values: dict) -> dict:
    """A pass-through section's values, with numeric strings (YAML reads ``1e-8`` as text) turned
    into numbers for the dataclass's float fields."""
    import dataclasses

    types = {f.name: str(f.type) for f in dataclasses.fields(cls)}
    out = dict(values)
    for key, value in values.items():
        if isinstance(value, str) and "float" in types.get(key, ""):
            try:
                out[key] = float(value)
            except ValueError:
                pass
    return out


def count_parameters(model) -> tuple[int, int]:
    """(trainable, total), counting 4-bit weights at their logical size (PEFT's rule)."""
    if hasattr(model, "get_nb_trainable_parameters"):
        return tuple(int(x) for x in model.get_nb_trainable_parameters())  # type: ignore[return-value]
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total


class _LabTrainer(SFTTrainer):
    """SFTTrainer that, on a single CPU process, projects only the answer tokens through the LM head."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        # TRL's fused LM head is a Triton kernel on a GPU; on a CPU it falls back to a tiled loop of
        # torch ops that also computes the entropy over the whole vocabulary, and was 35% of a LoRA
        # step here (profiled). A 49k-word head only needs projecting where the loss looks (the
        # assistant's tokens, about a third of a chat row), and a plain cross-entropy does the rest.
        # Multi-process (DDP) runs keep TRL's path: the head would be used outside DDP's forward.
        if "labels" not in inputs or self.args.device.type != "cpu" or self.accelerator.num_processes > 1:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        if not return_outputs:
            return answer_only_loss(self, model, inputs, num_items_in_batch)
        if not model.training and self.compute_metrics is None and self.preprocess_logits_for_metrics is None:
            # Evaluation asks for outputs only to pass logits to metrics; with no metrics it keeps the
            # loss alone, so the validation pass can take the cheap path too (it was about half of a
            # short run's wall time on TRL's path: every token through the head, plus the entropy).
            loss = answer_only_loss(self, model, inputs, num_items_in_batch)
            return loss, {"loss": loss}
        return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)


# ---------------------------------------------------------------------------------------------
# the run


def run_dir(config: TrainConfig, train_rows: list[dict], eval_rows: list[dict], world: int = 1) -> Path:
    """``runs/<name>-<hash>``: the hash covers the config, the rows and, beyond one process, the
    number of processes (one-process runs keep the hash they always had)."""
    fp = fingerprint_rows(train_rows) + fingerprint_rows(eval_rows) + (f"|world={world}" if world > 1 else "")
    return paths.runs_dir() / f"{config.run_name}-{config.fingerprint(fp)}"


def _share(value, state):
    """Rank 0's ``value`` on every rank (a no-op for one process)."""
    if state.num_processes <= 1:
        return value
    from accelerate.utils import broadcast_object_list

    box = [value]
    broadcast_object_list(box, from_process=0)
    return box[0]


def check_runs_dir(where: Path) -> None:
    """The runs folder must be a folder labkit can write in: say so in one line before any work."""
    from labkit.errors import PathError

    try:
        where.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if where.exists() and not where.is_dir():
            raise PathError(f"{where}: cannot hold runs: it is a regular file, not a folder (set LABKIT_RUNS_DIR "
                            "to a folder)") from None
        raise PathError.of(exc, where, "create the runs folder (set LABKIT_RUNS_DIR to a writable folder)") from None
    if not os.access(where, os.W_OK | os.X_OK):
        raise PathError(f"{where}: cannot write runs there: permission denied (the folder is read-only for you; "
                        "set LABKIT_RUNS_DIR to a writable folder)")


def planned_steps(config: TrainConfig, n_train_rows: int, world: int = 1) -> int:
    """Optimizer steps the run will take (before any early stop)."""
    per_step = config.batch_size * config.grad_accum * world
    return config.max_steps or math.ceil(config.epochs * math.ceil(n_train_rows / per_step))


def _last_checkpoint(folder: Path) -> Path | None:
    """The newest *complete* checkpoint. A kill -9 during a save can leave the newest one half
    written (no readable trainer_state.json): skip it, say so, and use the one before."""
    ckpts = sorted(folder.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]), reverse=True)
    for ckpt in ckpts:
        try:
            json.loads((ckpt / "trainer_state.json").read_text(encoding="utf-8"))
            return ckpt
        except (OSError, ValueError):
            print(f"note: {ckpt.name} was only partly written (interrupted during a save); skipping it")
    return None


def mean_train_loss(history: list[dict]) -> float | None:
    """The run's average train loss from its whole metrics history, each logged value weighted by
    the steps it covers. (The Trainer's own figure covers only the last session after a resume.)"""
    total, steps, last = 0.0, 0, 0
    for row in history:
        if "loss" in row and row.get("step", 0) > last:
            total += row["loss"] * (row["step"] - last)
            steps += row["step"] - last
            last = row["step"]
    return total / steps if steps else None


def train(
    config: TrainConfig,
    train_data: Any = None,
    eval_data: Any = None,
    *,
    board: LiveBoard | None = None,
    label: str | None = None,
    callbacks: Iterable[Any] = (),
    resume: bool = False,
    retrain: bool = False,
    quiet: bool = False,
) -> Run:
    """Fine-tune and return the :class:`~labkit.runs.Run` (or reuse an identical finished one).

    Args:
        config: the run's TrainConfig.
        train_data: chat JSONL path, list of rows, or Dataset (default: ``config.train_file``).
        eval_data: the same for validation (default: ``config.eval_file``, else a held-out
            ``config.eval_fraction`` of the training rows).
        board: a shared LiveBoard to draw on (to overlay several runs); the caller finishes it.
            Without one, the run draws its own board and shows it when done.
        label: series label on the board (default: the run name).
        resume: continue an interrupted run from its last checkpoint.
        retrain: train even if an identical finished run exists (the old one is moved aside).
        quiet: no progress line (for benchmarks); by default one line shows steps, ETA and the
            last losses (updated in place in a notebook, a tqdm bar in a terminal).
    """
    from accelerate import PartialState

    train_rows, eval_rows, notes = read_train_eval(config, train_data, eval_data)
    label = config.run_name if label is None else label
    import torch

    # cpu=True on a CPU machine: without it a `accelerate launch` rank comes up believing it is
    # alone (num_processes 1), and both ranks would create (and move aside) the run folder.
    state = PartialState(cpu=not torch.cuda.is_available())
    # where freed activations go on a CPU: back to the OS after each step by default (labkit.allocator)
    malloc = "cuda" if torch.cuda.is_available() else allocator.setup()
    # The world size is part of the run: two processes train with twice the effective batch.
    folder = run_dir(config, train_rows, eval_rows, world=state.num_processes)
    if state.is_main_process:
        for note in notes:
            print(note, flush=True)

    # Every rank must take the same path: rank 0 decides (reuse? resume from which checkpoint?)
    # and tells the others, so no rank returns while another waits at a barrier.
    reuse, resume_name = False, None
    if state.is_main_process:
        reuse = runs.is_finished(folder) and not retrain
        if resume and not reuse:
            found = _last_checkpoint(runs.partial_path(folder) / "checkpoints")
            resume_name = found.name if found else None
    reuse, resume_name = _share((reuse, resume_name), state)
    if reuse:
        run = Run.open(folder, reused=True)
        if state.is_main_process:
            run.replay(board, label)
        return run
    staging = runs.partial_path(folder)
    if state.is_main_process:
        check_runs_dir(folder.parent)
        warn_duplicates(train_rows, shown(train_data if train_data is not None else config.train_file, "train data"))
        runs.begin(folder, config.to_yaml(), retrain=retrain, resume=resume)
    state.wait_for_everyone()

    from datasets.utils.logging import disable_progress_bar
    from transformers import set_seed

    disable_progress_bar()  # TRL's "Building labels" bars: the progress line below is the display
    progress = ProgressLine(label or config.run_name, silent=quiet or not state.is_main_process)
    try:
        progress.note("loading the model")
        set_seed(config.seed)  # before the adapters are created: their random init is part of "same seed, same run"
        model, tokenizer = build_model(config)
        progress.note("tokenizing")
        train_tok, train_stats = tokenize_rows(train_rows, tokenizer, config.max_length, "train data")
        eval_tok, _ = tokenize_rows(eval_rows, tokenizer, config.max_length, "eval data")
        if not train_tok:
            raise DataError("train data: no row has an assistant answer left after truncation")
        trainer = _make_trainer(config, model, tokenizer, train_tok, eval_tok, staging)
    except BaseException:
        if state.is_main_process:
            runs.abandon(staging)  # failed before the first step: no half folder left behind
        raise

    own_board = board is None
    board = board or LiveBoard(title=f"{config.run_name}: {config.method}")
    # Only rank 0 writes into the staging folder: another rank saving the figure after rank 0 has
    # renamed the folder would create a second, stray `.partial` folder (seen on a loaded machine).
    png = staging / "loss.png" if state.is_main_process else None
    quiet_trainer(trainer)
    trainer.add_callback(LiveLossCallback(board, label=label, png_path=png if own_board else None, finish=own_board))
    trainer.add_callback(ProgressCallback(progress))
    trainer.add_callback(runs.MetricsLogger(staging))
    if malloc == "trim":
        trainer.add_callback(allocator.trainer_callback())
    for cb in callbacks:
        trainer.add_callback(cb)

    checkpoint = staging / "checkpoints" / resume_name if resume_name else None
    if state.is_main_process:
        runs.truncate_metrics(staging, int(checkpoint.name.split("-")[-1]) if checkpoint else 0)
    trainable, total = count_parameters(model)
    start = time.perf_counter()
    try:
        with PeakMemory() as mem:
            result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    except KeyboardInterrupt as exc:
        exc.labkit_staging = staging  # the CLI names the folder and the command that resumes it
        raise
    wall = time.perf_counter() - start

    if state.is_main_process:
        _save_weights(trainer, tokenizer, config, staging)
        # TRL counts the real (non-pad) tokens of every rank; labkit.loss keeps that count too
        tokens = trainer._total_train_tokens
        log = trainer.state.log_history
        evals = [(r["step"], r["eval_loss"]) for r in log if "eval_loss" in r]
        best_step, best_loss = min(evals, key=lambda x: x[1]) if evals else (None, None)
        summary = {
            "run": folder.name,
            "method": config.method,
            "steps": trainer.state.global_step,
            "max_steps": trainer.state.max_steps,
            "epochs_done": round(trainer.state.epoch or 0.0, 3),
            "final_train_loss": mean_train_loss(runs.read_metrics(staging)) or float(result.training_loss),
            "best_eval_loss": best_loss,
            "best_step": best_step,
            "last_eval_loss": evals[-1][1] if evals else None,
            "stopped_early": trainer.state.global_step < trainer.state.max_steps,
            "resumed_from": checkpoint.name if checkpoint else None,
            "wall_seconds": round(wall, 2),
            "tokens_trained": tokens,
            "tokens_per_second": round(tokens / wall, 2) if wall > 0 else None,
            "peak_rss_bytes": mem.peak_rss,
            "rss_before_bytes": mem.start_rss,
            "peak_cuda_bytes": mem.peak_cuda,
            "trainable_params": trainable,
            "total_params": total,
            "weights": config.keep_weights,
            "bf16": use_bf16(config),
            "gradient_checkpointing": config.resolved_gradient_checkpointing(),
            "allocator": malloc,
            "learning_rate": config.resolved_learning_rate(),
            "alpha": config.resolved_alpha(),
            "processes": state.num_processes,
            "train_rows": len(train_rows),
            "eval_rows": len(eval_rows),
            "train_tokens": train_stats.tokens,
            "longest_row_tokens": train_stats.longest,
            "longest_answer_tokens": train_stats.longest_answer,
            "truncated_rows": train_stats.truncated,
            "dropped_rows": train_stats.dropped,
        }
        if not own_board:  # the shared board is the caller's; still leave this run's own picture
            run_board = LiveBoard(title=folder.name, live=False)
            Run(staging, config, summary, runs.read_metrics(staging)).replay(run_board, label)
            run_board.finish(png, show=False)
        runs.finish(staging, folder, summary)
    state.wait_for_everyone()
    return Run.open(folder)


def _make_trainer(config, model, tokenizer, train_tok, eval_tok, folder: Path):
    import torch
    from datasets import Dataset
    from transformers import EarlyStoppingCallback
    from trl import SFTConfig

    world = int(os.environ.get("WORLD_SIZE", "1"))
    total = planned_steps(config, len(train_tok), world)
    eval_every = config.eval_every or max(1, total // 8)
    log_every = config.log_every or max(1, eval_every // 2)
    settings = dict(
        output_dir=str(folder / "checkpoints"),
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size * 2,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.resolved_learning_rate(),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps or -1,
        warmup_steps=config.warmup_ratio,
        lr_scheduler_type="cosine",
        weight_decay=config.weight_decay,
        logging_steps=log_every,
        eval_strategy="steps",
        eval_steps=eval_every,
        save_strategy="steps",
        save_steps=eval_every,
        save_total_limit=2,
        load_best_model_at_end=config.keep_weights == "best",
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        bf16=use_bf16(config),
        use_cpu=not torch.cuda.is_available(),
        seed=config.seed,
        data_seed=config.seed,
        report_to=[],
        disable_tqdm=True,  # labkit.live.ProgressLine is the one progress display
        padding_free=config.padding_free,
        # padded batches: draw rows of similar length together so little padding is computed
        train_sampling_strategy="random" if config.padding_free else "group_by_length",
        activation_checkpointing=config.resolved_gradient_checkpointing(),
        packing=False,
        max_length=None,  # already truncated (and counted) by labkit.sft.tokenize
        completion_only_loss=True,
        dataloader_num_workers=0,
        save_only_model=False,
        ddp_find_unused_parameters=False if world > 1 else None,
    )
    settings.update(pass_through(SFTConfig, config.trainer))  # trainer: section (checked in TrainConfig)
    try:
        args = SFTConfig(**settings)
    except (TypeError, ValueError) as exc:
        if not config.trainer:
            raise
        raise ConfigError(f"trainer: {exc}") from None
    callbacks = []
    if config.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience))
    return _LabTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(train_tok),
        eval_dataset=Dataset.from_list(eval_tok),
        processing_class=tokenizer,
        callbacks=callbacks,
    )


def record_provenance(target: Path, config: TrainConfig) -> None:
    """Name the base by its hub id, not by this machine's cache path, in the adapter's config and
    model card (so ``PeftModel`` / ``AutoPeftModelForCausalLM`` find it elsewhere), and note where
    the weights came from (for the embedded model: a Q4_1 GGUF dequantised to fp32)."""
    from labkit import models
    from labkit.files import write_atomic

    info = models.provenance(config.model)
    loaded_from = str(models.cached_lm_dir(config.model)) if config.model in models.EMBEDDED else None
    write_atomic(target / "labkit_provenance.json", json.dumps({**info, "method": config.method}, indent=1) + "\n")
    adapter_cfg = target / "adapter_config.json"
    if adapter_cfg.is_file():
        data = json.loads(adapter_cfg.read_text(encoding="utf-8"))
        data["base_model_name_or_path"] = info["base_model"]
        write_atomic(adapter_cfg, json.dumps(data, indent=2, sort_keys=True) + "\n")
    card = target / "README.md"
    if card.is_file():
        text = card.read_text(encoding="utf-8")
        if loaded_from:
            text = text.replace(loaded_from, info["base_model"])
        note = (f"\n## Provenance (labkit)\n\n- base model: `{info['base_model']}`"
                + (f" (labkit's embedded `{info['labkit_model']}`)" if info["labkit_model"] else "")
                + f"\n- base weights: {info['weights']}\n- method: {config.method}\n")
        write_atomic(card, text.rstrip() + "\n" + note)


def _save_weights(trainer, tokenizer, config: TrainConfig, folder: Path) -> None:
    """Save the weights (the best, which the trainer reloaded, or the last: ``keep_weights``) as
    safetensors; keep TensorBoard's event files as ``tensorboard/``; drop the checkpoints unless
    ``keep_checkpoints``."""
    import shutil

    target = folder / ("model" if config.method == "full" else "adapter")
    trainer.model.save_pretrained(str(target), safe_serialization=True)
    tokenizer.save_pretrained(str(target))
    record_provenance(target, config)
    events = folder / "checkpoints" / "runs"  # transformers 5 writes TensorBoard logs under output_dir/runs
    if events.is_dir():
        shutil.move(str(events), str(folder / "tensorboard"))
    if not config.keep_checkpoints:
        shutil.rmtree(folder / "checkpoints", ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# CLI


def cli_train(args, config: TrainConfig | None = None) -> int:
    config = config or TrainConfig.from_yaml(args.config)
    data = args.data or config.train_file
    if not data:
        raise DataError(f"{args.config}: no training data: set train_file in the config or pass --data")
    main = int(os.environ.get("RANK", "0")) == 0  # under accelerate/torchrun, only rank 0 speaks
    if main:
        print(f"training {config.method} on {data} (run {config.run_name}) ...", flush=True)
    try:
        run = train(config, data, resume=args.resume, retrain=args.retrain)
    except KeyboardInterrupt as exc:
        staging = getattr(exc, "labkit_staging", None)
        if staging is not None and main:
            print(f"interrupted: the unfinished run is in {paths.shown(staging)}; continue it with\n"
                  f"  labkit train --config {args.config}{' --data ' + args.data if args.data else ''} --resume",
                  file=sys.stderr)
        raise
    if not main:
        return 0
    s = run.summary
    verb = "reused finished run" if run.reused else "finished"
    print(f"{verb}: {run.path}")
    for key in ("steps", "best_eval_loss", "best_step", "stopped_early", "wall_seconds", "tokens_per_second",
                "peak_rss_bytes", "trainable_params", "total_params"):
        print(f"  {key:<18} {s.get(key)}")
    return 0
