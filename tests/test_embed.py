"""labkit.embed: config, truncation, per-dim evaluation vs a hand computation, bad input, a real tiny run."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import yaml

from labkit.embed import (
    EmbedConfig,
    ConfigError,
    PairsFileError,
    PerDimensionEvaluator,
    RetrievalDataError,
    SkippedQueriesWarning,
    load_pairs,
    pairs_dataset,
    retrieval_set,
    train,
    truncate,
)
from labkit.embed import two_stage
from labkit.lessons import lesson6b as experiment
from labkit.evaluate.retrieval import ndcg_at_k, recall_at_k, reciprocal_rank


@pytest.fixture(scope="module")
def minilm():
    from labkit.models import load_embedder

    return load_embedder("minilm-l6")


# ---------------------------------------------------------------------------------------------
# config


def test_config_defaults_are_the_issue_dims_and_hash_names_the_folder():
    cfg = EmbedConfig(name="gear-mrl")
    assert cfg.matryoshka_dims == (384, 256, 128, 64, 32)
    assert cfg.fingerprint() == EmbedConfig(name="gear-mrl").fingerprint()
    assert cfg.fingerprint() != cfg.replace(learning_rate=5e-5).fingerprint()
    assert cfg.run_folder_name == f"gear-mrl-{cfg.fingerprint()}"
    assert EmbedConfig.from_dict(yaml.safe_load(yaml.safe_dump(cfg.to_dict()))) == cfg


@pytest.mark.parametrize("field, value", [
    ("matryoshka_dims", (384, 0)), ("matryoshka_dims", ()), ("matryoshka_dims", (64, 64)),
    ("matryoshka_weights", (1.0,)), ("epochs", 0), ("batch_size", 1), ("learning_rate", 2.0),
    ("use_matryoshka", "yes"), ("max_pairs", 3), ("name", "has space"), ("families", ()),
    ("max_seq_length", 4), ("eval_every", -1), ("seed", 1.5),
])
def test_bad_field_names_the_field_and_value(field, value):
    with pytest.raises(ConfigError, match=f"^{field}="):
        EmbedConfig(**{field: value})


def test_dim_larger_than_the_model_is_refused_with_field_and_value():
    with pytest.raises(ConfigError, match=r"matryoshka_dims=.*\[512\].*384"):
        EmbedConfig(matryoshka_dims=(512, 384, 64)).check_model_dim(384)
    with pytest.raises(ConfigError, match="must include the model's full size 384"):
        EmbedConfig(matryoshka_dims=(256, 64)).check_model_dim(384)
    EmbedConfig(use_matryoshka=False, matryoshka_dims=(256, 64)).check_model_dim(384)  # eval-only dims are fine


def test_unknown_config_field_is_named():
    with pytest.raises(ConfigError, match="learning_rat"):
        EmbedConfig.from_dict({"learning_rat": 1e-4})


# ---------------------------------------------------------------------------------------------
# truncation and evaluation


def test_truncate_equals_slice_then_normalise():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 384)).astype(np.float32)
    for dim in (384, 64, 1):
        expected = x[:, :dim] / np.linalg.norm(x[:, :dim], axis=1, keepdims=True)
        np.testing.assert_allclose(truncate(x, dim), expected, rtol=1e-6)
        import torch

        np.testing.assert_allclose(truncate(torch.from_numpy(x), dim).numpy(), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="dim=385"):
        truncate(x, 385)


def test_truncate_matches_sentence_transformers_truncate_dim(minilm):
    texts = ["waterproof trail runners", "a down puffy for cold camps"]
    full = minilm.encode(texts, convert_to_numpy=True)
    cut = minilm.encode(texts, convert_to_numpy=True, truncate_dim=64, normalize_embeddings=True)
    np.testing.assert_allclose(truncate(full, 64), cut, rtol=1e-4, atol=1e-5)


TOY_CORPUS = {
    "d1": "Low-cut trail running shoe with a rock plate.",
    "d2": "Mid-cut leather hiking boot with ankle support.",
    "d3": "Waterproof rain jacket with taped seams.",
    "d4": "Down puffy jacket for cold evenings at camp.",
    "d5": "Inflatable sleeping pad for cold ground.",
}
TOY_QUERIES = {"q1": "shoes for running on trails", "q2": "jacket for rain", "q3": "something warm for camp"}
TOY_QRELS = {"q1": {"d1"}, "q2": {"d3"}, "q3": {"d4", "d5"}}


def _hand(model, dim):
    """Rank by cosine at ``dim`` with numpy, score with labkit's own metric functions."""
    ids = list(TOY_CORPUS)
    docs = truncate(model.encode(list(TOY_CORPUS.values()), convert_to_numpy=True), dim)
    out = {"ndcg@10": [], "mrr@10": [], "recall@1": []}
    for qid, text in TOY_QUERIES.items():
        q = truncate(model.encode([text], convert_to_numpy=True), dim)[0]
        ranked = [ids[j] for j in np.argsort(-(docs @ q), kind="stable")]
        out["ndcg@10"].append(ndcg_at_k(ranked, TOY_QRELS[qid], 10))
        out["mrr@10"].append(reciprocal_rank(ranked, TOY_QRELS[qid], 10))
        out["recall@1"].append(recall_at_k(ranked, TOY_QRELS[qid], 1))
    return {k: float(np.mean(v)) for k, v in out.items()}


def test_evaluator_equals_hand_computation_on_three_query_toy(minilm):
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    rset = retrieval_set(TOY_QUERIES, TOY_CORPUS, TOY_QRELS)
    per_dim = PerDimensionEvaluator(rset, dims=(384, 32), name="toy").per_dim(minilm)
    for dim in (384, 32):
        hand = _hand(minilm, dim)
        for metric, value in hand.items():
            assert math.isclose(per_dim[dim][metric], value, abs_tol=1e-6), (dim, metric)
        # Sharing one corpus encode across dims changes nothing against the stock evaluator.
        stock = InformationRetrievalEvaluator(TOY_QUERIES, TOY_CORPUS, TOY_QRELS, truncate_dim=dim,
                                              name="stock", write_csv=False)(minilm)
        assert math.isclose(stock["stock_cosine_ndcg@10"], per_dim[dim]["ndcg@10"], abs_tol=1e-6)


# ---------------------------------------------------------------------------------------------
# bad input


def test_pairs_file_missing_a_column_is_named(tmp_path):
    csv_file = tmp_path / "pairs.csv"
    csv_file.write_text("anchor,negative\nwaterproof trail runners,a boot\n")
    with pytest.raises(PairsFileError, match=r"pairs.csv: missing column\(s\) \['positive'\]"):
        load_pairs(csv_file)
    jsonl = tmp_path / "pairs.jsonl"
    jsonl.write_text(json.dumps({"query": "x", "positive": "y"}) + "\n")
    with pytest.raises(PairsFileError, match=r"missing column\(s\) \['anchor'\]"):
        load_pairs(jsonl)
    jsonl.write_text(json.dumps({"anchor": "x", "positive": "y"}) + "\n" + json.dumps({"anchor": "x", "positive": ""}) + "\n")
    with pytest.raises(PairsFileError, match=r"pairs.jsonl:2: column 'positive'"):
        load_pairs(jsonl)
    rows = load_pairs(_ok(tmp_path))
    with pytest.raises(PairsFileError, match="no 'negative' column"):
        pairs_dataset(rows, use_hard_negatives=True)
    assert pairs_dataset(rows, use_hard_negatives=False).column_names == ["anchor", "positive"]


def _ok(tmp_path):
    path = tmp_path / "ok.csv"
    path.write_text("anchor,positive\nwaterproof trail runners,a light runner\nrain shell,a hardshell\n")
    return path


def test_empty_corpus_and_queries_without_relevant_docs():
    with pytest.raises(RetrievalDataError, match="corpus is empty"):
        retrieval_set(TOY_QUERIES, {}, TOY_QRELS)
    qrels = {"q1": {"d1"}, "q2": set(), "q3": {"nope"}}
    with pytest.warns(SkippedQueriesWarning, match="2 of 3 queries"):
        rset = retrieval_set(TOY_QUERIES, TOY_CORPUS, qrels)
    assert list(rset.queries) == ["q1"] and rset.skipped == ["q2", "q3"] and rset.unknown_ids == 1
    with pytest.raises(RetrievalDataError, match="no query has a relevant"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        retrieval_set(TOY_QUERIES, TOY_CORPUS, {})


def test_bad_inputs_fail_before_any_training(tmp_path, isolated_runs):
    bad = tmp_path / "bad.csv"
    bad.write_text("anchor,text\nq,d\n")
    with pytest.raises(PairsFileError, match="missing column"):
        train(EmbedConfig(name="bad-pairs", pairs_path=str(bad), families=("footwear",)))
    with pytest.raises(ConfigError, match="matryoshka_dims"):
        train(EmbedConfig(name="too-wide", matryoshka_dims=(768, 384, 64), families=("footwear",)))
    leftovers = [p for p in isolated_runs.glob("*")] if isolated_runs.exists() else []
    assert leftovers == []  # nothing half-written


# ---------------------------------------------------------------------------------------------
# a real, tiny training run


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    import os

    runs = tmp_path_factory.mktemp("runs")
    old = os.environ.get("LABKIT_RUNS_DIR")
    os.environ["LABKIT_RUNS_DIR"] = str(runs)
    cfg = EmbedConfig(name="tiny-mrl", families=("footwear",), max_pairs=64, batch_size=16, learning_rate=1e-4,
                      matryoshka_dims=(384, 64), val_queries=16, val_pairs=16)
    try:
        yield cfg, train(cfg), runs
    finally:
        if old is None:
            os.environ.pop("LABKIT_RUNS_DIR", None)
        else:
            os.environ["LABKIT_RUNS_DIR"] = old


def test_tiny_run_beats_base_on_held_out_queries(tiny_run, minilm):
    cfg, run, _ = tiny_run
    test = experiment.test_set(experiment.catalog_for(cfg))
    before = experiment.evaluate(minilm, test, (384,))[384]["ndcg@10"]
    after = experiment.evaluate(run.load(), test, (384,))[384]["ndcg@10"]
    assert after > before + 0.03, (before, after)


def test_run_folder_is_complete_reloadable_and_reused(tiny_run, monkeypatch):
    cfg, run, runs = tiny_run
    monkeypatch.setenv("LABKIT_RUNS_DIR", str(runs))
    assert run.path.name == cfg.run_folder_name
    for name in ("config.yaml", "summary.json", "metrics.jsonl", "loss.png", "model/model.safetensors"):
        assert (run.path / name).is_file(), name
    assert not list(run.path.rglob("*.bin")) and not list(run.path.rglob("*.pt"))
    assert run.summary["arm"] == "matryoshka" and run.summary["steps"] == 4
    losses = [row["loss"] for row in run.history if "loss" in row]
    assert len(losses) == 4 and losses[-1] < losses[0]
    texts = ["waterproof trail runners"]
    np.testing.assert_allclose(run.load().encode(texts), run.load().encode(texts), rtol=1e-6)
    again = train(cfg)
    assert again.reused and again.path == run.path
    # the shared run protocol: the stored config reads back as the same EmbedConfig
    assert again.config == cfg and yaml.safe_load((run.path / "config.yaml").read_text())["name"] == cfg.name
    assert not list(runs.glob("*.partial"))


def test_two_stage_returns_brute_force_when_shortlist_is_everything():
    rng = np.random.default_rng(1)
    docs = truncate(rng.normal(size=(50, 384)).astype(np.float32), 384)
    queries = truncate(rng.normal(size=(4, 384)).astype(np.float32), 384)
    brute = two_stage.brute_force_search(queries, docs, 10)
    np.testing.assert_array_equal(two_stage.two_stage_search(queries, docs, 64, 50, 10), brute)
    sizes = two_stage.storage(1000, 384, 64)
    assert sizes["storage ratio (full / shortlist)"] == 6.0


def test_own_pairs_file_trains_without_gear_validation(tmp_path, isolated_runs):
    from labkit.data import gear

    rows = gear.load().subset(["jackets"]).train_pairs[:16]
    path = tmp_path / "mine.csv"
    import csv

    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["anchor", "positive"])
        writer.writeheader()
        writer.writerows({"anchor": t.anchor, "positive": t.positive} for t in rows)
    cfg = EmbedConfig(name="own-pairs", pairs_path=str(path), use_hard_negatives=False, use_matryoshka=False,
                      batch_size=8, matryoshka_dims=(384, 64))
    run = train(cfg)
    assert run.summary["steps"] == 2 and run.summary["val_queries"] == 0
    assert (run.path / "model" / "model.safetensors").is_file()
