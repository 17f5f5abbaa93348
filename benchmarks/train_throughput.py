"""Training throughput and memory: a plain TRL + PEFT script vs labkit's lora / qlora / full.

Everything is measured in one run, on this machine, on the same formulary rows, for the same
number of optimizer steps at batch 8. Each arm trains in its own process so that peak memory
is that arm's alone. Reported per arm: tokens/s (real, non-pad tokens of training data per
second of training), peak RSS while training, the final validation loss computed the same way
for every arm (mean NLL of the assistant tokens, fp32, no autocast), MFU against a matmul peak
measured in this run, and ratios against the plain baseline.

The baseline is what a user writes from the TRL docs: a `messages` dataset, `peft_config`
with r=16 on all linear layers, `use_cpu=True` (required on a CPU), TRL's other defaults
(which include gradient checkpointing and bf16 autocast), and the same learning rate as labkit.

usage: python benchmarks/train_throughput.py [--rows 160] [--repeats 3] [--arms baseline,lora,lora-glibc,lora-fp32,qlora,full]

An arm ending in ``-glibc`` or ``-mmap`` is the same labkit arm under that ``LABKIT_MALLOC`` mode
(labkit.allocator): glibc's default, which keeps freed activations in the process between steps,
or a pinned mmap threshold (lowest peak, slower); labkit's own default returns free pages after
every step.

With ``--repeats`` the arms run in interleaved rounds (order reversed every other round) and each
ratio is taken within a round, then reported as the median and the min-max over rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LR = 2e-4
BATCH = 8


def matmul_peak(dtype_name: str, n: int = 2048, repeats: int = 8) -> float:
    """Sustained GEMM rate (GFLOP/s) of this machine in this dtype: the MFU denominator."""
    import torch

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b  # warm-up
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        best = max(best, 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9)
    return best


def val_loss(model, tokenizer, rows) -> float:
    """Mean NLL over assistant tokens, fp32, identical for every arm."""
    import torch

    from labkit.sft.tokenize import tokenize_rows

    toks, _ = tokenize_rows(rows, tokenizer, 512)
    total, count = 0.0, 0
    model.eval()
    with torch.no_grad():
        for row in toks:
            ids = torch.tensor([row["input_ids"]])
            labels = torch.tensor([[t if m else -100 for t, m in zip(row["input_ids"], row["completion_mask"])]])
            out = model(input_ids=ids, labels=labels, use_cache=False)
            n = int((labels[:, 1:] != -100).sum())
            total += float(out.loss) * n
            count += n
    return total / count


def _data(rows: int):
    from labkit.data import formulary

    return formulary.load_split("train")[:rows], formulary.load_split("val")[:40]


def worker_baseline(rows: int, steps: int) -> dict:
    """The plain script: TRL + PEFT with defaults, as a user would write it."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from labkit import models
    from labkit.measure import PeakMemory

    train_rows, val_rows = _data(rows)
    path, _ = models.prepare()
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(path)

    class Counting(SFTTrainer):  # counts tokens; changes nothing else
        tokens = 0

        def training_step(self, model, inputs, *a, **k):
            Counting.tokens += int(inputs["attention_mask"].sum())
            return super().training_step(model, inputs, *a, **k)

    args = SFTConfig(output_dir="/tmp/labkit-bench-baseline", per_device_train_batch_size=BATCH, max_steps=steps,
                     learning_rate=LR, use_cpu=True, report_to=[], save_strategy="no", disable_tqdm=True)
    trainer = Counting(model=model, args=args, processing_class=tokenizer,
                       train_dataset=Dataset.from_list([{"messages": r["messages"]} for r in train_rows]),
                       peft_config=LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM"))
    start = time.perf_counter()
    with PeakMemory() as mem:
        trainer.train()
    seconds = time.perf_counter() - start
    trainable, total = trainer.model.get_nb_trainable_parameters()
    return {"tokens": Counting.tokens, "seconds": seconds, "peak_rss": mem.peak_rss, "rss_before": mem.start_rss,
            "val_loss": val_loss(trainer.model, tokenizer, val_rows), "bf16": bool(args.bf16),
            "checkpointing": bool(args.activation_checkpointing), "trainable": trainable, "params": total}


def worker_labkit(arm: str, rows: int, steps: int) -> dict:
    import tempfile

    from labkit.config import TrainConfig
    from labkit.sft.train import train

    train_rows, val_rows = _data(rows)
    method = arm.split("-")[0]
    precision = "fp32" if "-fp32" in arm else "auto"
    lr = {"full": 5e-5}.get(method, LR)
    cfg = TrainConfig(run_name=f"bench-{arm}", method=method, precision=precision, max_steps=steps,
                      batch_size=BATCH, learning_rate=lr, eval_every=10_000, early_stopping_patience=None,
                      log_every=max(1, steps // 4))
    os.environ["LABKIT_RUNS_DIR"] = tempfile.mkdtemp(prefix="labkit-bench-")
    run = train(cfg, train_rows, val_rows[:8], retrain=True)
    loaded = run.load()
    s = run.summary
    return {"tokens": s["tokens_trained"], "seconds": s["wall_seconds"], "peak_rss": s["peak_rss_bytes"],
            "rss_before": s["rss_before_bytes"], "val_loss": val_loss(loaded.model, loaded.tokenizer, val_rows),
            "bf16": s["bf16"], "checkpointing": cfg.resolved_gradient_checkpointing(), "trainable": s["trainable_params"],
            "params": s["total_params"]}


def _arm(arm: str, rows: int, peaks: dict) -> dict | None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    for mode in ("glibc", "mmap"):  # the same arm under another labkit.allocator mode
        if arm.endswith(f"-{mode}"):
            env["LABKIT_MALLOC"] = mode
    out = subprocess.run([sys.executable, __file__, "--worker", arm, "--rows", str(rows)],
                         capture_output=True, text=True, env=env)
    line = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
    if out.returncode != 0 or not line:
        print(f"{arm}: FAILED\n{out.stderr[-2000:]}")
        return None
    r = json.loads(line[0][7:])
    r["tokens_per_s"] = r["tokens"] / r["seconds"]
    # Per-token training FLOPs: forward 2N, backward 2N for activation gradients, plus 2N for
    # weight gradients only when the weights train (full). Attention's own FLOPs are small at
    # ~90 tokens and left out, so MFU is slightly understated.
    flops_per_token = (6 if arm.startswith("full") else 4) * r["params"]
    r["mfu"] = r["tokens_per_s"] * flops_per_token / (peaks["bf16" if r["bf16"] else "fp32"] * 1e9)
    return r


def _spread(values: list[float], fmt: str = "{:.2f}") -> str:
    """median [min-max] of repeats (just the value for one)."""
    med = statistics.median(values)
    if len(values) == 1:
        return fmt.format(med)
    return f"{fmt.format(med)} [{fmt.format(min(values))}-{fmt.format(max(values))}]"


def main() -> None:
    from labkit.models import cpu_has_bf16

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=160)
    parser.add_argument("--arms", help="default: baseline,lora,lora-fp32,qlora,full; without native bf16 "
                                       "'lora' would repeat 'lora-fp32' and is left out")
    parser.add_argument("--repeats", type=int, default=1,
                        help="rounds; arms are interleaved within each round and ratios taken within a round")
    parser.add_argument("--worker")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    steps = args.rows // BATCH  # one epoch
    if args.worker:
        result = worker_baseline(args.rows, steps) if args.worker == "baseline" else \
            worker_labkit(args.worker, args.rows, steps)
        print("RESULT " + json.dumps(result), flush=True)
        return

    import torch

    arms = (args.arms or ("baseline,lora,lora-glibc,lora-fp32,qlora,full" if cpu_has_bf16() or torch.cuda.is_available()
                          else "baseline,lora-fp32,lora-fp32-glibc,qlora,full")).split(",")
    rounds = []
    for k in range(args.repeats):
        # the peak is measured in every round: on a shared machine it moves with the neighbours' load
        peaks = {"fp32": matmul_peak("fp32"), "bf16": matmul_peak("bf16")}
        print(f"round {k + 1}/{args.repeats}: matmul peak fp32 {peaks['fp32']:.0f} GFLOP/s, "
              f"bf16 {peaks['bf16']:.0f} GFLOP/s", flush=True)
        results = {}
        for arm in (arms if k % 2 == 0 else arms[::-1]):  # alternate the order: no arm always goes first
            r = _arm(arm, args.rows, peaks)
            if r:
                results[arm] = r
                print(f"  {arm:<10} {r['tokens_per_s']:.0f} tok/s, peak RSS {r['peak_rss'] / 2**20:.0f} MB", flush=True)
        rounds.append({"matmul_peak_gflops": peaks, "arms": results})

    print(f"\n{len(rounds)} round(s), {args.rows} rows ({steps} steps of {BATCH}); median [min-max] over rounds")
    print(f"{'arm':<10} {'tok/s':>16} {'x base':>18} {'peak RSS MB':>18} {'x lora32':>18} {'val loss':>9} "
          f"{'MFU %':>16}  bf16 ckpt")
    for arm in arms:
        got = [r["arms"][arm] for r in rounds if arm in r["arms"]]
        if not got:
            continue
        speed = [r["arms"][arm]["tokens_per_s"] / r["arms"]["baseline"]["tokens_per_s"]
                 for r in rounds if arm in r["arms"] and "baseline" in r["arms"]]
        mem = [r["arms"][arm]["peak_rss"] / r["arms"]["lora-fp32"]["peak_rss"]
               for r in rounds if arm in r["arms"] and "lora-fp32" in r["arms"]]
        print(f"{arm:<10} {_spread([g['tokens_per_s'] for g in got], '{:.0f}'):>16} "
              f"{(_spread(speed) + 'x') if speed else '-':>18} "
              f"{_spread([g['peak_rss'] / 2**20 for g in got], '{:.0f}'):>18} "
              f"{(_spread(mem) + 'x') if mem else '-':>18} {statistics.median(g['val_loss'] for g in got):>9.4f} "
              f"{_spread([100 * g['mfu'] for g in got], '{:.0f}'):>16}  {str(got[0]['bf16']):<5} {got[0]['checkpointing']}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": args.rows, "steps": steps, "rounds": rounds}, indent=1))


if __name__ == "__main__":
    main()
