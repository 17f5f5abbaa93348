"""labkit: the package under Fine-Tuning Lab's notebooks.

One idea per module: ``models`` (embedded models), ``config`` and ``train`` (LoRA / QLoRA / full
fine-tuning), ``live`` (loss curves), ``data`` and ``evaluate`` (course data and yardsticks),
``lora`` and ``quant`` (the ideas up close), ``quiz`` and ``progress`` (decision points),
``embed`` (Matryoshka embeddings). Heavy libraries are imported inside the modules that need them.
"""

__version__ = "0.1.0"
