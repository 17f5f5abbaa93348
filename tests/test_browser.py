"""End to end: a quiz in a real JupyterLab, answered in a real Chromium (Debian's, via Playwright).

Starts ``jupyter lab`` on 127.0.0.1 (empty token, free port) over a temporary copy of a one-cell
notebook, runs the cell, picks a wrong answer and then the right one, and reads both feedback
texts, then checks the progress file. Skips with the reason when Chromium or Playwright is
missing; ``make browser`` installs Chromium.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from labkit import quiz

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
QUESTION = "p1-legal-format"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_notebook(path: Path) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(f'from labkit.quiz import show\nshow("{QUESTION}")')]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture
def jupyter_lab(tmp_path):
    """A JupyterLab server over ``tmp_path/work``; yields (url, progress file). Always stopped."""
    work = tmp_path / "work"
    work.mkdir()
    _write_notebook(work / "quiz.ipynb")
    progress_file = tmp_path / "progress.json"
    # Keep the "official Jupyter news?" toast away: it asks to fetch a feed and covers the page.
    notification = tmp_path / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True)
    notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    # A run requested while the session is still attaching its kernel opens "Select Kernel";
    # starting the notebook's own kernel without asking avoids that dialog.
    tracker = tmp_path / "settings" / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True)
    tracker.write_text(json.dumps({"autoStartDefaultKernel": True}))
    port = _free_port()
    env = {**os.environ, "LABKIT_PROGRESS": str(progress_file), "LABKIT_LEARNER": "browser-test",
           "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"), "HF_HUB_OFFLINE": "1"}
    log = (tmp_path / "lab.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         "--IdentityProvider.token=", "--ServerApp.password=", f"--ServerApp.root_dir={work}",
         # Nothing that reaches out: no news feed, no update check, no PyPI extension manager.
         "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         "--LabApp.extension_manager=readonly", *(["--allow-root"] if os.geteuid() == 0 else [])],
        cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)  # its own process group, so the kernel goes down with it
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if server.poll() is not None:
                pytest.fail(f"jupyter lab exited early:\n{(tmp_path / 'lab.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/api/status", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"jupyter lab did not answer in 90 s:\n{(tmp_path / 'lab.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield url, progress_file
    finally:
        server.send_signal(signal.SIGINT)  # a clean shutdown also shuts the kernel down
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
        # Anything the server left behind in its own group (a stray kernel) goes too.
        try:
            os.killpg(server.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        log.close()


def _run_cell(page, cell, tries: int = 4) -> None:
    """Run ``cell`` in place (Ctrl+Enter) and make sure the run was accepted.

    Right after a page load JupyterLab can drop a run request while the session attaches its
    kernel (the prompt stays ``[ ]``, sometimes behind a "Select Kernel" dialog, which we accept).
    A run that shows ``[*]`` or ``[n]`` is queued and is not repeated, so the widget is never
    replaced under the test's feet.
    """
    from playwright.sync_api import expect

    prompt = cell.locator(".jp-InputPrompt")
    select_kernel = page.locator(".jp-Dialog").get_by_role("button", name="Select", exact=True)
    for attempt in range(tries):
        if select_kernel.count():  # the dialog can still appear on a slow start; accept Python 3
            select_kernel.click()
        cell.locator(".cm-content").click()
        page.keyboard.press("Control+Enter")
        try:
            page.wait_for_timeout(1000)
            if select_kernel.count():
                select_kernel.click()
            expect(prompt).to_have_text(re.compile(r"\[(\*|\d+)\]"), timeout=15_000)
            return
        except AssertionError:
            if attempt == tries - 1:
                raise


@pytest.fixture
def browser_tools():
    """Skip, saying why, unless Debian's Chromium and the Playwright package are both here."""
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed at /usr/bin/chromium (run `make browser` as root)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("the playwright Python package is not installed (pip install playwright; no browser download)")


def test_quiz_in_jupyterlab_with_chromium(browser_tools, jupyter_lab, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    url, progress_file = jupyter_lab
    question = quiz.get_question(QUESTION)
    right = sorted(question.answer)[0]
    wrong = next(c for c in question.choices if not c.correct)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            # Generous waits: on two busy cores a kernel can take many seconds to start. Note
            # that expect() has its own timeout (5 s by default), separate from the page's.
            page.set_default_timeout(90_000)
            wait = {"timeout": 90_000}
            try:
                page.goto(f"{url}/lab/tree/quiz.ipynb")
                expect(page.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]')).to_have_count(1, **wait)
                cell = page.locator(".jp-Notebook .jp-CodeCell").first
                _run_cell(page, cell)
                widget = page.locator(".labkit-quiz")
                expect(widget).to_be_visible(**wait)
                # The static fallback must not show in a live notebook.
                expect(page.get_by_text("Show the answer")).to_have_count(0)
                feedback = widget.locator(".labkit-quiz-feedback")
                check = widget.get_by_role("button", name="Check answer", exact=True)

                widget.get_by_role("radio", name=wrong.letter, exact=True).check()
                check.click()
                expect(feedback).to_contain_text("Not quite", **wait)
                first_text = feedback.inner_text()

                widget.get_by_role("radio", name=right, exact=True).check()
                check.click()
                expect(feedback).to_contain_text("Correct.", **wait)
                second_text = feedback.inner_text()
                if os.environ.get("LABKIT_BROWSER_SCREENSHOT"):  # to look at the widget by eye
                    page.screenshot(path=os.environ["LABKIT_BROWSER_SCREENSHOT"], full_page=True)
            except Exception:
                page.screenshot(path=str(tmp_path / "failure.png"))
                raise
        finally:
            browser.close()

    assert wrong.feedback.split(".")[0] in " ".join(first_text.split())
    assert question.explanation.split(".")[0] not in first_text  # no spoiler on a wrong try
    assert question.explanation.split(".")[0] in " ".join(second_text.split())
    entry = json.loads(progress_file.read_text())["learners"]["browser-test"][QUESTION]
    assert (entry["attempts"], entry["first_attempt_correct"], entry["solved"]) == (2, False, True)
