"""Evaluation generation: labkit's evaluator vs a plain loop calling `model.generate` per question.

Everything is measured in one run, in one process, on the same formulary test questions, with the
same model and greedy decoding and the same `max_new_tokens` (what `evaluate_domain` picks: the
longest reference plus 8). The arms run interleaved (every arm once per repeat, in turn), so a
noisy shared machine slows them alike; per arm we report answers/s (median and min-max over
repeats) and the ratio to the plain loop of the same repeat (median and min-max).

Arms
  plain     the loop a user writes: chat template, `model.generate(ids, max_new_tokens, greedy)`
            one question at a time (KV cache on, as by default)
  before    labkit as it was: left-padded batches of 16 in the given order, no stop
  +sort     batches of 16 sorted by prompt length (order restored)
  +stop     batches of 16 in the given order, each row stopped once its JSON answer is complete
  after     `evaluate_domain` itself: sorted + stopped, batch 16 (the default), scoring included
  after-bN  the same at batch N (the batch-size sweep)
Once per repeat, on the first --nocache-n questions only: `plain` with `use_cache=False` vs with
it (the KV-cache lever). Once: `after` with the model loaded in bf16 (answers compared with fp32).
Also measured: the share of `generate`'s wall time spent outside the model's forward passes
(per-token Python work in the decoding loop), from forward hooks.

Asserted: replies up to and including the first complete JSON object are identical between arms
whose batches hold the same rows (before vs +stop, +sort vs after), and the scores of `after` equal
the scores of the unstopped replies. Reported, not asserted: how many answers differ from the
plain loop (left padding changes fp32 rounding, and greedy decoding can flip at a near tie) and
between sorted and unsorted batches (different padding).

usage: python benchmarks/generate_throughput.py [--n 24] [--repeats 3] [--threads 2]
          [--prompt fewshot|own] [--run runs/<lesson2-r16-...>] [--batches 8,24] [--bf16]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def canon(reply: str) -> str:
    """A reply up to and including its first complete JSON object (the whole reply if none)."""
    from labkit.models import first_json_end

    end = first_json_end(reply)
    return reply[:end] if end is not None else reply


def load_model(args, precision: str = "fp32"):
    from labkit import models

    if args.run:
        from labkit.sft.run import Run

        return Run.open(args.run).load(precision=precision)
    return models.load("smollm2-135m-instruct", precision=precision)


def plain_loop(lm, messages, max_new_tokens: int, **kw) -> list[str]:
    """What a user writes from the transformers docs."""
    import torch

    tok, model = lm.tokenizer, lm.model
    out = []
    for m in messages:
        ids = tok.apply_chat_template(m, add_generation_prompt=True, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            gen = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                                 do_sample=False, temperature=None, top_p=None, top_k=None,
                                 pad_token_id=tok.pad_token_id, **kw)
        out.append(tok.decode(gen[0, ids.shape[1]:], skip_special_tokens=True).strip())
    return out


class ForwardClock:
    """Seconds spent inside the model's forward passes (the rest of `generate` is Python work)."""

    def __init__(self, model):
        self.seconds, self._t = 0.0, None
        self.handles = [model.register_forward_pre_hook(self._pre), model.register_forward_hook(self._post)]

    def _pre(self, *a):
        self._t = time.perf_counter()

    def _post(self, *a):
        self.seconds += time.perf_counter() - self._t

    def close(self):
        for h in self.handles:
            h.remove()


def spread(values) -> str:
    return f"{statistics.median(values):.2f} [{min(values):.2f}-{max(values):.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=24, help="test questions (category-balanced)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the course's laptop has 2 cores)")
    parser.add_argument("--prompt", choices=("fewshot", "own"), default="fewshot",
                        help="fewshot: lesson 2's prompt baseline (3 worked examples; the base model answers in "
                             "JSON); own: each row's own conversation (the base model answers in prose)")
    parser.add_argument("--run", help="evaluate a fine-tuned run folder (runs/<name>-<hash>) instead of the base model")
    parser.add_argument("--batches", default="8,24", help="extra batch sizes for the sweep")
    parser.add_argument("--nocache-n", type=int, default=3, help="questions for the KV-cache-off arm (slow)")
    parser.add_argument("--bf16", action="store_true", help="also run `after` with the model in bf16")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from train_throughput import matmul_peak

    from labkit import models
    from labkit.data import formulary
    from labkit.evaluate import domain

    # n=1024: on a CPU without native bf16 the 2048 GEMM of train_throughput takes minutes
    peaks = {"fp32": matmul_peak("fp32", n=1024, repeats=4), "bf16": matmul_peak("bf16", n=1024, repeats=2)}
    print(f"threads {args.threads}; matmul peak here: fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} "
          f"GFLOP/s; native bf16 (AVX512-BF16/AMX): {models.cpu_has_bf16()}", flush=True)

    lm = load_model(args)
    tok = lm.tokenizer
    test = formulary.load_split("test")
    rows = [test[p["index"]] for p in domain.balanced([{"category": r.get("category"), "index": i}
                                                         for i, r in enumerate(test)], args.n)]
    shots = domain.balanced(formulary.load_split("train"), 3) if args.prompt == "fewshot" and not args.run else None
    messages, references = map(list, zip(*(domain._prompt(r, None, shots) for r in rows)))
    longest = max(len(tok(r, add_special_tokens=False)["input_ids"]) for r in references)
    max_new = min(longest + 8, 256)
    is_json = [domain._is_json_text(r) for r in references]
    lengths = [len(tok(tok.apply_chat_template(m, add_generation_prompt=True, tokenize=False),
                       add_special_tokens=False)["input_ids"]) for m in messages]
    print(f"{len(rows)} questions, prompts {min(lengths)}-{max(lengths)} tokens, max_new_tokens {max_new}, "
          f"prompt={'run ' + args.run if args.run else args.prompt}", flush=True)

    def labkit(batch: int, sort: bool, stop: bool):
        def arm():
            return models.generate_batch(lm, messages, max_new_tokens=max_new, batch_size=batch,
                                         sort_by_length=sort, stop_at_json=is_json if stop else False)
        return arm

    def evaluator(batch: int, loaded=None):
        def arm():
            report = domain.evaluate_domain(loaded or lm, rows, max_new_tokens=max_new, batch_size=batch,
                                            shots=shots, limit=len(rows))
            arm.report = report
            return [p["reply"] for p in report.predictions]
        return arm

    arms = {"plain": lambda: plain_loop(lm, messages, max_new),
            "before": labkit(16, False, False), "+sort": labkit(16, True, False), "+stop": labkit(16, False, True),
            "after": evaluator(16)}
    for b in [int(x) for x in args.batches.split(",") if x.strip()]:
        arms[f"after-b{b}"] = evaluator(b)

    times: dict[str, list[float]] = {a: [] for a in arms}
    replies: dict[str, list[str]] = {}
    python_share = []
    cache_ratio = []
    for rep in range(args.repeats):
        for name, fn in arms.items():
            clock = ForwardClock(getattr(lm.model, "get_base_model", lambda: lm.model)()) if name in ("plain", "after") else None
            start = time.perf_counter()
            out = fn()
            seconds = time.perf_counter() - start
            if clock:
                clock.close()
                python_share.append((name, 1 - clock.seconds / seconds))
            times[name].append(seconds)
            replies.setdefault(name, out)
            print(f"  repeat {rep + 1} {name:<9} {len(rows) / seconds:6.2f} answers/s ({seconds:.1f} s)", flush=True)
        if args.nocache_n:
            few = messages[: args.nocache_n]
            start = time.perf_counter()
            with_cache = plain_loop(lm, few, max_new)
            t_cache = time.perf_counter() - start
            start = time.perf_counter()
            without = plain_loop(lm, few, max_new, use_cache=False)
            t_none = time.perf_counter() - start
            cache_ratio.append(t_none / t_cache)
            same = sum(canon(a) == canon(b) for a, b in zip(with_cache, without))
            print(f"  repeat {rep + 1} KV cache on vs off ({len(few)} questions): {t_none / t_cache:.2f}x, "
                  f"{same}/{len(few)} identical", flush=True)

    # correctness: stopping and sorting change nothing that batches holding the same rows compute
    c = {name: [canon(r) for r in out] for name, out in replies.items()}
    assert c["before"] == c["+stop"], "the JSON stop changed a reply (same batches)"
    assert c["+sort"] == c["after"], "the JSON stop changed a reply (same sorted batches)"
    unstopped = [domain.score_reply(r, reply, ref) for r, reply, ref in zip(rows, replies["+sort"], references)]
    for p, u in zip(arms["after"].report.predictions, unstopped):
        assert (p["json_valid"], p["schema_valid"], p["parsed"], p["correct"]) == \
            (u["json_valid"], u["schema_valid"], u["parsed"], u["correct"]), (p["reply"], u["reply"])
    assert abs(sum(p["seconds"] for p in arms["after"].report.predictions) - arms["after"].report.seconds) < 1e-9
    differ = {name: sum(a != b for a, b in zip(c["plain"], c[name])) for name in c if name != "plain"}
    cut = sum(len(a) < len(b) for a, b in zip(replies["+stop"], replies["before"]))

    print(f"\n{'arm':<10} {'answers/s median [min-max]':>28} {'x plain median [min-max]':>26} {'x before':>9} "
          f"{'differ from plain':>18}")
    result = {"matmul_peak_gflops": peaks, "threads": args.threads, "n": len(rows), "max_new_tokens": max_new,
              "prompt": args.run or args.prompt, "arms": {}}
    for name, ts in times.items():
        rates = [len(rows) / t for t in ts]
        ratio = [times["plain"][i] / t for i, t in enumerate(ts)]
        vs_before = statistics.median(times["before"][i] / t for i, t in enumerate(ts))
        print(f"{name:<10} {spread(rates):>28} {spread(ratio):>26} {vs_before:>8.2f}x "
              f"{differ.get(name, 0):>10}/{len(rows)}")
        result["arms"][name] = {"seconds": ts, "answers_per_s": rates, "x_plain": ratio, "x_before": vs_before,
                                "differ_from_plain": differ.get(name, 0)}
    print(f"\nlevers (median ratio of the same repeat's times):")
    for lever, (a, b) in {"batching (before vs plain)": ("plain", "before"), "sorting (+sort vs before)": ("before", "+sort"),
                          "JSON stop (+stop vs before)": ("before", "+stop"),
                          "sort+stop (after vs before)": ("before", "after")}.items():
        r = [x / y for x, y in zip(times[a], times[b])]
        print(f"  {lever:<30} {spread(r)}x")
        result[lever] = r
    if cache_ratio:
        print(f"  {'KV cache (off / on, plain)':<30} {spread(cache_ratio)}x")
        result["kv_cache_off_over_on"] = cache_ratio
    for name in ("plain", "after"):
        shares = [s for n, s in python_share if n == name]
        print(f"  time outside forward passes, {name:<6} {100 * statistics.median(shares):.0f}% "
              f"[{100 * min(shares):.0f}-{100 * max(shares):.0f}%]")
        result[f"outside_forward_{name}"] = shares
    print(f"\nreplies cut by the JSON stop: {cut}/{len(rows)}; sorted vs unsorted batches differ on "
          f"{sum(a != b for a, b in zip(c['before'], c['+sort']))}/{len(rows)} (padding)")
    if args.bf16:
        lm16 = load_model(args, "bf16")
        arm = evaluator(16, lm16)
        start = time.perf_counter()
        out = arm()
        t16 = time.perf_counter() - start
        same = sum(canon(a) == b for a, b in zip(out, c["after"]))
        print(f"bf16 after: {len(rows) / t16:.2f} answers/s ({statistics.median(times['after']) / t16:.2f}x fp32 after's "
              f"median), {same}/{len(rows)} answers identical to fp32")
        result["bf16"] = {"seconds": t16, "identical": same}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
