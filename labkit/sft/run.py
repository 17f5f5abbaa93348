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
    merge_check: dict | None = None
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

    def merge(self, out_dir: str | Path, check_prompts: list[str] | None = None, max_new_tokens: int = 24) -> Path:
        """Fold the adapter into fp32 base weights and save a standalone model (for export).

        A QLoRA adapter was trained against the 4-bit NF4 base; merged into the fp32 base, it sees
        slightly different weights, so answers can change. For QLoRA this warns, measures it (greedy
        answers of the trained model vs the merged one on ``check_prompts``, default a few short
        questions) and writes the count to ``merge_check.json`` in ``out_dir`` (also returned on
        ``self.merge_check``).
        """
        import json
        import warnings

        from peft import PeftModel

        from labkit import models
        from labkit.files import write_atomic

        out_dir = Path(out_dir)
        if self.config.method == "full":
            raise UsageError(f"{self.path.name}: a full fine-tune has no adapter to merge; use {self.weights_dir}")
        loaded = models.load(self.config.model, precision="fp32")
        self._use_saved_template(loaded.tokenizer)
        merged = PeftModel.from_pretrained(loaded.model, str(self.weights_dir)).merge_and_unload()
        merged.save_pretrained(out_dir, safe_serialization=True)
        loaded.tokenizer.save_pretrained(out_dir)
        self.merge_check = None
        if self.config.method == "qlora":
            prompts = list(check_prompts or QLORA_CHECK_PROMPTS)
            loaded.model = merged
            after = models.generate_batch(loaded, prompts, max_new_tokens=max_new_tokens)
            del merged, loaded
            trained = self.load()  # the 4-bit base + adapter, as it was trained
            before = models.generate_batch(trained, prompts, max_new_tokens=max_new_tokens)
            changed = [i for i, (a, b) in enumerate(zip(before, after)) if a.strip() != b.strip()]
            self.merge_check = {"prompts": len(prompts), "changed": len(changed), "max_new_tokens": max_new_tokens,
                                "examples": [{"prompt": prompts[i], "qlora": before[i], "merged": after[i]}
                                             for i in changed[:3]]}
            write_atomic(out_dir / "merge_check.json", json.dumps(self.merge_check, indent=1) + "\n")
            warnings.warn(f"{self.path.name}: a QLoRA adapter was trained on a 4-bit NF4 base; merged into fp32 "
                          f"weights its greedy answers changed on {len(changed)} of {len(prompts)} test prompts "
                          f"(details in {out_dir / 'merge_check.json'}). Serve the base in NF4 with the adapter to "
                          "keep the trained behaviour exactly.", MergeWarning, stacklevel=2)
        return out_dir

    def _use_saved_template(self, tokenizer) -> None:
        """A run trained with ``chat_template`` saved it beside the adapter: answer with the same one."""
        saved = self.weights_dir / "chat_template.jinja"
        if self.config.chat_template and saved.is_file():
            tokenizer.chat_template = saved.read_text(encoding="utf-8")


class MergeWarning(UserWarning):
    """Merging changed the model's behaviour (a QLoRA adapter folded into dequantised weights)."""


QLORA_CHECK_PROMPTS = (
    "What is the capital of France?",
    "Name three primary colours.",
    "What is 12 times 7?",
    "Give one word that means happy.",
    "Which planet is closest to the sun?",
)
