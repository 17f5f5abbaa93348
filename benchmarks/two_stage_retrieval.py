"""Two-stage retrieval with the Matryoshka model: 64-dim shortlist + full-dim rerank vs brute force.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/two_stage_retrieval.py [--rows 100000 200000]
        [--shortlist-k 30] [--profile full|smoke] [--arm matryoshka|plain|base]

Quality is measured on the real gear catalog (its test queries, its corpus); speed on the same
embeddings tiled to ``--rows`` documents, brute force and two-stage timed alternately in this one
process so that their ratio is fair even on a busy machine; storage is arithmetic on float32.
Uses the cached fine-tune from ``runs/`` (trains it first if there is none, as the notebook would).
Not a timed test: numbers depend on the machine and on what else it is running.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--shortlist-dim", type=int, default=64)
    parser.add_argument("--shortlist-k", type=int, default=30)
    parser.add_argument("--profile", choices=("full", "smoke"), default=None)
    parser.add_argument("--arm", choices=("matryoshka", "plain", "base"), default="matryoshka")
    args = parser.parse_args(argv)

    import torch

    from labkit.embed import two_stage
    from labkit.lessons import lesson6b as experiment

    start = time.perf_counter()
    exp = experiment.start(args.profile)
    if args.arm != "base":
        experiment.train_arms(exp)
    queries, docs = exp.embeddings(args.arm)
    qrels = [exp.test.relevant[q] for q in exp.test.queries]
    ids = list(exp.catalog.corpus())
    print(f"model: {args.arm}; corpus {len(ids)} products, {len(qrels)} test queries; "
          f"torch threads {torch.get_num_threads()}; set-up {time.perf_counter() - start:.0f}s\n")

    q = two_stage.truncate(queries, queries.shape[1])
    d = two_stage.truncate(docs, docs.shape[1])
    quality = two_stage.quality(q, d, ids, qrels, args.shortlist_dim, args.shortlist_k)
    print(f"quality on the catalog (shortlist {args.shortlist_k} by {args.shortlist_dim} dims, rerank at "
          f"{docs.shape[1]}):")
    for key in ("ndcg@10 brute force", "ndcg@10 two-stage", "quality ratio", "top-10 overlap with brute force"):
        print(f"  {key:34s} {quality[key]:.3f}")

    print(f"\n{'rows':>9} {'brute ms/q':>11} {'2-stage ms/q':>13} {'speed ratio':>12} "
          f"{'full MiB':>9} {'64-d MiB':>9} {'storage ratio':>14}")
    for rows in args.rows:
        s = two_stage.speed(q, d, rows, args.shortlist_dim, args.shortlist_k)
        m = two_stage.storage(rows, d.shape[1], args.shortlist_dim)
        print(f"{rows:>9,} {s['brute force ms/query']:>11.2f} {s['two-stage ms/query']:>13.2f} "
              f"{s['speed ratio (brute / two-stage)']:>11.2f}x {m['full index MiB']:>9.1f} "
              f"{m['shortlist index MiB']:>9.1f} {m['storage ratio (full / shortlist)']:>13.1f}x")
    print("\nstorage ratio = hot index only; keeping the full vectors too for the rerank costs "
          f"{two_stage.storage(1, d.shape[1], args.shortlist_dim)['both kept, vs full alone']:.2f}x "
          "the full index alone (they can live on slower storage).")
    print(f"load average while measuring: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
