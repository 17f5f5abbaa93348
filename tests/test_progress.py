"""The progress store: atomic writes that survive crashes, corrupt files moved aside, CLI and CSV."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import textwrap

import pytest

from labkit import cli, quiz
from labkit.quiz import progress, report
from labkit.quiz.progress import ProgressStore, ProgressWarning


@pytest.fixture
def store(tmp_path):
    return ProgressStore(tmp_path / "progress.json")


def _add(store, learner="ada", qid="p2-qlora-24gb", correct=True, selected=("D",)):
    q = quiz.get_question(qid)
    return store.record_attempt(learner, q.id, q.part, q.kind, list(selected), correct)


def test_first_attempt_is_kept_and_later_ones_counted(store):
    first = _add(store, correct=False, selected=("A",))
    assert (first.attempts, first.first_attempt_correct, first.solved) == (1, False, False)
    later = _add(store, correct=True)
    assert (later.attempts, later.first_attempt_correct, later.solved) == (2, False, True)
    assert later.first_answer == ("A",) and later.solved_at is not None
    again = _add(store, correct=False)
    assert again.solved and again.attempts == 3
    assert json.loads(store.path.read_text())["version"] == progress.VERSION


def test_learner_name_from_argument_then_env(monkeypatch):
    monkeypatch.setenv("LABKIT_LEARNER", "grace")
    assert progress.learner_name("ada") == "ada"
    assert progress.learner_name() == "grace"
    monkeypatch.delenv("LABKIT_LEARNER")
    assert progress.learner_name()  # the login name, or "learner"


def test_default_location_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("LABKIT_PROGRESS", str(tmp_path / "elsewhere.json"))
    assert ProgressStore().path == tmp_path / "elsewhere.json"


def test_failed_rename_leaves_the_old_file_and_no_temp(store, monkeypatch):
    _add(store)
    before = store.path.read_bytes()

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(progress.os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        _add(store, qid="p1-legal-format")
    assert store.path.read_bytes() == before
    assert [p.name for p in store.path.parent.iterdir() if p.suffix == ".tmp"] == []


CRASH = textwrap.dedent("""
    import os, sys
    from labkit.quiz import progress
    store = progress.ProgressStore(sys.argv[1])
    store.record_attempt("ada", "p1-legal-format", "1", "decision", ["C"], True)
    real_write = None
    if sys.argv[2] == "before-rename":
        progress.os.replace = lambda *a: os._exit(9)
    else:  # half-way through writing the new contents
        import tempfile
        real = os.fdopen
        class Half:
            def __init__(self, f): self.f = f
            def __enter__(self): return self
            def __exit__(self, *a): return False
            def write(self, text):
                self.f.write(text[: len(text) // 2]); self.f.flush(); os._exit(9)
        progress.os.fdopen = lambda fd, *a, **k: Half(real(fd, *a, **k))
    store.record_attempt("ada", "p2-qlora-24gb", "2", "decision", ["D"], True)
""")


@pytest.mark.parametrize("when", ["before-rename", "mid-write"])
def test_a_real_crash_mid_write_keeps_the_previous_file(store, when):
    """Kill a process (os._exit, no cleanup) while it writes: the old file must still be whole."""
    result = subprocess.run([sys.executable, "-c", CRASH, str(store.path), when], capture_output=True, text=True)
    assert result.returncode == 9, result.stderr
    with_warnings = store.records("ada")  # must parse without being moved aside
    assert [r.question_id for r in with_warnings] == ["p1-legal-format"]
    assert not list(store.path.parent.glob("*.corrupt-*"))
    assert list(store.path.parent.glob(".progress.json.*.tmp")), "the crash should have left its temp file"
    # The next write succeeds despite the stray temp file.
    _add(store)
    assert {r.question_id for r in store.records("ada")} == {"p1-legal-format", "p2-qlora-24gb"}


@pytest.mark.parametrize("content", [b'{"version": 1, "learners": {"ada": {"p2-x": {"attem', b"\x00\xff\xfe",
                                     b"[1, 2, 3]", b'{"version": 1, "learners": {"ada": {"p2-x": {"attempts": 0}}}}'])
def test_a_corrupt_file_is_moved_aside_with_a_warning(store, content):
    store.path.write_bytes(content)
    with pytest.warns(ProgressWarning, match="moved to .*progress.json.corrupt-"):
        assert store.records() == []
    [aside] = store.path.parent.glob("progress.json.corrupt-*")
    assert aside.read_bytes() == content  # never silently lost
    _add(store)
    assert len(store.records("ada")) == 1


def test_two_corrupt_files_in_one_second_do_not_overwrite_each_other(store):
    for content in (b"first", b"second"):
        store.path.write_bytes(content)
        with pytest.warns(ProgressWarning):
            store.read()
    kept = sorted(p.read_bytes() for p in store.path.parent.glob("progress.json.corrupt-*"))
    assert kept == [b"first", b"second"]


def test_a_newer_file_is_refused_not_moved(store):
    store.path.write_text(json.dumps({"version": 99, "learners": {}}))
    with pytest.raises(ValueError, match="newer labkit"):
        store.read()
    assert store.path.exists()


def test_concurrent_writers_do_not_lose_answers(store):
    script = textwrap.dedent("""
        import sys
        from labkit import quiz
        from labkit.quiz import progress
        store = progress.ProgressStore(sys.argv[1])
        for q in quiz.load_bank(int(sys.argv[2])).questions:
            store.record_attempt("ada", q.id, q.part, q.kind, ["A"], False)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, str(store.path), part]) for part in ("3", "5")]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    expected = len(quiz.load_bank(3).questions) + len(quiz.load_bank(5).questions)
    assert len(store.records("ada")) == expected


def test_summary_per_part(store):
    _add(store, qid="p2-qlora-24gb", correct=True)
    _add(store, qid="p2-starting-rank", correct=False, selected=("A",))
    _add(store, qid="p2-starting-rank", correct=True, selected=("C",))
    scores = {s.part: s for s in report.summarize(store.records("ada"), quiz.load_all())}
    two = scores["2"]
    assert (two.answered, two.first_try_correct, two.solved, two.questions) == (2, 1, 2, 5)
    assert scores["practice"].answered == 0
    table = report.format_scores(list(scores.values()))
    assert "2/5" in table and table.splitlines()[-1].startswith("total")


def test_cli_prints_per_part_scores(store, capsys, monkeypatch):
    _add(store, learner="ada")
    _add(store, learner="bob", correct=False, selected=("A",))
    assert cli.main(["progress", "--file", str(store.path), "--learner", "ada"]) == 0
    out = capsys.readouterr().out
    assert "Quiz progress for ada" in out and "LoRA and QLoRA" in out and "1/5" in out
    monkeypatch.setenv("LABKIT_LEARNER", "carol")
    assert cli.main(["progress", "--file", str(store.path)]) == 0
    out = capsys.readouterr().out
    assert "No answers recorded for carol yet. Learners in this file: ada, bob." in out


def test_cli_csv_export(store, capsys, tmp_path):
    _add(store, learner="ada")
    _add(store, learner="bob", correct=False, selected=("A",))
    assert cli.main(["progress", "--file", str(store.path), "--csv", "-"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["learner"], r["question_id"], r["first_attempt_correct"], r["first_answer"]) for r in rows] == [
        ("ada", "p2-qlora-24gb", "1", "D"), ("bob", "p2-qlora-24gb", "0", "A")]
    assert tuple(rows[0]) == report.CSV_FIELDS
    out_file = tmp_path / "scores.csv"
    assert cli.main(["progress", "--file", str(store.path), "--csv", str(out_file), "--learner", "bob"]) == 0
    assert "wrote 1 rows" in capsys.readouterr().out
    assert [r["learner"] for r in csv.DictReader(out_file.open())] == ["bob"]


def test_cli_progress_as_a_command(store):
    _add(store)
    result = subprocess.run([sys.executable, "-m", "labkit.cli", "progress", "--file", str(store.path),
                             "--learner", "ada"], capture_output=True, text=True,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr
    assert "right first try" in result.stdout


# --- one bad entry, stale temp files, paths that cannot be used --------------------------------

def test_one_malformed_entry_is_set_aside_and_every_valid_entry_kept(store):
    _add(store, learner="ada")
    _add(store, learner="bob", correct=False, selected=("A",))
    doc = json.loads(store.path.read_text())
    doc["learners"]["ada"]["p1-broken"] = {"attempts": "many"}
    store.path.write_text(json.dumps(doc))
    original = store.path.read_bytes()
    with pytest.warns(ProgressWarning, match=r"1 malformed entry \(learner 'ada', question 'p1-broken'\) set aside.*"
                                             r"the 2 valid entries were kept"):
        records = store.records()
    assert {(r.learner, r.question_id) for r in records} == {("ada", "p2-qlora-24gb"), ("bob", "p2-qlora-24gb")}
    [aside] = store.path.parent.glob("progress.json.corrupt-*")
    assert aside.read_bytes() == original  # the bad entry survives there
    assert "p1-broken" not in store.path.read_text()
    assert report.summarize(store.records("ada"), quiz.load_all())  # the score did not reset


def test_a_corrupt_file_in_a_read_only_folder_is_still_read(store, monkeypatch):
    _add(store, learner="ada")
    doc = json.loads(store.path.read_text())
    doc["learners"]["ada"]["p1-broken"] = {"attempts": 0}
    store.path.write_text(json.dumps(doc))

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(progress.os, "replace", refuse)
    with pytest.warns(ProgressWarning, match="could not be rewritten .*left as it is. 1 valid entries are read"):
        assert [r.question_id for r in store.records("ada")] == ["p2-qlora-24gb"]
    store.path.write_bytes(b"{not json")
    with pytest.warns(ProgressWarning, match="could not be moved aside either"):
        assert store.records() == []
    assert store.path.read_bytes() == b"{not json"


def test_stale_temp_files_are_cleaned_on_the_next_write(store):
    _add(store)
    stale = store.path.parent / f".{store.path.name}.k1ll3d.tmp"
    stale.write_text('{"half": ')
    _add(store, qid="p1-legal-format")
    assert not stale.exists()
    assert {r.question_id for r in store.records("ada")} == {"p2-qlora-24gb", "p1-legal-format"}


def test_cli_progress_file_that_is_a_folder_is_one_line(tmp_path, capsys):
    assert cli.main(["progress", "--file", str(tmp_path), "--learner", "ada"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{tmp_path}: cannot read the progress file: it is a folder, not a file" in err


def test_cli_csv_into_a_read_only_folder_is_one_line(store, tmp_path, capsys, monkeypatch):
    import labkit.files

    _add(store)

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied", str(tmp_path / "ro"))

    monkeypatch.setattr(labkit.files.tempfile, "mkstemp", refuse)
    target = tmp_path / "ro" / "scores.csv"
    assert cli.main(["progress", "--file", str(store.path), "--csv", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{target}: cannot write the CSV export: permission denied" in err


def test_a_progress_file_in_a_path_through_a_regular_file_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(progress.PathError, match="cannot create the progress folder: .*regular file"):
        ProgressStore(blocker / "progress.json").record_attempt("ada", "p2-qlora-24gb", "2", "decision", ["D"], True)
