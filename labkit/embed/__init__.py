"""Embedding fine-tuning with Matryoshka: teach the search itself (Part 6, notebook 06b).

When search returns the wrong documents, no change to the answering LLM helps; the embedding
model has to learn the domain. This package fine-tunes the embedded all-MiniLM-L6-v2 on the gear
catalog (``labkit.data.gear``) and measures retrieval at every Matryoshka prefix
(Kusupati et al. 2022, "Matryoshka Representation Learning", NeurIPS).

One idea per module:

* :mod:`labkit.embed.config`     - ``EmbedConfig``: typed, validated, hashed into the run folder
* :mod:`labkit.embed.data`       - pairs files and retrieval sets, checked before training
* :mod:`labkit.embed.train`      - SentenceTransformerTrainer with MNRL (+ MatryoshkaLoss), run folders
* :mod:`labkit.embed.evaluate`   - InformationRetrievalEvaluator per dimension, table, plot
* :mod:`labkit.embed.two_stage`  - 64-dim shortlist + full-dim rerank: quality, speed, storage

Experiment E10 (base vs plain vs Matryoshka on the gear catalog) is lesson 6b:
:mod:`labkit.lessons.lesson6b`.

>>> from labkit.embed import EmbedConfig, train
>>> run = train(EmbedConfig(name="my-search", matryoshka_dims=(384, 128, 64)))   # doctest: +SKIP
>>> model = run.load()                                                            # doctest: +SKIP
"""

from labkit.config import ConfigError
from labkit.embed.config import EmbedConfig
from labkit.embed.data import (
    PairsFileError,
    RetrievalDataError,
    RetrievalSet,
    SkippedQueriesWarning,
    load_pairs,
    pairs_dataset,
    retrieval_set,
)
from labkit.embed.evaluate import PerDimensionEvaluator, plot_dims, rank, results_table, truncate
from labkit.embed.train import EmbedRun, train

__all__ = [
    "ConfigError", "EmbedConfig", "EmbedRun", "PairsFileError", "PerDimensionEvaluator",
    "RetrievalDataError", "RetrievalSet", "SkippedQueriesWarning", "load_pairs",
    "pairs_dataset", "plot_dims", "rank", "results_table", "retrieval_set", "train", "truncate",
]
