"""Your own data: good files load as chat rows; every bad file stops with one file:line error."""

from __future__ import annotations

import json

import pytest

from labkit.data.chat import DataError
from labkit.data.loaders import load, read_chat, read_docs_folder, read_qa_csv


def _chat(content: str = "4", **extra) -> str:
    return json.dumps({**extra, "messages": [{"role": "user", "content": "2+2?"},
                                             {"role": "assistant", "content": content}]})


def test_good_csv_with_quotes_multiline_bom_and_system(tmp_path):
    path = tmp_path / "qa.csv"
    path.write_text('\ufeffid,question,answer,category\n'
                    'a1,"What is 2 + 2, exactly?",4,math\n\n'
                    'a2,"A question\nover two lines",yes,misc\n', encoding="utf-8")
    rows = read_qa_csv(path, system="Be brief.")
    assert [r["id"] for r in rows] == ["a1", "a2"]
    assert rows[0]["messages"] == [{"role": "system", "content": "Be brief."},
                                   {"role": "user", "content": "What is 2 + 2, exactly?"},
                                   {"role": "assistant", "content": "4"}]
    assert rows[1]["category"] == "misc" and "\n" in rows[1]["messages"][1]["content"]
    assert load(path) == read_qa_csv(path)


def test_csv_with_other_column_names(tmp_path):
    path = tmp_path / "faq.csv"
    path.write_text("prompt,response\nhi,hello\n")
    rows = read_qa_csv(path, question="prompt", answer="response")
    assert rows[0]["id"] == "faq-0001" and rows[0]["messages"][-1]["content"] == "hello"


@pytest.mark.parametrize("content, message", [
    (b"q,a\nx,y\n", r"bad.csv:1: no question column 'question'; the columns are: q, a"),
    (b"question,answer\nx,y\nx,y,z\n", r"bad.csv:3: expected 2 fields"),
    (b'question,answer\n"never closed,y\nx,y\n', r"bad.csv:2: not valid CSV"),
    (b"question,answer\nx,\n", r"bad.csv:2: the 'answer' cell is empty"),
    (b"question,answer\nok,fine\nx,caf\xe9\n", r"bad.csv:3: not UTF-8"),
    (b"", r"bad.csv: the file is empty"),
    (b"question,answer\n", r"bad.csv: a header but no rows"),
    (b"id,question,answer\n1,a,b\n2,c,d\n1,e,f\n", r"bad.csv:4: duplicate id '1' \(first used on line 2\)"),
])
def test_bad_csv(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_qa_csv(path)


def test_csv_json_answers_must_parse(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text('question,answer\nq1,"{""a"": 1}"\nq2,"{a: 1}"\n')
    with pytest.raises(DataError, match=r"bad.csv:3: the answer is not valid JSON"):
        read_qa_csv(path, json_answers=True)


def test_chat_jsonl_good_and_bad(tmp_path):
    good = tmp_path / "good.jsonl"
    good.write_text(_chat(id="a") + "\n\n" + _chat('{"x": 1}', id="b") + "\n")
    assert len(read_chat(good)) == 2 and len(load(good)) == 2
    cases = {
        "dup.jsonl": (_chat(id="a") + "\n\n" + _chat(id="a") + "\n", r"dup.jsonl:3: duplicate id 'a' \(first used on line 1\)"),
        "broken.jsonl": (_chat() + "\n{oops\n", r"broken.jsonl:2: not valid JSON"),
        "empty.jsonl": ("\n  \n", r"empty.jsonl: the file is empty"),
        "answers.jsonl": (_chat('{"x": 1}') + "\n" + _chat("{x: 1}") + "\n", r"answers.jsonl:2: the answer is not valid JSON"),
    }
    for name, (text, message) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(DataError, match=message):
            read_chat(path, json_answers=name == "answers.jsonl")
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(_chat().encode() + b"\n" + _chat("cafe").replace("cafe", "caf\xe9").encode("latin-1") + b"\n")
    with pytest.raises(DataError, match=r"latin.jsonl:2: not UTF-8"):
        read_chat(latin)


def test_docs_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.md").write_text("intro line\n# The Title\nbody\n")
    (tmp_path / "sub" / "b.txt").write_text("\nFirst line is the title\nmore\n")
    (tmp_path / "skip.pdf").write_bytes(b"%PDF")
    docs = read_docs_folder(tmp_path)
    assert [d["id"] for d in docs] == ["a.md", "sub/b.txt"]
    assert [d["title"] for d in docs] == ["The Title", "First line is the title"]
    assert load(tmp_path) == docs


def test_bad_docs_folders(tmp_path):
    with pytest.raises(DataError, match="not a folder"):
        read_docs_folder(tmp_path / "missing")
    with pytest.raises(DataError, match=r"no \.txt or \.md files"):
        read_docs_folder(tmp_path)
    (tmp_path / "ok.txt").write_text("fine\n")
    (tmp_path / "z.md").write_text("   \n")
    with pytest.raises(DataError, match=r"z.md:1: the document is empty"):
        read_docs_folder(tmp_path)
    (tmp_path / "z.md").write_bytes(b"line one\nline two \xff\n")
    with pytest.raises(DataError, match=r"z.md:2: not UTF-8"):
        read_docs_folder(tmp_path)


def test_load_refuses_unknown_suffix(tmp_path):
    path = tmp_path / "data.xlsx"
    path.write_bytes(b"x")
    with pytest.raises(DataError, match="use .jsonl, .csv or a folder"):
        load(path)
