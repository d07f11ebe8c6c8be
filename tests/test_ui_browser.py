"""The dashboard in headless Chromium (Debian's, over the DevTools pipe; no browser download).

One server and one browser for the module: open the runs table, a finished run's comparison
(filtered by an error tag and by "tuned got worse"), the data view, a streamed playground answer,
and a run started from the form whose loss curve gains points. Every view is looked at on a
1280x800 and a 390x844 viewport; the console must stay free of errors. Screenshots go to the
test's tmp dir, and also to $TUNESMITH_SCREENSHOTS when set.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest

from test_eval_compare import PARIS, SPROUT
from test_report_browser import CHROMIUM, DevTools, console_errors
from tunesmith.ui import launches
from tunesmith.ui.app import create_app
from ui_runs import make_runs

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
DESKTOP, PHONE = (1280, 800), (390, 844)


class Page:
    """One tab of the browser, driven by JavaScript expressions."""

    def __init__(self, browser: DevTools, shots: Path):
        self.browser, self.shots = browser, shots
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            browser.send(f"{domain}.enable", session=self.session)

    def viewport(self, size: tuple[int, int]) -> None:
        width, height = size
        self.browser.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height,
                          "deviceScaleFactor": 1, "mobile": width < 600}, self.session)  # fmt: skip

    def open(self, url: str) -> None:
        self.browser.send("Page.navigate", {"url": url}, self.session)
        self.browser.wait_for("Page.loadEventFired")

    def js(self, expression: str):
        reply = self.browser.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                       "awaitPromise": True}, self.session)  # fmt: skip
        if "exceptionDetails" in reply:
            raise AssertionError(f"{expression}: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def wait(self, expression: str, timeout: float = 15.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            value = self.js(expression)
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {expression}; page: {self.js('document.body.innerText')[:800]}")

    def choose(self, element_id: str, value: str) -> None:
        """Pick `value` in a <select> as a user would (the page listens for 'change')."""
        self.js(f"{{ const s = document.getElementById({json.dumps(element_id)}); s.value = {json.dumps(value)};"
                " s.dispatchEvent(new Event('change')); }")

    def go(self, hash_: str, ready: str) -> None:
        self.js(f"location.hash = {json.dumps(hash_)}")
        self.wait(ready)

    def shot(self, name: str) -> Path:
        data = self.browser.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True},
                                 self.session)  # fmt: skip
        path = self.shots / f"{name}.png"
        path.write_bytes(base64.b64decode(data["data"]))
        if os.environ.get("TUNESMITH_SCREENSHOTS"):
            folder = Path(os.environ["TUNESMITH_SCREENSHOTS"])
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, folder / path.name)
        return path

    def fits(self) -> bool:
        """No sideways scrolling of the whole page (wide tables scroll inside their own box)."""
        return self.js("document.documentElement.scrollWidth <= window.innerWidth + 1")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """RUNS_DIR with an evaluated run, served on a free loopback port."""
    import uvicorn

    with pytest.MonkeyPatch.context() as monkeypatch:
        runs_dir = make_runs(tmp_path_factory.mktemp("runs"), monkeypatch)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(runs_dir), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/", runs_dir
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def page(site, tmp_path_factory):
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        browser = DevTools(Path(profile))
        try:
            tab = Page(browser, tmp_path_factory.mktemp("screenshots"))
            tab.viewport(DESKTOP)
            tab.open(site[0])
            yield tab
        finally:
            browser.close()


@pytest.fixture(autouse=True)
def no_console_errors(page):
    yield
    assert console_errors(page.browser.events) == []


def test_runs_table_sorts_and_selects_two(page):
    page.go("#/", "document.querySelectorAll('#runs tbody tr').length === 3")
    names = "[...document.querySelectorAll('#runs tbody tr')].map(r => r.dataset.run)"
    page.js("document.querySelector('th[data-key=name]').click()")
    assert page.wait(f"{names}.join() === 'live,old,run' && {names}") == ["live", "old", "run"]
    assert page.js("[...document.querySelectorAll('#runs .badge')].map(b => b.textContent)") == [
        "running", "interrupted", "finished"]
    row = page.js("document.querySelector('#runs tr[data-run=run]').innerText")
    assert "0.10 / " in row and "0.90 / " in row  # base and tuned exact match
    page.shot("runs-desktop")
    for name in ("run", "old"):
        page.js(f"document.querySelector('#runs tr[data-run={name}] input').click()")
    page.js("document.getElementById('compare-two').click()")
    page.wait("document.querySelectorAll('#config-diff tbody tr').length > 0")
    assert "train.learning_rate" in page.js("document.getElementById('config-diff').innerText")
    first_row = page.js("document.querySelector('#metrics-side tbody tr').innerText").split("\t")
    assert first_row[:2] == ["exact_match", "0.100"] and first_row[3] == "0.900"  # run: base, few-shot, tuned
    page.shot("diff-desktop")
    page.viewport(PHONE)
    page.go("#/", "document.querySelectorAll('#runs tbody tr').length === 3")
    assert page.fits()
    page.shot("runs-phone")
    page.viewport(DESKTOP)


def test_comparison_filters_by_tag_and_regressions(page):
    page.go("#/run/run/compare", "document.querySelectorAll('#examples-compare .example').length === 10")
    assert "knowledge_accuracy\t–\t–\t0.750" in page.js("document.getElementById('three-way').innerText")
    assert "general_loss_change" in page.js("document.getElementById('tab-compare').innerText")  # forgetting
    assert page.js("document.getElementById('changes').innerText").endswith("9 better, 1 worse, 0 unchanged")
    page.choose("tag-filter", "off_topic")
    page.choose("tag-model", "base")
    tags = "[...document.querySelectorAll('#examples-compare [data-model=base] .tag')].map(t => t.textContent)"
    shown = page.wait(f"document.querySelectorAll('#examples-compare .example').length === 9 && {tags}")
    assert shown == ["off_topic"] * 9  # the base model's nine wrong answers
    page.shot("compare-tag-desktop")
    page.choose("tag-filter", "")
    page.js("document.getElementById('worse-filter').click()")
    page.wait("document.querySelectorAll('#examples-compare .example').length === 1")
    worse = page.js("document.querySelector('#examples-compare .example').innerText")
    assert PARIS in worse and SPROUT in worse
    page.viewport(PHONE)
    assert page.fits()
    page.shot("compare-worse-phone")
    page.viewport(DESKTOP)


def test_data_view_shows_masked_and_trained_tokens(page):
    page.go("#/run/run/data", "document.querySelectorAll('#examples .example').length === 3")
    assert "no checks recorded" in page.js("document.getElementById('tab-data').innerText")  # none in this report
    spans = page.js("[...document.querySelectorAll('#examples .example')[0].querySelectorAll('.tokens > span')]"
                    ".map(s => s.className)")
    assert spans == ["masked", "boundary", "trained"]
    assert page.js("document.querySelectorAll('#tab-data svg rect.bar').length") > 0  # length histogram
    page.shot("data-desktop")


def test_training_view_of_a_finished_run(page):
    page.go("#/run/run/train", "document.querySelector('#train-charts svg') !== null")
    assert page.js("document.querySelector('#train-charts svg').dataset.points") == "24"  # 20 train + 4 eval
    assert "26.5" in page.js("document.getElementById('tab-train').innerText")  # measured step time
    page.shot("train-desktop")


def test_playground_streams_both_answers(page):
    page.go("#/run/run/play", "document.getElementById('send') !== null")
    page.js("document.getElementById('prompt').value = 'Capital of France?'")
    page.js("document.getElementById('send').click()")
    page.wait("['base', 'tuned'].every(s => document.getElementById('answer-' + s).dataset.state === 'done')")
    assert page.js("document.getElementById('answer-base').textContent.trim()") == PARIS
    assert page.js("document.getElementById('answer-tuned').textContent.trim()") == SPROUT
    assert int(page.js("document.getElementById('answer-tuned').dataset.events")) > 1  # arrived in pieces
    page.shot("playground-desktop")
    page.viewport(PHONE)
    assert page.fits()
    page.shot("playground-phone")
    page.viewport(DESKTOP)


@pytest.mark.slow
def test_start_a_run_and_watch_its_loss_curve(page, site, tiny_model_dir, tmp_path):
    runs_dir = site[1]
    data = tmp_path / "sums.jsonl"
    data.write_text("".join(json.dumps({"question": f"What is {k} plus 1?", "answer": f"It is {k + 1}."}) + "\n"
                            for k in range(24)))
    settings = {"model": str(tiny_model_dir), "data.path": str(data), "data.test_size": "4", "train.max_steps": "300",
                "train.batch_size": "2", "train.log_every": "1", "train.save_every": "1000", "train.compile": "false",
                "eval.max_new_tokens": "4", "eval.few_shot": "1"}  # fmt: skip
    page.go("#/new", "document.getElementById('launch') !== null")
    page.js("document.getElementById('run-name').value = 'from-form'")
    for key, value in settings.items():
        page.js(f"document.getElementById('field-{key}').value = {json.dumps(value)}")
    page.shot("new-run-desktop")
    page.js("document.getElementById('launch').click()")
    try:
        page.wait("location.hash === '#/run/from-form/train'")
        loss_points = "Number((document.querySelector('#train-charts svg') || {dataset: {}}).dataset.points || 0)"
        first = page.wait(f"{loss_points} > 0 && {loss_points}", timeout=60)
        later = page.wait(f"{loss_points} > {first} && {loss_points}", timeout=30)
        assert later > first
        assert page.js("document.querySelector('#card-status .badge').textContent") == "running"
        page.shot("live-training-desktop")
        page.viewport(PHONE)
        assert page.fits()
        page.shot("live-training-phone")
        page.viewport(DESKTOP)
        assert (runs_dir / "from-form" / "config.yaml").is_file()  # an ordinary run directory
    finally:
        record = launches.state(runs_dir, runs_dir / "from-form")
        if record and record["running"]:
            os.killpg(record["pid"], signal.SIGTERM)  # its own session: the run and nothing else
