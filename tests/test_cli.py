"""The `labkit` command: doctor passes here, bad input gets one clear line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def _labkit(*args, **kw):
    return subprocess.run([sys.executable, "-m", "labkit.cli", *args], capture_output=True,
                          text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, **kw)


def test_doctor_passes_here():
    result = _labkit("doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "smollm2-135m-instruct loads" in result.stdout
    assert "[FAIL]" not in result.stdout


def test_doctor_fails_on_a_broken_install(monkeypatch):
    from labkit import doctor

    monkeypatch.setattr(doctor, "LIBRARIES", ("torch", "a-library-that-does-not-exist"))
    checks = doctor.run_checks(load_models=False)
    failed = [c for c in checks if c.status == "FAIL"]
    assert [c.item for c in failed] == ["a-library-that-does-not-exist"]
    assert doctor.main(load_models=False) == 1


def test_doctor_names_the_precision_path_training_takes(monkeypatch):
    """The doctor's line and the trainer's choice (bf16 autocast or fp32) come from the same flags."""
    from labkit import doctor, models
    from labkit.config import TrainConfig
    from labkit.sft.train import use_bf16

    for flags, bf16 in (({"avx2"}, False), ({"avx2", "avx512f", "avx512_bf16"}, True), ({"avx2", "amx_bf16"}, True)):
        monkeypatch.setattr(doctor, "_cpu_flags", lambda flags=flags: flags)
        line = next(c for c in doctor.run_checks(load_models=False) if c.item == "training precision on cpu")
        assert line.detail.startswith("bf16" if bf16 else "fp32"), line
    # on this machine the doctor and the trainer agree
    monkeypatch.undo()
    line = next(c for c in doctor.run_checks(load_models=False) if c.item == "training precision on cpu")
    if not __import__("torch").cuda.is_available():
        assert line.detail.startswith("bf16") == use_bf16(TrainConfig(run_name="t")) == models.cpu_has_bf16()


def test_models_list():
    result = _labkit("models")
    assert result.returncode == 0
    assert "smollm2-135m-instruct" in result.stdout and "minilm-l6" in result.stdout


def test_train_from_yaml_prints_a_summary(tmp_path):
    import json

    # an Alpaca JSON array (one of the shapes people have; it used to fail as "not valid JSON")
    rows = [{"instruction": f"Tag {c}", "input": "", "output": json.dumps({"color": c})}
            for c in ("red", "blue", "green", "teal", "plum", "rust", "navy", "olive")]
    (tmp_path / "alpaca.json").write_text(json.dumps(rows, indent=2))
    (tmp_path / "run.yaml").write_text("run_name: cli-test\nmethod: lora\nrank: 4\nmax_steps: 2\n"
                                       "batch_size: 4\neval_fraction: 0.25\ntrain_file: alpaca.json\n")
    env_runs = {"LABKIT_RUNS_DIR": str(tmp_path / "runs")}
    result = subprocess.run([sys.executable, "-m", "labkit.cli", "train", "--config", str(tmp_path / "run.yaml")],
                            capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1", **env_runs})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "finished:" in result.stdout and "tokens_per_second" in result.stdout
    assert "alpaca.json: 8 rows, detected shape: Alpaca (instruction/input/output)" in result.stdout
    # one progress line, not the Trainer's raw log dicts or dataset bars
    assert "{'loss'" not in result.stdout + result.stderr and "Building labels" not in result.stderr
    assert "cli-test: 2 steps in" in result.stdout
    again = subprocess.run([sys.executable, "-m", "labkit.cli", "train", "--config", str(tmp_path / "run.yaml")],
                           capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1", **env_runs})
    assert "reused finished run" in again.stdout


def test_train_with_a_bad_config_gives_one_line(tmp_path):
    (tmp_path / "bad.yaml").write_text("method: lora\nrank: 0\n")
    result = _labkit("train", "--config", str(tmp_path / "bad.yaml"))
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: ") and "rank=0" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_lists_every_registered_lesson():
    from labkit.lessons import LESSONS

    result = _labkit("run")
    assert result.returncode == 0, result.stderr
    listed = [line.split()[0] for line in result.stdout.splitlines() if line.strip()]
    assert listed == list(LESSONS) and {"lesson2", "lesson6b"} <= set(listed)
    for name in LESSONS:
        assert f"notebooks/" in result.stdout and name in result.stdout


def test_run_unknown_lesson_is_one_line():
    result = _labkit("run", "lesson99")
    assert result.returncode == 2 and "unknown lesson 'lesson99'" in result.stderr and "Traceback" not in result.stderr


def test_unknown_config_field_names_the_nearest_one(tmp_path):
    (tmp_path / "typo.yaml").write_text("method: lora\nrnak: 8\n")
    result = _labkit("train", "--config", str(tmp_path / "typo.yaml"))
    assert result.returncode == 2 and "unknown field 'rnak'; did you mean 'rank'?" in result.stderr


def test_errors_from_libraries_keep_their_traceback(monkeypatch, capsys):
    """Only labkit's own errors are shortened to one line; a library's bug shows where it happened."""
    from labkit import cli

    def boom(args):
        raise ValueError("something inside a library")

    parser = cli.build_parser()
    args = parser.parse_args(["models"])
    monkeypatch.setattr(cli, "build_parser", lambda: type("P", (), {"parse_args": lambda self, argv: args})())
    args.func = boom
    with pytest.raises(ValueError, match="inside a library"):
        cli.main(["models"])


@pytest.mark.slow
def test_run_all_smoke_runs_every_lesson():
    """`labkit run all --profile smoke`: every lesson trains (or reuses) and prints its claims.

    Shares LABKIT_RUNS_DIR with the notebooks' nbval run (make test sets it), so the notebooks
    afterwards replay these runs instead of training again.
    """
    from labkit.lessons import LESSONS

    # about 4-5 minutes per lesson on 2 busy cores; the limit only guards against a hang
    result = _labkit("run", "all", "--profile", "smoke", timeout=600 * len(LESSONS))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for name in LESSONS:
        assert f"== {name} done in" in result.stdout
    assert "claim:" in result.stdout


def test_a_config_error_arrives_before_torch_is_imported(tmp_path):
    (tmp_path / "bad.yaml").write_text("method: lora\nrnak: 8\n")
    probe = ("import sys\nfrom labkit import cli\ncode = cli.main(['train', '--config', sys.argv[1]])\n"
             "print('torch' in sys.modules, 'trl' in sys.modules, code)")
    result = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "bad.yaml")], capture_output=True, text=True)
    assert result.stdout.split() == ["False", "False", "2"], result.stdout + result.stderr


def test_a_run_that_fails_before_training_leaves_no_folder(tmp_path):
    (tmp_path / "chats.jsonl").write_text("".join(
        '{"messages": [{"role": "user", "content": "q%d"}, {"role": "assistant", "content": "a"}]}\n' % i
        for i in range(4)))
    (tmp_path / "run.yaml").write_text("run_name: ghost\nmodel: no-such-model-anywhere\ntrain_file: chats.jsonl\n")
    result = subprocess.run([sys.executable, "-m", "labkit.cli", "train", "--config", str(tmp_path / "run.yaml")],
                            capture_output=True, text=True,
                            env={**os.environ, "HF_HUB_OFFLINE": "1", "LABKIT_RUNS_DIR": str(tmp_path / "runs")})
    assert result.returncode == 2 and "no-such-model-anywhere" in result.stderr, result.stderr[-1500:]
    assert not list((tmp_path / "runs").glob("*")) if (tmp_path / "runs").exists() else True


def _chats(tmp_path, n=4):
    (tmp_path / "chats.jsonl").write_text("".join(
        '{"messages": [{"role": "user", "content": "q%d"}, {"role": "assistant", "content": "a"}]}\n' % i
        for i in range(n)))


def test_a_hub_id_while_offline_is_one_line_and_leaves_no_folder(tmp_path, monkeypatch, capsys):
    from labkit import cli

    _chats(tmp_path)
    (tmp_path / "run.yaml").write_text("run_name: hub\nmodel: someorg/not-cached-model\ntrain_file: chats.jsonl\n")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("LABKIT_RUNS_DIR", str(tmp_path / "runs"))
    assert cli.main(["train", "--config", str(tmp_path / "run.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "model 'someorg/not-cached-model' is a Hugging Face hub id" in err
    assert "HF_HUB_OFFLINE is set" in err and "set model: <folder>" in err
    assert not list((tmp_path / "runs").glob("*")) if (tmp_path / "runs").exists() else True


@pytest.mark.parametrize("problem", ["regular file", "read-only"])
def test_a_runs_folder_that_cannot_be_written_is_one_line(tmp_path, monkeypatch, capsys, problem):
    from labkit import cli
    from labkit.sft import train as train_module

    _chats(tmp_path)
    (tmp_path / "run.yaml").write_text("run_name: ro\nmax_steps: 1\ntrain_file: chats.jsonl\n")
    runs = tmp_path / "runs"
    if problem == "regular file":
        runs.write_text("not a folder")
    else:  # tests run as root here, where chmod cannot make a folder read-only: ask os.access
        runs.mkdir()
        monkeypatch.setattr(train_module.os, "access", lambda *a, **k: False)
    monkeypatch.setenv("LABKIT_RUNS_DIR", str(runs))
    assert cli.main(["train", "--config", str(tmp_path / "run.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(runs) in err
    assert ("it is a regular file, not a folder" if problem == "regular file" else "permission denied") in err
