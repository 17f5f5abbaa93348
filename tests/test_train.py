"""The training engine on tiny slices: loss falls, adapters act, runs are cached, bad data is named."""

from __future__ import annotations

import json

import pytest
import torch

from helpers.tiny import noise_rows, pattern_rows
from labkit.config import TrainConfig
from labkit.data.chat import DataError
from labkit.sft.train import train

FAST = dict(batch_size=4, max_length=64, eval_every=2, log_every=1, early_stopping_patience=None)


def _first_last(history):
    return history[0][1], history[-1][1]


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LABKIT_RUNS_DIR", str(tmp_path_factory.mktemp("runs")))
        cfg = TrainConfig(run_name="tiny-lora", method="lora", max_steps=6, learning_rate=2e-3, **FAST)
        yield train(cfg, pattern_rows(24), pattern_rows(8, seed=1))


def test_lora_loss_falls_and_run_folder_is_complete(lora_run):
    first, last = _first_last(lora_run.eval_loss)
    assert last < first * 0.8, lora_run.eval_loss
    for name in ("config.yaml", "metrics.jsonl", "summary.json", "loss.png", "adapter/adapter_model.safetensors"):
        assert (lora_run.path / name).is_file(), name
    s = lora_run.summary
    assert 0 < s["trainable_params"] < 0.05 * s["total_params"]
    assert s["tokens_per_second"] > 0 and s["peak_rss_bytes"] > 0
    assert not list(lora_run.path.rglob("*.bin")), "weights are saved as safetensors only"


def test_identical_config_reuses_the_run(lora_run, monkeypatch):
    monkeypatch.setenv("LABKIT_RUNS_DIR", str(lora_run.path.parent))
    again = train(lora_run.config, pattern_rows(24), pattern_rows(8, seed=1))
    assert again.reused and again.path == lora_run.path
    other = lora_run.config.replace(rank=4)
    assert other.fingerprint() != lora_run.config.fingerprint()


def test_retrain_moves_the_old_run_aside_instead_of_deleting(lora_run, tmp_path, monkeypatch):
    import shutil

    monkeypatch.setenv("LABKIT_RUNS_DIR", str(tmp_path))
    shutil.copytree(lora_run.path, tmp_path / lora_run.path.name)
    cfg = lora_run.config.replace(max_steps=1)
    # a different config lands in a different folder: the copied run is untouched
    fresh = train(cfg, pattern_rows(24), pattern_rows(8, seed=1))
    assert fresh.path != tmp_path / lora_run.path.name
    assert (tmp_path / lora_run.path.name / "summary.json").is_file()
    redo = train(cfg, pattern_rows(24), pattern_rows(8, seed=1), retrain=True)
    assert redo.path == fresh.path
    assert list(tmp_path.glob(fresh.path.name + ".old-*")), "the previous run must be kept aside"


def test_adapter_changes_output_while_base_stays_bit_identical(lora_run, smollm):
    before = {k: v.clone() for k, v in smollm.model.state_dict().items()}
    tuned = lora_run.load()
    ids = smollm.tokenizer("Tag teal high", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        base_logits = smollm.model(ids).logits
        tuned_logits = tuned.model(ids).logits
    assert (base_logits - tuned_logits).abs().max() > 1e-3
    # the adapter's base is a separate load; the frozen weights inside it equal the originals
    base_inside = tuned.model.get_base_model().state_dict()
    for name, value in before.items():
        key = name if name in base_inside else name.replace(".weight", ".base_layer.weight")
        assert torch.equal(base_inside[key], value), name
    # disabling the adapter gives back the base model exactly
    with torch.no_grad(), tuned.model.disable_adapter():
        assert torch.equal(tuned.model(ids).logits, base_logits)


def test_merge_gives_the_same_outputs(lora_run, tmp_path):
    from labkit import models

    tuned = lora_run.load()
    merged = models.load(str(lora_run.merge(tmp_path / "merged")))
    ids = merged.tokenizer("Tag red low", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert torch.allclose(tuned.model(ids).logits, merged.model(ids).logits, atol=1e-3)


def test_full_fine_tuning_loss_falls(isolated_runs):
    cfg = TrainConfig(run_name="tiny-full", method="full", max_steps=4, learning_rate=1e-4, **FAST)
    run = train(cfg, pattern_rows(24), pattern_rows(8, seed=1))
    first, last = _first_last(run.eval_loss)
    assert last < first
    assert run.summary["trainable_params"] == run.summary["total_params"]
    assert (run.path / "model" / "model.safetensors").is_file()


def test_qlora_loss_falls_on_a_4bit_base(isolated_runs):
    import bitsandbytes as bnb

    cfg = TrainConfig(run_name="tiny-qlora", method="qlora", max_steps=4, learning_rate=2e-3, **FAST)
    run = train(cfg, pattern_rows(24), pattern_rows(8, seed=1))
    first, last = _first_last(run.eval_loss)
    assert last < first
    tuned = run.load()
    q_proj = tuned.model.get_base_model().model.layers[0].self_attn.q_proj
    assert isinstance(q_proj.base_layer, bnb.nn.Linear4bit)
    assert q_proj.base_layer.weight.quant_state.quant_type == "nf4"


def test_early_stopping_fires_on_a_set_built_to_overfit(isolated_runs):
    cfg = TrainConfig(run_name="overfit", method="lora", rank=64, learning_rate=5e-3, epochs=40,
                      batch_size=4, max_length=64, eval_every=2, log_every=2, early_stopping_patience=2,
                      warmup_ratio=0.0)
    run = train(cfg, noise_rows(8, seed=1), noise_rows(8, seed=2))
    s = run.summary
    assert s["stopped_early"], run.eval_loss
    assert s["steps"] < s["max_steps"]
    # the adapter saved is the best one, not the last one
    assert s["best_step"] < s["steps"]
    assert s["best_eval_loss"] < s["last_eval_loss"]


def test_padding_free_loss_equals_padded_loss(isolated_runs):
    """Flattening a batch into one sequence must not let examples attend to each other."""
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from labkit import models
    from labkit.sft.tokenize import tokenize_rows

    lm = models.load()
    rows, _ = tokenize_rows(pattern_rows(4), lm.tokenizer, 64)
    losses = {}
    for free in (False, True):
        collate = DataCollatorForLanguageModeling(pad_token_id=lm.tokenizer.pad_token_id, padding_free=free)
        batch = collate([dict(r) for r in rows])
        with torch.no_grad():
            # SFTTrainer passes use_cache=False; transformers only detects packed sequences (and
            # builds a block-diagonal mask for sdpa) when no KV cache is in play.
            losses[free] = lm.model(**batch, use_cache=False).loss.item()
    assert losses[True] == pytest.approx(losses[False], rel=1e-4)


def test_loss_is_on_assistant_tokens_only():
    from labkit import models
    from labkit.sft.tokenize import tokenize_rows

    lm = models.load()
    rows = [{"messages": [{"role": "user", "content": "Say hi"}, {"role": "assistant", "content": "hello"},
                          {"role": "user", "content": "Again"}, {"role": "assistant", "content": "hello again"}]}]
    (row,), stats = tokenize_rows(rows, lm.tokenizer, 256)
    trained = lm.tokenizer.decode([t for t, m in zip(row["input_ids"], row["completion_mask"]) if m])
    assert "hello" in trained and "hello again" in trained
    assert "Say hi" not in trained and "Again" not in trained and "system" not in trained


def test_long_rows_are_truncated_with_a_counted_warning(isolated_runs):
    from labkit import models
    from labkit.sft.tokenize import tokenize_rows

    lm = models.load()
    long = [{"messages": [{"role": "user", "content": "word " * 200}, {"role": "assistant", "content": "ok"}]}]
    with pytest.warns(UserWarning, match="1 of 2 rows longer than max_length=64 were truncated; 1 lost"):
        out, stats = tokenize_rows(long + pattern_rows(1), lm.tokenizer, 64)
    assert stats.truncated == 1 and stats.dropped == 1 and len(out) == 1


@pytest.mark.parametrize("content,needle", [
    ('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n{oops\n',
     "bad.jsonl:2: not valid JSON"),
    ('{"text": "hello"}\n', "bad.jsonl: rows with a 'text' field (TRL's language-modeling shape)"),
    ('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n{"text": "x"}\n',
     "bad.jsonl:2: missing 'messages'"),
    ('{"messages": [{"role": "wizard", "content": "hi"}]}\n', "bad.jsonl:1: messages[0] has unknown role 'wizard'"),
    ('{"messages": [{"role": "user", "content": "hi"}]}\n', "bad.jsonl:1: the conversation has no assistant turn"),
    ("\n\n", "bad.jsonl: the dataset is empty"),
])
def test_bad_training_files_name_file_and_line(tmp_path, isolated_runs, content, needle):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(DataError) as err:
        train(TrainConfig(max_steps=1), path)
    assert needle in str(err.value)
    assert not isolated_runs.exists() or not any(isolated_runs.iterdir()), "bad data must not create a run"


def test_answer_only_loss_equals_the_models_own_loss():
    """The CPU loss path (head on answer tokens only) computes exactly the model's labelled loss."""
    from collections import defaultdict
    from types import SimpleNamespace

    from labkit import models
    from labkit.sft.loss import answer_only_loss
    from labkit.sft.tokenize import tokenize_rows

    lm = models.load("smollm2-135m-instruct")
    toks, _ = tokenize_rows(pattern_rows(3), lm.tokenizer, 64)
    width = max(len(t["input_ids"]) for t in toks)
    pad = lm.tokenizer.pad_token_id
    ids = torch.tensor([t["input_ids"] + [pad] * (width - len(t["input_ids"])) for t in toks])
    mask = torch.tensor([[1] * len(t["input_ids"]) + [0] * (width - len(t["input_ids"])) for t in toks])
    labels = torch.tensor([[i if m else -100 for i, m in zip(t["input_ids"], t["completion_mask"])]
                           + [-100] * (width - len(t["input_ids"])) for t in toks])
    trainer = SimpleNamespace(accelerator=SimpleNamespace(unwrap_model=lambda m: m), args=SimpleNamespace(bf16=False),
                              _metrics=defaultdict(lambda: defaultdict(list)), _total_train_tokens=0)
    lm.model.eval()
    with torch.no_grad():
        ours = answer_only_loss(trainer, lm.model, {"input_ids": ids, "attention_mask": mask, "labels": labels}, None)
        reference = lm.model(input_ids=ids, attention_mask=mask, labels=labels).loss
    assert float(ours) == pytest.approx(float(reference), rel=1e-5)
    assert 0 < trainer._metrics["eval"]["mean_token_accuracy"][0] <= 1


def test_mean_train_loss_covers_the_whole_history():
    from labkit.sft.train import mean_train_loss

    # logged every 2 steps, then a resumed session logging every step: weights follow the steps covered
    history = [{"step": 2, "loss": 3.0}, {"step": 4, "loss": 2.0}, {"step": 4, "eval_loss": 2.5},
               {"step": 5, "loss": 1.0}, {"step": 6, "loss": 1.0}]
    assert mean_train_loss(history) == pytest.approx((3.0 * 2 + 2.0 * 2 + 1.0 + 1.0) / 6)
    assert mean_train_loss([{"step": 2, "eval_loss": 1.0}]) is None


def test_resume_skips_a_half_written_newest_checkpoint(tmp_path, capsys):
    from labkit.sft.train import _last_checkpoint

    good, torn = tmp_path / "checkpoint-4", tmp_path / "checkpoint-6"
    good.mkdir()
    (good / "trainer_state.json").write_text('{"global_step": 4}')
    torn.mkdir()  # killed during the save: no trainer_state.json yet
    assert _last_checkpoint(tmp_path) == good
    assert "checkpoint-6 was only partly written" in capsys.readouterr().out
    assert _last_checkpoint(tmp_path / "none") is None


def test_train_takes_a_datasetdict_in_trl_shape_and_warns_about_duplicates(isolated_runs, capsys):
    from datasets import Dataset, DatasetDict

    from labkit.sft.data import DuplicateRowsWarning

    pairs = [{"prompt": r["messages"][0]["content"], "completion": r["messages"][1]["content"]} for r in pattern_rows(6)]
    data = DatasetDict({"train": Dataset.from_list(pairs + pairs[:1]), "validation": Dataset.from_list(pairs[:2])})
    with pytest.warns(DuplicateRowsWarning, match="1 of 6 training rows repeat"):
        run = train(TrainConfig(run_name="dd", max_steps=1, **FAST), data)
    assert "(split 'train'): 7 rows, detected shape: prompt/completion (TRL)" in capsys.readouterr().out
    assert run.summary["steps"] == 1 and run.summary["train_rows"] == 6


def test_trainer_and_lora_sections_reach_trl_and_peft_and_tensorboard_writes_events(isolated_runs):
    """trainer: / lora: pass through to SFTConfig / LoraConfig; report_to tensorboard leaves event files;
    keep_weights: last and keep_checkpoints: true keep what they say."""
    cfg = TrainConfig(run_name="tb", max_steps=2, **{**FAST, "eval_every": 1},
                      trainer={"report_to": ["tensorboard"], "lr_scheduler_type": "constant", "max_grad_norm": 0.5},
                      lora={"use_rslora": True}, keep_weights="last", keep_checkpoints=True)
    run = train(cfg, pattern_rows(8), pattern_rows(4, seed=1))
    assert list((run.path / "tensorboard").rglob("events.out.tfevents.*")), list(run.path.rglob("*"))
    adapter = json.loads((run.path / "adapter" / "adapter_config.json").read_text())
    assert adapter["use_rslora"] is True
    ckpts = sorted((run.path / "checkpoints").glob("checkpoint-*"))
    assert ckpts, "keep_checkpoints keeps them"
    args = torch.load(ckpts[-1] / "training_args.bin", weights_only=False)
    assert args.lr_scheduler_type == "constant" and args.max_grad_norm == 0.5 and args.report_to == ["tensorboard"]
    assert args.load_best_model_at_end is False and run.summary["weights"] == "last"


def test_the_adapter_names_its_base_by_hub_id_not_by_cache_path(lora_run):
    from labkit import models

    adapter = lora_run.path / "adapter"
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    card = (adapter / "README.md").read_text()
    assert str(models.cache_dir()) not in card and "HuggingFaceTB/SmolLM2-135M-Instruct" in card
    assert "smollm2-135m-instruct" in card and "Q4_1 GGUF" in card and "fp32" in card
    prov = json.loads((adapter / "labkit_provenance.json").read_text())
    assert prov["labkit_model"] == "smollm2-135m-instruct" and prov["hub_id"] == "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_merging_a_qlora_adapter_warns_and_counts_changed_answers(isolated_runs, tmp_path):
    from labkit.sft.run import MergeWarning

    cfg = TrainConfig(run_name="tiny-qlora-merge", method="qlora", max_steps=1, learning_rate=2e-3, **FAST)
    run = train(cfg, pattern_rows(8), pattern_rows(4, seed=1), quiet=True)
    with pytest.warns(MergeWarning, match=r"greedy answers changed on \d of 2 test prompts"):
        out = run.merge(tmp_path / "merged", check_prompts=["Tag red low", "What is the capital of France?"],
                        max_new_tokens=8)
    check = json.loads((out / "merge_check.json").read_text())
    assert check["prompts"] == 2 and 0 <= check["changed"] <= 2 and check == run.merge_check


def test_validation_takes_the_answer_only_path_with_the_same_loss(tmp_path):
    """trainer.evaluate() on a CPU uses the cheap loss (no full-vocabulary logits) and reports the
    same eval_loss as TRL's own evaluation path."""
    from trl import SFTTrainer

    from labkit.sft import train as T
    from labkit.sft.tokenize import tokenize_rows

    config = TrainConfig(run_name="eval-path", method="lora", max_steps=1, **FAST)
    model, tokenizer = T.build_model(config)
    train_tok, _ = tokenize_rows(pattern_rows(8), tokenizer, 64)
    eval_tok, _ = tokenize_rows(pattern_rows(6, seed=1), tokenizer, 64)
    trainer = T._make_trainer(config, model, tokenizer, train_tok, eval_tok, tmp_path)
    calls = []
    real = T.answer_only_loss
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(T, "answer_only_loss", lambda *a, **k: calls.append(1) or real(*a, **k))
        ours = trainer.evaluate()["eval_loss"]
    assert calls, "the validation pass did not take the answer-only path"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(T._LabTrainer, "compute_loss", SFTTrainer.compute_loss)
        reference = trainer.evaluate()["eval_loss"]
    assert ours == pytest.approx(reference, rel=1e-5)
