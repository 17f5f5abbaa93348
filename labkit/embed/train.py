"""Fine-tune the embedder with SentenceTransformerTrainer, plain MNRL or MNRL inside MatryoshkaLoss.

MultipleNegativesRankingLoss scores each query against every product in the batch and asks the
right one to win; the catalog's third column adds a hard negative (a sibling-category product
with the same words). MatryoshkaLoss (Kusupati et al. 2022) applies that same loss to the first
384, 256, 128, 64 and 32 numbers of each embedding and sums the results, so every prefix is
trained to be an embedding of its own.

Each run follows labkit's one run protocol (:mod:`labkit.runs`): it trains in
``runs/<name>-<config hash>.partial/`` and is renamed once ``summary.json`` is written, holding
``config.yaml``, ``metrics.jsonl``, ``summary.json``, ``loss.png`` and ``model/`` (safetensors).
An identical config reuses the finished run; ``retrain=True`` moves the old folder aside first.

>>> run = train(EmbedConfig(name="gear-mrl"))              # doctest: +SKIP
>>> model = run.load()                                     # doctest: +SKIP
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path
from typing import ClassVar

from labkit import runs
from labkit.embed.config import EmbedConfig
from labkit.embed.data import RetrievalSet, load_pairs, pairs_dataset, retrieval_set
from labkit.embed.evaluate import PerDimensionEvaluator
from labkit.live import LiveBoard, LiveLossCallback, ProgressCallback, ProgressLine, TrainerCallback, quiet_trainer
from labkit.measure import PeakMemory
from labkit.paths import runs_dir

_METRIC_KEY = re.compile(r"^eval_.*_dim(\d+)_cosine_(ndcg@10)$")


class EmbedRun(runs.RunRecord):
    """A finished (or reused) embedding fine-tune, read back from its folder."""

    config_class: ClassVar[type] = EmbedConfig
    summary_keys: ClassVar[tuple[str, ...]] = ("arm", "steps", "pairs", "wall_seconds", "train_seconds",
                                               "final_train_loss", "peak_rss_bytes")

    @property
    def model_dir(self) -> Path:
        return self.path / "model"

    def load(self):
        """The fine-tuned SentenceTransformer, from this run's safetensors."""
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(str(self.model_dir), device="cpu", local_files_only=True)

    def replay(self, loss_board: LiveBoard | None = None, label: str | None = None,
               metric_board: LiveBoard | None = None) -> None:
        """Draw the stored loss curves, and the nDCG@10 per dimension on ``metric_board``."""
        label = label or self.config.name
        super().replay(loss_board, label)
        if metric_board is None:
            return
        for row in self.history:
            for key, value in row.items():
                match = _METRIC_KEY.match(key)
                if match:
                    metric_board.add(f"{label} @{match.group(1)}", row.get("step", 0), value)


class MetricCallback(TrainerCallback):
    """Feeds a LiveBoard with the evaluator's nDCG@10 per dimension (``"<label> @64"``)."""

    def __init__(self, board: LiveBoard | None, label: str):
        self.board, self.label = board, label

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.board is None:
            return
        for key, value in (logs or {}).items():
            match = _METRIC_KEY.match(key)
            if match:
                self.board.add(f"{self.label} @{match.group(1)}", state.global_step, value)


def run_path(config: EmbedConfig) -> Path:
    return runs_dir() / config.run_folder_name


def _training_rows(config: EmbedConfig, catalog) -> list[dict[str, str]]:
    if config.pairs_path:
        return load_pairs(config.pairs_path)
    return [{"anchor": t.anchor, "positive": t.positive, "negative": t.negative} for t in catalog.train_pairs]


def train(config: EmbedConfig, catalog=None, *, val: RetrievalSet | None = None, retrain: bool = False,
          loss_board: LiveBoard | None = None, metric_board: LiveBoard | None = None,
          label: str | None = None) -> EmbedRun:
    """Train (or reuse) one arm and return its run. Every input is checked before training starts.

    Args:
        config: the run's settings; its hash names the folder.
        catalog: a :class:`labkit.data.gear.GearCatalog` (default: the committed one, restricted
            to ``config.families``). Its val split drives the live nDCG curve and validation loss.
        val: your own validation queries/corpus (:func:`labkit.embed.data.retrieval_set`) for the
            live nDCG curve. With ``config.pairs_path`` and no ``val``, there is no curve and no
            validation loss: the gear catalog's would say nothing about your domain.
        retrain: train again even if an identical finished run exists (the old one is moved aside).
        loss_board: where train/val loss is drawn (default: a new board for this run).
        metric_board: where val nDCG@10 at full and small dims is drawn (optional, shareable).
        label: series prefix on the boards (default: ``config.name``).
    """
    from labkit.data import gear

    label = label or config.name
    folder = run_path(config)
    if runs.is_finished(folder) and not retrain:
        run = EmbedRun.open(folder, reused=True)
        board = loss_board or LiveBoard(title=f"{label}: loss (reused run)", xlabel="step", ylabel="loss")
        run.replay(board, label, metric_board)
        board.finish()
        return run

    # ---- everything that can be wrong is checked here, before the first step ----------------
    catalog = catalog or gear.load()
    if config.families:
        catalog = catalog.subset(list(config.families))
    from labkit.models import load_embedder

    start = time.perf_counter()
    progress = ProgressLine(label)
    progress.note("loading the model")
    train_ds = pairs_dataset(_training_rows(config, catalog), config.use_hard_negatives, config.max_pairs)
    model = load_embedder(config.model)
    model.max_seq_length = config.max_seq_length
    config.check_model_dim(model.get_embedding_dimension())
    if val is None and not config.pairs_path:  # your own pairs: the gear val queries would not fit
        val_queries, val_qrels = catalog.split("val")
        val = retrieval_set(val_queries, catalog.corpus(), val_qrels, name="val")
    val_set = val.take(config.val_queries) if val is not None else None
    val_rows = [] if config.pairs_path else [{"anchor": t.anchor, "positive": t.positive, "negative": t.negative}
                                             for t in catalog.val_pairs[: config.val_pairs]]
    val_ds = pairs_dataset(val_rows, config.use_hard_negatives) if val_rows else None
    dims = config.dims
    small = 64 if 64 in dims else dims[-1]
    evaluator = None if val_set is None else PerDimensionEvaluator(
        val_set, dims=(dims[0], small) if small != dims[0] else (dims[0],), name="val")

    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.losses import MatryoshkaLoss, MultipleNegativesRankingLoss

    loss = MultipleNegativesRankingLoss(model)
    if config.use_matryoshka:
        loss = MatryoshkaLoss(model, loss, list(config.matryoshka_dims),
                              list(config.matryoshka_weights) if config.matryoshka_weights else None)

    staging = runs.begin(folder, config.to_yaml(), retrain=retrain)
    steps_per_epoch = max(1, len(train_ds) // config.batch_size)
    total_steps = max(1, int(round(steps_per_epoch * config.epochs)))
    args = SentenceTransformerTrainingArguments(
        output_dir=str(staging / "trainer"), num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size, per_device_eval_batch_size=config.batch_size,
        learning_rate=config.learning_rate, warmup_steps=config.warmup_ratio,
        logging_steps=max(1, total_steps // 12),
        eval_strategy="steps" if config.eval_every and (val_ds or evaluator) else "no",
        eval_steps=config.eval_every or None, save_strategy="no", report_to="none",
        seed=config.seed, data_seed=config.seed, disable_tqdm=True, dataloader_num_workers=0,
        # Two copies of one product in a batch would make it a "negative" of itself.
        batch_sampler=BatchSamplers.NO_DUPLICATES, use_cpu=True,
    )
    board = loss_board or LiveBoard(title=f"{label}: loss", xlabel="step", ylabel="loss")
    logger = runs.MetricsLogger(staging)
    # Step 0: where the base model stands on the val queries, so the curve starts there.
    progress.note("scoring the starting point")
    before = evaluator(model) if evaluator else {}
    logger.write({"step": 0, **{f"eval_{k}": v for k, v in before.items()}})
    if metric_board is not None and evaluator:
        for d in evaluator.dims:
            metric_board.add(f"{label} @{d}", 0, before[f"val_dim{d}_cosine_ndcg@10"])
    # Widget examples only matter for a model card on the Hub (we never publish one), and
    # their progress bar would land in the lesson's output.
    model.model_card_data.set_widget_examples = lambda dataset: None
    trainer = SentenceTransformerTrainer(
        model=model, args=args, train_dataset=train_ds, eval_dataset=val_ds, loss=loss, evaluator=evaluator,
        callbacks=[LiveLossCallback(board, label, finish=False), MetricCallback(metric_board, label), logger,
                   ProgressCallback(progress)],
    )
    quiet_trainer(trainer)
    train_start = time.perf_counter()
    with PeakMemory() as mem:
        result = trainer.train()
    train_seconds = time.perf_counter() - train_start
    last_eval_step = max((r["step"] for r in runs.read_metrics(staging) if "eval_loss" in r), default=-1)
    needs_final = (val_ds is not None or evaluator is not None) and last_eval_step != trainer.state.global_step
    final = trainer.evaluate() if needs_final else {}
    board.finish(staging / "loss.png")

    model.save(str(staging / "model"), safe_serialization=True)
    shutil.rmtree(staging / "trainer", ignore_errors=True)
    history = runs.read_metrics(staging)
    final_val = {k: v for r in history for k, v in r.items() if _METRIC_KEY.match(k)}
    summary = {
        "arm": "matryoshka" if config.use_matryoshka else "plain",
        "steps": trainer.state.global_step, "pairs": len(train_ds), "epochs": config.epochs,
        "final_train_loss": result.training_loss,
        "final_eval_loss": final.get("eval_loss", next((r["eval_loss"] for r in reversed(history)
                                                        if "eval_loss" in r), None)),
        "val_ndcg@10_by_dim": {m.group(1): v for k, v in final_val.items() if (m := _METRIC_KEY.match(k))},
        "val_ndcg@10_before": {str(d): before[f"val_dim{d}_cosine_ndcg@10"] for d in evaluator.dims}
                              if evaluator else {},
        "val_queries": len(val_set) if val_set else 0,
        "val_queries_skipped": len(val_set.skipped) if val_set else 0,
        "train_seconds": round(train_seconds, 1), "wall_seconds": round(time.perf_counter() - start, 1),
        "pairs_per_second": round(len(train_ds) * config.epochs / train_seconds, 2),
        # sampled during training only: a second arm in the same process does not inherit the first's peak
        "peak_rss_bytes": mem.peak_rss, "rss_before_bytes": mem.start_rss, "torch_threads": _threads(),
        "model_dir": "model", "weights_format": "safetensors",
    }
    runs.finish(staging, folder, summary)
    return EmbedRun.open(folder)


def _threads() -> int:
    import torch

    return torch.get_num_threads()
