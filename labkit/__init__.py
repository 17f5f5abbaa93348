"""labkit: the package under Fine-Tuning Lab's notebooks.

One idea per module: ``models`` (embedded models), ``config`` and ``train`` (LoRA / QLoRA / full
fine-tuning), ``live`` (loss curves), ``data`` and ``evaluate`` (course data and yardsticks),
``lora`` and ``quant`` (the ideas up close), ``quiz`` and ``progress`` (decision points),
``embed`` (Matryoshka embeddings). Heavy libraries are imported inside the modules that need them.
"""

import logging as _logging

__version__ = "0.1.0"

# bitsandbytes probes for an optional hub-downloaded CPU kernel when it is first imported (often
# indirectly, through transformers) and logs a warning when it is absent. The built-in CPU path is
# what we want offline, and the warning would otherwise lead every CLI error and notebook output.
_logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(_logging.ERROR)
