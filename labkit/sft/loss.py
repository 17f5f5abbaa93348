"""The SFT loss on a CPU: next-token cross-entropy on the answer tokens, with the LM head
projected only where the loss looks.

TRL's fused LM head (``fused_lm_head=True``) avoids materialising ``(batch, seq, vocab)`` logits
with a Triton kernel on a GPU. On a CPU it falls back to a tiled loop of torch ops that also
computes the entropy over the whole vocabulary; profiled on a SmolLM2 LoRA step here it was 35%
of the step. A chat row's answer is about a third of its tokens, so projecting just those through
the 49k-word head and calling ``cross_entropy`` is both simpler and faster. The result is the
same loss TRL computes (mean over answer tokens, normalised by ``num_items_in_batch`` under
gradient accumulation), and the same ``mean_token_accuracy`` / ``num_tokens`` metrics are logged.
"""

from __future__ import annotations


def answer_only_loss(trainer, model, inputs, num_items_in_batch):
    """Mean next-token NLL over the labelled (assistant) positions, logits computed only there."""
    import torch
    import torch.nn.functional as F

    mode = "train" if model.training else "eval"
    labels = inputs["labels"]
    forward = {k: v for k, v in inputs.items() if k != "labels"}
    # logits_to_keep=1: the model's own head runs on one position only; we take the final hidden state
    out = model(**forward, use_cache=False, output_hidden_states=True, logits_to_keep=1)
    hidden = out.hidden_states[-1][:, :-1]
    targets = labels[:, 1:]
    keep = targets != -100
    head = trainer.accelerator.unwrap_model(model).get_output_embeddings()
    # the trainer's autocast wraps the model's forward only; this projection needs its own
    picked = hidden[keep]
    if trainer.args.bf16:
        with torch.autocast(picked.device.type, dtype=torch.bfloat16):
            logits = head(picked).float()
    else:
        logits = head(picked.to(head.weight.dtype)).float()
    wanted = targets[keep]
    count = keep.sum() if num_items_in_batch is None else num_items_in_batch
    loss = F.cross_entropy(logits, wanted, reduction="sum") / torch.as_tensor(count).clamp(min=1)
    with torch.no_grad():  # TRL's usual metrics, so logs read the same on either path
        n_valid = int(keep.sum())
        correct = int((logits.argmax(-1) == wanted).sum())
        trainer._metrics[mode]["mean_token_accuracy"].append(correct / n_valid if n_valid else 0.0)
        if mode == "train":
            mask = inputs.get("attention_mask")
            trainer._total_train_tokens += int(mask.sum()) if mask is not None else int(inputs["input_ids"].numel())
        trainer._metrics[mode]["num_tokens"] = [trainer._total_train_tokens]
    return loss
