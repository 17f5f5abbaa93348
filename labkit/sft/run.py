"""A finished fine-tuning run: its curves and summary, and the fine-tuned model to load or export."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from labkit.config import TrainConfig
from labkit.errors import UsageError
from labkit.runs import RunRecord


class Run(RunRecord):
    """A finished (or reused) SFT run, read back from ``runs/<name>-<hash>/``."""

    config_class: ClassVar[type] = TrainConfig
    summary_keys: ClassVar[tuple[str, ...]] = (
        "method", "best_eval_loss", "best_step", "steps", "stopped_early", "wall_seconds",
        "tokens_per_second", "peak_rss_bytes", "trainable_params", "total_params")

    @property
    def weights_dir(self) -> Path:
        return self.path / ("model" if self.config.method == "full" else "adapter")

    def load(self, precision: str | None = None):
        """The fine-tuned model for inference (base + adapter, or the full model)."""
        from labkit import models

        if self.config.method == "full":
            return models.load(str(self.weights_dir), precision=precision or "fp32")
        from peft import PeftModel

        base_precision = precision or ("nf4" if self.config.method == "qlora" else "fp32")
        loaded = models.load(self.config.model, precision=base_precision)
        self._use_saved_template(loaded.tokenizer)
        loaded.model = PeftModel.from_pretrained(loaded.model, str(self.weights_dir))
        loaded.model.eval()
        loaded.name = f"{self.config.model}+{self.path.name}"
        return loaded

    def merge(self, out_dir: str | Path) -> Path:
        """Fold the adapter into fp32 base weights and save a standalone model (for export)."""
        from peft import PeftModel

        from labkit import models

        out_dir = Path(out_dir)
        if self.config.method == "full":
            raise UsageError(f"{self.path.name}: a full fine-tune has no adapter to merge; use {self.weights_dir}")
        loaded = models.load(self.config.model, precision="fp32")
        self._use_saved_template(loaded.tokenizer)
        merged = PeftModel.from_pretrained(loaded.model, str(self.weights_dir)).merge_and_unload()
        merged.save_pretrained(out_dir, safe_serialization=True)
        loaded.tokenizer.save_pretrained(out_dir)
        return out_dir

    def _use_saved_template(self, tokenizer) -> None:
        """A run trained with ``chat_template`` saved it beside the adapter: answer with the same one."""
        saved = self.weights_dir / "chat_template.jinja"
        if self.config.chat_template and saved.is_file():
            tokenizer.chat_template = saved.read_text(encoding="utf-8")
