"""TrainConfig: defaults follow the recipe, and each bad field gets one message naming it."""

from __future__ import annotations

import pytest

from labkit.config import SEED_LEARNING_RATES, ConfigError, TrainConfig


def test_defaults_follow_the_seed_recipe():
    cfg = TrainConfig()
    assert cfg.rank == 16 and cfg.method == "lora"
    assert 2 <= cfg.epochs <= 3 and 4 <= cfg.batch_size <= 8
    assert 0.1 <= cfg.eval_fraction <= 0.2
    other = TrainConfig(model="meta-llama/Llama-3.1-8B")
    assert other.resolved_learning_rate() == SEED_LEARNING_RATES["lora"] == 5e-5
    assert other.replace(method="full").resolved_learning_rate() == 2e-5
    assert 1e-5 <= other.replace(method="qlora").resolved_learning_rate() <= 2e-5
    assert cfg.resolved_alpha() == 32
    # checkpointing: on where memory is the point (QLoRA), off where CPU time is
    assert TrainConfig(method="qlora").resolved_gradient_checkpointing()
    assert not cfg.resolved_gradient_checkpointing() and not cfg.replace(method="full").resolved_gradient_checkpointing()
    assert not TrainConfig(method="qlora", gradient_checkpointing=False).resolved_gradient_checkpointing()


@pytest.mark.parametrize("field,value,needle", [
    ("rank", 0, "rank=0"),
    ("rank", -4, "rank=-4"),
    ("rank", 2.5, "rank=2.5"),
    ("learning_rate", 0, "learning_rate=0"),
    ("learning_rate", -1e-4, "learning_rate=-0.0001"),
    ("alpha", 0, "alpha=0"),
    ("method", "qdora", "method='qdora'"),
    ("eval_fraction", 0.0, "eval_fraction=0.0"),
    ("eval_fraction", 1.0, "eval_fraction=1.0"),
    ("batch_size", 0, "batch_size=0"),
    ("epochs", 0, "epochs=0"),
    ("precision", "fp8", "precision='fp8'"),
    ("target_modules", [], "target_modules=[]"),
    ("dropout", 1.0, "dropout=1.0"),
    ("run_name", "my run", "run_name='my run'"),
    ("gradient_checkpointing", "yes", "gradient_checkpointing='yes'"),
    ("padding_free", 1, "padding_free=1"),
])
def test_each_bad_field_is_named(field, value, needle):
    with pytest.raises(ConfigError) as err:
        TrainConfig(**{field: value})
    assert str(err.value).startswith(needle)
    assert "\n" not in str(err.value)


def test_yaml_errors_name_file_and_field(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("method: lora\nrnak: 8\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: unknown field 'rnak'"):
        TrainConfig.from_yaml(path)
    path.write_text("method: lora\nrank: 0\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: rank=0"):
        TrainConfig.from_yaml(path)
    path.write_text("method: [lora\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:\d+: not valid YAML"):
        TrainConfig.from_yaml(path)


def test_yaml_round_trip_and_relative_paths(tmp_path):
    cfg = TrainConfig(method="qlora", rank=8, train_file="train.jsonl")
    path = tmp_path / "c.yaml"
    path.write_text(cfg.to_yaml())
    back = TrainConfig.from_yaml(path)
    assert back.rank == 8 and back.method == "qlora"
    assert back.train_file == str(tmp_path / "train.jsonl")


def test_fingerprint_ignores_names_but_not_settings():
    a = TrainConfig(run_name="a")
    assert a.fingerprint() == TrainConfig(run_name="b").fingerprint()
    assert a.fingerprint() != TrainConfig(rank=8).fingerprint()
    assert a.fingerprint("data1") != a.fingerprint("data2")


def test_yaml_reads_exponents_as_numbers(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("learning_rate: 2e-4\nweight_decay: 1e-2\n")
    cfg = TrainConfig.from_yaml(path)
    assert cfg.learning_rate == 2e-4 and cfg.weight_decay == 0.01
    path.write_text("learning_rate: fast\n")
    with pytest.raises(ConfigError, match="learning_rate='fast'"):
        TrainConfig.from_yaml(path)
    path.write_text("learning_rate: 5e2\n")  # a numeric string far out of range still gets its own message
    with pytest.raises(ConfigError, match="far too large"):
        TrainConfig.from_yaml(path)


def test_a_key_set_twice_is_refused_with_both_lines(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("method: lora\nrank: 4\nepochs: 1\nrank: 64\n")
    with pytest.raises(ConfigError, match=r"run.yaml:4: 'rank' is set twice \(lines 2 and 4\)"):
        TrainConfig.from_yaml(path)


def test_yaml_syntax_error_names_the_right_line(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("method: lora\nrank: [4\nepochs: 1\n")
    with pytest.raises(ConfigError, match=r"run.yaml:\d+: not valid YAML"):
        TrainConfig.from_yaml(path)


# --- pass-through sections ---------------------------------------------------------------------

def test_trainer_and_lora_sections_accept_real_fields_and_enter_the_hash():
    from labkit.config import TrainConfig

    plain = TrainConfig()
    assert TrainConfig(trainer={}, lora={}, keep_weights="best").fingerprint() == plain.fingerprint()
    tuned = TrainConfig(trainer={"report_to": ["tensorboard"], "optim": "adafactor"}, lora={"use_rslora": True})
    assert tuned.fingerprint() != plain.fingerprint()
    assert TrainConfig(keep_weights="last").fingerprint() != plain.fingerprint()
    assert TrainConfig(keep_checkpoints=True).fingerprint() == plain.fingerprint()  # keeping files changes no result


@pytest.mark.parametrize("section, message", [
    ({"trainer": {"report_too": ["tensorboard"]}}, "trainer: unknown field 'report_too'; did you mean 'report_to'?"),
    ({"trainer": {"lr_sheduler_type": "constant"}}, "did you mean 'lr_scheduler_type'?"),
    ({"lora": {"use_rslra": True}}, "lora: unknown field 'use_rslra'; did you mean 'use_rslora'?"),
    ({"trainer": {"learning_rate": 1e-3}}, "trainer.learning_rate: set this with the course field 'learning_rate'"),
    ({"trainer": {"per_device_train_batch_size": 2}}, "course field 'batch_size'"),
    ({"lora": {"r": 8}}, "lora.r: set this with the course field 'rank'"),
    ({"trainer": {"output_dir": "/tmp/x"}}, "trainer.output_dir: not passed through: the run folder is labkit's"),
    ({"trainer": {"packing": True}}, "padding_free: true gives packing"),
    ({"method": "full", "lora": {"use_dora": True}}, "applies to method lora or qlora"),
    ({"keep_weights": "newest"}, "keep_weights='newest': expected one of best, last"),
])
def test_pass_through_mistakes_name_the_fix(section, message):
    from labkit.config import ConfigError, TrainConfig

    with pytest.raises(ConfigError) as err:
        TrainConfig.from_dict(section)
    assert message in str(err.value)


def test_chat_template_from_a_file_relative_to_the_config_hashes_its_content(tmp_path):
    from labkit.config import TrainConfig

    (tmp_path / "tpl.jinja").write_text("{% for m in messages %}{{ m.content }}{% endfor %}")
    (tmp_path / "run.yaml").write_text("chat_template: tpl.jinja\n")
    cfg = TrainConfig.from_yaml(tmp_path / "run.yaml")
    assert cfg.chat_template == str(tmp_path / "tpl.jinja")
    inline = TrainConfig(chat_template="{% for m in messages %}{{ m.content }}{% endfor %}")
    assert cfg.resolved_chat_template() == inline.chat_template
    assert cfg.fingerprint() == inline.fingerprint() != TrainConfig().fingerprint()


def test_a_model_without_a_chat_template_is_told_what_to_set():
    from types import SimpleNamespace

    from labkit.config import ConfigError, TrainConfig
    from labkit.sft.train import apply_chat_template

    tok = SimpleNamespace(chat_template=None)
    with pytest.raises(ConfigError, match="its tokenizer has no chat template; set chat_template"):
        apply_chat_template(tok, TrainConfig(model="some/base-model"))
    apply_chat_template(tok, TrainConfig(chat_template="{{ messages }}"))
    assert tok.chat_template == "{{ messages }}"


def test_yaml_pass_through_sections_and_numeric_strings(tmp_path):
    from labkit.config import TrainConfig

    (tmp_path / "run.yaml").write_text("method: lora\ntrainer:\n  report_to: [tensorboard]\n  adam_epsilon: 1e-8\n"
                                       "lora:\n  use_rslora: true\n")
    cfg = TrainConfig.from_yaml(tmp_path / "run.yaml")
    assert cfg.trainer == {"report_to": ["tensorboard"], "adam_epsilon": "1e-8"} and cfg.lora == {"use_rslora": True}
    from trl import SFTConfig

    from labkit.sft.train import pass_through

    assert pass_through(SFTConfig, cfg.trainer)["adam_epsilon"] == 1e-8


@pytest.mark.parametrize("text, line, needle", [
    ("method: lora\nrank: [4, 8\nepochs: 2\n", 2, "the [ ... ] list that starts on line 2"),
    ('method: lora\nrun_name: "open\nepochs: 2\n', 2, "the quoted text that starts on line 2"),
    ("method: lora\n  rank: 4\n", 2, "mapping values are not allowed here"),
])
def test_a_yaml_syntax_error_names_the_line_where_it_starts(tmp_path, text, line, needle):
    (tmp_path / "run.yaml").write_text(text)
    with pytest.raises(ConfigError) as err:
        TrainConfig.from_yaml(tmp_path / "run.yaml")
    assert f"run.yaml:{line}: not valid YAML" in str(err.value) and needle in str(err.value)
    assert "\n" not in str(err.value)


def test_a_quiz_bank_yaml_error_is_one_line(tmp_path):
    from labkit import quiz

    bad = tmp_path / "part3.yaml"
    bad.write_text("part: 3\nquestions: [unclosed\n")
    with pytest.raises(quiz.BankError) as err:
        quiz.load_bank(bad)
    assert str(err.value).startswith(f"{bad}:2: not valid YAML") and "\n" not in str(err.value)
