"""Supervised fine-tuning: LoRA, QLoRA and full fine-tuning with TRL + PEFT from one TrainConfig.

One idea per module:

* :mod:`labkit.config`          - ``TrainConfig`` (shared config base; every field documented)
* :mod:`labkit.sft.train`       - ``train()``: SFTTrainer + PEFT + bitsandbytes on the run protocol
* :mod:`labkit.sft.isolate`     - ``train_isolated()``: the same in a child process (honest memory);
                                  ``train_arm()``: either, as a plan's ``isolate`` says
* :mod:`labkit.sft.run`         - ``Run``: a finished run; ``load()`` / ``merge()`` the model
* :mod:`labkit.sft.tokenize`    - chat rows -> token ids with an answer-only loss mask
* :mod:`labkit.sft.loss`        - the answer-only LM head loss used on a single CPU process

>>> from labkit.sft import TrainConfig
>>> from labkit.sft.train import train   # the function; labkit.sft.train is also its module
>>> run = train(TrainConfig(method="lora", rank=16), "data/formulary/train.jsonl")   # doctest: +SKIP
>>> run.best_eval_loss, run.tokens_per_second                                        # doctest: +SKIP
"""

from labkit.config import TrainConfig

__all__ = ["Run", "TrainConfig", "train_arm", "train_isolated"]


def __getattr__(name: str):
    # Run too is loaded on first use: labkit.runs pulls in transformers (seconds), and the light
    # parts of this package (labkit.sft.data: `labkit train --dry-run`) must not pay for it.
    if name == "Run":
        from labkit.sft.run import Run

        return Run
    # train_isolated imports TRL and transformers: only when asked for. (No lazy "train": the name
    # belongs to the submodule labkit.sft.train, so the function is imported from there.)
    if name in ("train_isolated", "train_arm"):
        from labkit.sft import isolate

        return getattr(isolate, name)
    raise AttributeError(name)
