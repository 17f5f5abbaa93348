"""Data in the shapes people have: each accepted shape, from Python and from the CLI, becomes the
same chat rows; each shape labkit cannot train on gets one line naming the file, the keys and the
shapes accepted."""

from __future__ import annotations

import json
import subprocess
import sys
import os

import pytest

from labkit.config import TrainConfig
from labkit.data.chat import DataError
from labkit.data.shapes import read_rows
from labkit.sft.data import DuplicateRowsWarning, as_rows, read_train_eval, split_eval, warn_duplicates

QA = [("What is 2+2?", "4"), ("Capital of France?", "Paris"), ("Colour of the sky?", "blue")]
EXPECTED = [[{"role": "user", "content": q}, {"role": "assistant", "content": a}] for q, a in QA]


def _jsonl(rows) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


SHAPE_FILES = {
    "chat.jsonl": ("chat messages", lambda: _jsonl({"messages": m} for m in EXPECTED)),
    "chat.json": ("chat messages", lambda: json.dumps([{"messages": m} for m in EXPECTED], indent=2)),
    "pc.jsonl": ("prompt/completion (TRL)", lambda: _jsonl({"prompt": q, "completion": a} for q, a in QA)),
    "cpc.jsonl": ("conversational prompt/completion (TRL)", lambda: _jsonl(
        {"prompt": [m[0]], "completion": [m[1]]} for m in EXPECTED)),
    "alpaca.json": ("Alpaca (instruction/input/output)", lambda: json.dumps(
        [{"instruction": q, "input": "", "output": a} for q, a in QA], indent=2)),
    "alpaca.jsonl": ("Alpaca (instruction/input/output)", lambda: _jsonl(
        {"instruction": q, "output": a} for q, a in QA)),
    "sharegpt.jsonl": ("ShareGPT (conversations/from/value)", lambda: _jsonl(
        {"conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": a}]} for q, a in QA)),
    "qa.csv": ("question/answer columns", lambda: "question,answer\n" + "".join(f'"{q}",{a}\n' for q, a in QA)),
    "qa.tsv": ("question/answer columns", lambda: "question\tanswer\n" + "".join(f"{q}\t{a}\n" for q, a in QA)),
}


def _write(tmp_path, name):
    shape, content = SHAPE_FILES[name]
    path = tmp_path / name
    path.write_text(content(), encoding="utf-8")
    return path, shape


@pytest.mark.parametrize("name", sorted(SHAPE_FILES))
def test_each_file_shape_becomes_chat_rows_in_python(tmp_path, name):
    path, shape = _write(tmp_path, name)
    loaded = read_rows(path)
    assert [r["messages"] for r in loaded.rows] == EXPECTED
    assert loaded.describe() == f"{path}: 3 rows, detected shape: {shape}"
    assert [r["messages"] for r in as_rows(str(path))] == EXPECTED  # what train() reads


@pytest.mark.parametrize("name", sorted(SHAPE_FILES))
def test_each_file_shape_from_the_cli(tmp_path, name, capsys):
    from labkit import cli

    path, shape = _write(tmp_path, name)
    (tmp_path / "run.yaml").write_text("run_name: shapes\nmax_steps: 1\n")
    assert cli.main(["train", "--config", str(tmp_path / "run.yaml"), "--data", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"{path}: 3 rows, detected shape: {shape}" in out
    assert "ok: 2 training rows, 1 validation rows" in out


def test_alpaca_input_and_system_and_extra_fields_ride_along():
    rows = read_rows([{"instruction": "Translate", "input": "chat", "output": "cat", "system": "Be terse.",
                       "id": "a1", "nested": {"dropped": True}}]).rows
    assert rows[0]["messages"] == [{"role": "system", "content": "Be terse."},
                                   {"role": "user", "content": "Translate\n\nchat"},
                                   {"role": "assistant", "content": "cat"}]
    assert rows[0]["id"] == "a1" and "nested" not in rows[0]


def test_question_answer_columns_under_other_names_and_a_system_prompt(tmp_path, capsys):
    from labkit import cli

    path = tmp_path / "faq.csv"
    path.write_text("prompt_text,reply\nhi,hello\nbye,see you\n")
    (tmp_path / "run.yaml").write_text("question_column: prompt_text\nanswer_column: reply\nsystem_prompt: Be kind.\n")
    cfg = TrainConfig.from_yaml(tmp_path / "run.yaml")
    rows = as_rows(path, config=cfg)
    assert rows[1]["messages"] == [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "bye"},
                                   {"role": "assistant", "content": "see you"}]
    assert cli.main(["train", "--config", str(tmp_path / "run.yaml"), "--data", str(path), "--dry-run"]) == 0
    assert "detected shape: question/answer columns" in capsys.readouterr().out


def test_datasets_in_memory_and_saved_to_disk(tmp_path, capsys):
    from datasets import Dataset, DatasetDict

    from labkit import cli

    pc = Dataset.from_list([{"prompt": q, "completion": a} for q, a in QA])
    dd = DatasetDict({"train": pc, "test": Dataset.from_list([{"prompt": "x?", "completion": "y"}] * 2)})
    assert [r["messages"] for r in as_rows(pc)] == EXPECTED
    assert [r["messages"] for r in as_rows(dd)] == EXPECTED  # the train split, not rows named after splits
    assert as_rows(dd, split="test")[0]["messages"][0]["content"] == "x?"
    with pytest.raises(DataError, match=r"no split 'validation'; the splits are: train, test"):
        as_rows(dd, split="validation")

    dd.save_to_disk(str(tmp_path / "saved"))
    pc.save_to_disk(str(tmp_path / "one"))
    loaded = read_rows(tmp_path / "saved")
    assert [r["messages"] for r in loaded.rows] == EXPECTED and loaded.split == "train"
    assert "(split 'train'): 3 rows, detected shape: prompt/completion (TRL)" in loaded.describe()
    assert [r["messages"] for r in as_rows(tmp_path / "one")] == EXPECTED
    # eval_file pointing at the same DatasetDict folder takes its test split
    cfg = TrainConfig(train_file=str(tmp_path / "saved"), eval_file=str(tmp_path / "saved"))
    train_rows, eval_rows, notes = read_train_eval(cfg)
    assert len(train_rows) == 3 and len(eval_rows) == 2 and "(split 'test')" in notes[1]

    (tmp_path / "run.yaml").write_text("run_name: shapes\ntrain_split: test\n")
    assert cli.main(["train", "--config", str(tmp_path / "run.yaml"), "--data", str(tmp_path / "saved"),
                     "--dry-run"]) == 0
    assert "(split 'test'): 2 rows" in capsys.readouterr().out


def test_parquet_is_read_with_datasets(tmp_path):
    from datasets import Dataset

    Dataset.from_list([{"question": q, "answer": a} for q, a in QA]).to_parquet(str(tmp_path / "qa.parquet"))
    loaded = read_rows(tmp_path / "qa.parquet")
    assert [r["messages"] for r in loaded.rows] == EXPECTED and loaded.shape == "question/answer"


@pytest.mark.parametrize("content, needle", [
    ('{"text": "hello"}\n', "bad.jsonl: rows with a 'text' field (TRL's language-modeling shape) have no prompt/answer"),
    ('{"foo": 1, "bar": 2}\n', "bad.jsonl: unknown data shape (keys seen: foo, bar); accepted: chat 'messages', TRL"),
    ('{"prompt": "p", "chosen": "a", "rejected": "b"}\n', "bad.jsonl: these rows are preference pairs"),
    ('{"prompt": "p"}\n', "bad.jsonl: rows have a 'prompt' but no 'completion'"),
    ('{"prompt": "p", "completion": "c"}\n{"instruction": "i", "output": "o"}\n',
     "bad.jsonl:2: missing 'prompt' (the first row is prompt/completion (TRL); keys present: instruction, output)"),
    ('{"conversations": [{"from": "wizard", "value": "hi"}]}\n', "bad.jsonl:1: conversations[0] is from 'wizard'"),
    ('{"instruction": "i", "output": ""}\n', "bad.jsonl:1: 'output' is empty"),
    ('{"prompt": [{"role": "user", "content": "p"}], "completion": "c"}\n',
     "bad.jsonl:1: 'prompt' and 'completion' must both be text or both be lists"),
])
def test_shapes_labkit_cannot_train_on_get_one_line(tmp_path, content, needle):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(DataError) as err:
        as_rows(path)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_a_json_array_with_a_syntax_error_names_its_line(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('[\n  {"instruction": "a", "output": "b"},\n  {"instruction": "c" "output": "d"}\n]\n')
    with pytest.raises(DataError, match=r"bad.json:3: not valid JSON"):
        as_rows(path)


def test_a_folder_that_is_not_a_saved_dataset_gets_its_own_message(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A\ntext\n")
    with pytest.raises(DataError, match=r"docs: is a folder, not a data file or a datasets save_to_disk folder.*"
                                        r"a folder of documents is a retrieval corpus"):
        as_rows(tmp_path / "docs")
    with pytest.raises(DataError, match=r"nothing.jsonl: no such file"):
        as_rows(tmp_path / "nothing.jsonl")


def test_one_row_names_the_file(tmp_path):
    path = tmp_path / "one.jsonl"
    path.write_text('{"prompt": "p", "completion": "c"}\n')
    with pytest.raises(DataError, match=r"one.jsonl: need at least 2 rows to hold some out for validation, got 1"):
        read_train_eval(TrainConfig(), str(path))
    with pytest.raises(DataError, match=r"^train data: need at least 2 rows"):
        split_eval([{}], 0.1, 0)


def test_duplicate_rows_warn_at_training_time(tmp_path):
    rows = [{"messages": m} for m in EXPECTED] + [{"messages": EXPECTED[0]}]
    with pytest.warns(DuplicateRowsWarning, match=r"qa.jsonl: 1 of 4 training rows repeat .*row 4 repeats row 1"):
        warn_duplicates(rows, "qa.jsonl")


def test_cli_data_errors_are_one_line_with_exit_code_2(tmp_path):
    (tmp_path / "odd.jsonl").write_text('{"foo": 1}\n{"foo": 2}\n')
    (tmp_path / "run.yaml").write_text("run_name: shapes\n")
    result = subprocess.run([sys.executable, "-m", "labkit.cli", "train", "--config", str(tmp_path / "run.yaml"),
                             "--data", str(tmp_path / "odd.jsonl"), "--dry-run"],
                            capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "odd.jsonl: unknown data shape (keys seen: foo)" in result.stderr
