"""Retrieval quality at every Matryoshka prefix: nDCG@10, MRR@10, recall@k per dimension.

A Matryoshka embedding (Kusupati et al. 2022, "Matryoshka Representation Learning") is used at
size ``d`` by keeping its first ``d`` numbers and re-normalising: :func:`truncate`. Scoring goes
through sentence-transformers' ``InformationRetrievalEvaluator`` with ``truncate_dim=d``, one per
dimension; :class:`PerDimensionEvaluator` encodes the corpus once per call and hands each of them
the sliced embeddings, which is exactly what ``encode(truncate_dim=d)`` would return (a test
checks it), at a fifth of the cost for five dims.

>>> ev = PerDimensionEvaluator(rset, dims=(384, 64), name="test")   # doctest: +SKIP
>>> ev.per_dim(model)[64]["ndcg@10"]                                 # doctest: +SKIP
0.71
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from labkit.embed.data import RetrievalSet

KS = (1, 3, 5, 10)
# What the table shows, in this order.
TABLE_METRICS = ("ndcg@10", "mrr@10", "recall@1", "recall@3", "recall@10", "accuracy@1")


def truncate(embeddings, dim: int):
    """The first ``dim`` columns, each row scaled back to unit length (numpy or torch)."""
    if dim <= 0 or dim > embeddings.shape[-1]:
        raise ValueError(f"dim={dim}: must be in [1, {embeddings.shape[-1]}]")
    head = embeddings[..., :dim]
    if isinstance(head, np.ndarray):
        norms = np.linalg.norm(head, axis=-1, keepdims=True)
        return head / np.maximum(norms, 1e-12)
    import torch

    return torch.nn.functional.normalize(head, p=2, dim=-1)


def _base_evaluator():
    from sentence_transformers.base.evaluation.evaluator import BaseEvaluator

    return BaseEvaluator


class PerDimensionEvaluator(_base_evaluator()):
    """One ``InformationRetrievalEvaluator`` per dimension, sharing one corpus encoding.

    Usable as a trainer ``evaluator`` (returns the flat ``{name}_dim{d}_cosine_ndcg@10``-style
    dict the Trainer logs) and directly through :meth:`per_dim` (``{dim: {metric: value}}``).
    """

    def __init__(self, rset: RetrievalSet, dims: Sequence[int], name: str = "eval", batch_size: int = 64):
        super().__init__()
        from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

        self.rset = rset
        self.dims = tuple(sorted(dims, reverse=True))
        self.name = name
        self.batch_size = batch_size
        self.evaluators = {
            d: InformationRetrievalEvaluator(
                queries=rset.queries, corpus=rset.corpus, relevant_docs=rset.relevant,
                mrr_at_k=[10], ndcg_at_k=[10], accuracy_at_k=list(KS), precision_recall_at_k=list(KS),
                map_at_k=[100], batch_size=batch_size, name=f"{name}_dim{d}", write_csv=False,
                truncate_dim=d,
            )
            for d in self.dims
        }
        self.primary_metric = f"{name}_dim{self.dims[0]}_cosine_ndcg@10"
        self.last: dict[int, dict[str, float]] = {}

    def __call__(self, model, output_path: str | None = None, epoch: int = -1, steps: int = -1,
                 corpus_embeddings=None) -> dict[str, float]:
        model_dim = model.get_embedding_dimension()
        if self.dims[0] > model_dim:
            raise ValueError(f"matryoshka_dims={self.dims}: {self.dims[0]} exceeds the model's size {model_dim}")
        if corpus_embeddings is None:
            corpus = model.encode_document(list(self.rset.corpus.values()), batch_size=self.batch_size,
                                           convert_to_tensor=True, show_progress_bar=False)
        else:  # full-size embeddings of rset.corpus, in its order, from the same model
            import torch

            corpus = torch.as_tensor(corpus_embeddings)
        flat: dict[str, float] = {}
        self.last = {}
        for d, evaluator in self.evaluators.items():
            metrics = evaluator(model, output_path, epoch, steps, corpus_embeddings=corpus[:, :d])
            flat.update(metrics)
            prefix = f"{self.name}_dim{d}_"
            self.last[d] = {_short(k[len(prefix):]): float(v) for k, v in metrics.items() if k.startswith(prefix)}
        self.primary_metric = f"{self.name}_dim{self.dims[0]}_cosine_ndcg@10"
        return flat

    def per_dim(self, model, corpus_embeddings=None) -> dict[int, dict[str, float]]:
        """``{dim: {"ndcg@10": ..., "mrr@10": ..., "recall@10": ..., ...}}``."""
        self(model, corpus_embeddings=corpus_embeddings)
        return dict(self.last)


def _short(key: str) -> str:
    # "cosine_ndcg@10" -> "ndcg@10"; keeps whichever similarity the model uses out of the table.
    return key.split("_", 1)[1] if "_" in key else key


# ---------------------------------------------------------------------------------------------
# tables and plots


def results_table(results: Mapping[str, Mapping[int, Mapping[str, float]]],
                  metrics: Sequence[str] = TABLE_METRICS):
    """One row per (arm, dim), with each arm's nDCG@10 as a share of its own full-dim value."""
    import pandas as pd

    rows = []
    for arm, per_dim in results.items():
        full = per_dim[max(per_dim)]["ndcg@10"]
        for dim in sorted(per_dim, reverse=True):
            row = {"model": arm, "dim": dim}
            row.update({m: per_dim[dim][m] for m in metrics})
            row["ndcg@10 / own full-dim"] = per_dim[dim]["ndcg@10"] / full if full else float("nan")
            rows.append(row)
    return pd.DataFrame(rows).set_index(["model", "dim"])


def plot_dims(results: Mapping[str, Mapping[int, Mapping[str, float]]], metric: str = "ndcg@10",
              path=None, title: str = "Retrieval quality vs embedding size (test queries)"):
    """Metric against dimension, one line per model; saved as PNG when ``path`` is given."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.0, 4.0))
    for arm, per_dim in results.items():
        dims = sorted(per_dim)
        ax.plot(dims, [per_dim[d][metric] for d in dims], marker="o", label=arm)
    ax.set_xscale("log", base=2)
    dims_all = sorted({d for per_dim in results.values() for d in per_dim})
    ax.set_xticks(dims_all)
    ax.set_xticklabels([str(d) for d in dims_all])
    ax.set_xlabel("embedding dimensions kept (prefix length)")
    ax.set_ylabel(metric)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    plt.close(fig)
    return fig


def rank(model, queries: Sequence[str], corpus: Mapping[str, str], k: int = 10, dim: int | None = None,
         corpus_embeddings=None) -> list[list[tuple[str, float]]]:
    """Top-``k`` (doc id, cosine) per query at ``dim`` dimensions (default: all)."""
    ids = list(corpus)
    if corpus_embeddings is None:
        corpus_embeddings = model.encode_document(list(corpus.values()), batch_size=64, convert_to_numpy=True)
    docs = np.asarray(corpus_embeddings, dtype=np.float32)
    q = np.asarray(model.encode_query(list(queries), batch_size=64, convert_to_numpy=True), dtype=np.float32)
    dim = dim or docs.shape[1]
    scores = truncate(q, dim) @ truncate(docs, dim).T
    out = []
    for row in scores:
        top = np.argsort(-row, kind="stable")[:k]
        out.append([(ids[j], float(row[j])) for j in top])
    return out
