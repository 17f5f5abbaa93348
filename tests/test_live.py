"""The live board: headless it draws once at the end; in a notebook it updates one display."""

from __future__ import annotations

from types import SimpleNamespace

from labkit import live


def _state(step, max_steps=10):
    return SimpleNamespace(global_step=step, max_steps=max_steps)


def test_headless_callback_yields_one_final_figure(tmp_path):
    board = live.LiveBoard(title="t")
    assert not board.live, "no kernel here: nothing may stream"
    cb = live.LiveLossCallback(board, label="r16", png_path=tmp_path / "loss.png")
    for step, loss in enumerate([3.0, 2.5, 2.0, 1.8], start=1):
        cb.on_log(None, _state(step), None, logs={"loss": loss})
        if step % 2 == 0:
            cb.on_log(None, _state(step), None, logs={"eval_loss": loss + 0.5 + (step == 4)})  # turns up at 4
    cb.on_train_end(None, _state(4, max_steps=4), None)
    assert board.draws == 0  # headless: no stream, no display calls
    assert (tmp_path / "loss.png").is_file()
    assert board.series["r16 train"][-1] == (4.0, 1.8)
    assert cb.best == (2, 3.0)
    assert [m[1] for m in board.marks] == ["r16 best"]


def test_early_stop_is_marked(tmp_path):
    board = live.LiveBoard(live=False)
    cb = live.LiveLossCallback(board, label="a", png_path=tmp_path / "x.png")
    cb.on_log(None, _state(2, 20), None, logs={"eval_loss": 1.0})
    cb.on_train_end(None, _state(6, 20), None)
    assert cb.stopped_early_at == 6
    assert "a early stop" in [m[1] for m in board.marks]


def test_streaming_updates_one_display_handle(monkeypatch):
    shown, updated = [], []

    class Handle:
        def update(self, fig):
            updated.append(fig)

    def fake_display(fig, display_id=False):
        shown.append(fig)
        return Handle()

    import IPython.display

    monkeypatch.setattr(IPython.display, "display", fake_display)
    monkeypatch.setattr(live, "in_notebook", lambda: True)
    board = live.LiveBoard(live=True, every_s=0.0)
    for step in range(5):
        board.add("val", step, 1.0 / (step + 1))
    assert len(shown) == 1 and len(updated) == 4, "one display, then updates in place"
    board.finish()
    assert len(shown) == 1 and len(updated) == 5


def test_throttle_limits_redraws(monkeypatch):
    import IPython.display

    calls = []
    monkeypatch.setattr(IPython.display, "display", lambda fig, display_id=False: calls.append(fig) or
                        SimpleNamespace(update=lambda f: calls.append(f)))
    board = live.LiveBoard(live=True, every_s=3600)
    for step in range(50):
        board.add("train", step, 1.0)
    assert len(calls) == 1, "within the throttle window only the first point draws"


def test_smoke_profile_never_streams(monkeypatch):
    monkeypatch.setattr(live, "in_notebook", lambda: True)
    monkeypatch.setenv("LABKIT_PROFILE", "smoke")
    assert not live.streaming_enabled()
    monkeypatch.setenv("LABKIT_PROFILE", "full")
    assert live.streaming_enabled()
    monkeypatch.setenv("LABKIT_LIVE", "0")
    assert not live.streaming_enabled()


def test_progress_line_fields_eta_and_one_final_line(capsys):
    line = live.ProgressLine("r16", live=False)
    line.note("loading the model")
    assert line.text().startswith("r16: loading the model")
    line.start(60)
    line.update(15, loss=1.2345)
    line.update(30, val=1.5)
    text = line.text()
    assert "step 30/60 (50%)" in text and "train 1.234" in text and "val 1.500" in text and "ETA" in text
    assert line.eta_seconds() is not None and line.eta_seconds() >= 0
    assert capsys.readouterr().out == ""  # nothing streams headless...
    line.close("stopped early at step 30")
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("r16: 30 steps in") and "stopped early" in out[0]  # ...one line at the end


def test_silent_progress_line_prints_nothing(capsys):
    line = live.ProgressLine("bench", silent=True)
    line.start(4)
    line.update(4, loss=1.0)
    line.close()
    assert capsys.readouterr().out == ""
