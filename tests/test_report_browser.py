"""report.html in a real browser: headless Chromium, driven over the DevTools protocol on a pipe.

Checks that the page loads, the metrics table and every chart are there and decoded (the image
has a natural width), and that nothing was logged as an error to the console. Saves a
screenshot (to $TUNESMITH_SCREENSHOT if set) so a person can look at it.

Needs Chromium from Debian's packages (`apt-get install -y chromium`); skipped without it.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from test_report_write import make_reported_run
from tunesmith.report import write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--remote-debugging-pipe"]  # fmt: skip
PROBE = """JSON.stringify({
  title: document.title,
  metricRows: document.querySelectorAll('table#metrics tbody tr').length,
  charts: [...document.querySelectorAll('img.chart')].map(i => ({key: i.dataset.chart, width: i.naturalWidth,
                                                                  complete: i.complete})),
  height: document.documentElement.scrollHeight,
})"""


class DevTools:
    """A minimal Chrome DevTools Protocol client over --remote-debugging-pipe (fd 3 in, fd 4 out)."""

    def __init__(self, profile: Path) -> None:
        to_chrome_read, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_write = os.pipe()

        def wire_fds() -> None:  # in the child: move the pipe ends to the protocol's fixed fds 3 and 4
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_chrome_read, from_chrome_write)]
            for target, fd in zip((3, 4), high, strict=True):
                os.dup2(fd, target)  # inheritable, unlike the pipe's own ends
                os.close(fd)

        self.process = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            close_fds=False, preexec_fn=wire_fds, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        os.close(to_chrome_read)
        os.close(from_chrome_write)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str) -> dict:
        while True:
            for k, event in enumerate(self.events):
                if event.get("method") == method:
                    return self.events.pop(k)
            self.events.append(self._read())

    def _read(self) -> dict:
        while b"\0" not in self._buffer:
            chunk = os.read(self._from_chrome, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (RuntimeError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        os.close(self._to_chrome)
        os.close(self._from_chrome)


def load_in_chromium(html: Path, screenshot: Path) -> tuple[dict, list[str]]:
    """(what the page contains, console errors), after the load event; writes a full-page PNG."""
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        browser = DevTools(Path(profile))
        try:
            target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Page", "Runtime", "Log"):
                browser.send(f"{domain}.enable", session=session)
            browser.send("Emulation.setDeviceMetricsOverride",
                         {"width": 1200, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session)  # fmt: skip
            browser.send("Page.navigate", {"url": html.resolve().as_uri()}, session)
            browser.wait_for("Page.loadEventFired")
            probe = browser.send("Runtime.evaluate", {"expression": PROBE, "returnByValue": True}, session)
            page = json.loads(probe["result"]["value"])
            shot = browser.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
            return page, console_errors(browser.events)
        finally:
            browser.close()


def console_errors(events: list[dict]) -> list[str]:
    errors = []
    for event in events:
        params = event.get("params", {})
        if event.get("method") == "Runtime.exceptionThrown":
            errors.append(params.get("exceptionDetails", {}).get("text", "exception"))
        elif event.get("method") == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            errors.append(" ".join(str(arg.get("value", "")) for arg in params.get("args", [])))
        elif event.get("method") == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            errors.append(params["entry"].get("text", ""))
    return errors


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_report_renders_in_chromium(tmp_path, monkeypatch):
    root = make_reported_run(tmp_path, monkeypatch)
    _, html = write_report(root)
    screenshot = Path(os.environ.get("TUNESMITH_SCREENSHOT", tmp_path / "report.png"))
    page, errors = load_in_chromium(html, screenshot)
    assert errors == []
    assert page["title"] == f"tunesmith report: {root.name}"
    assert page["metricRows"] >= 6  # EM, norm EM, F1, ROUGE-L, BLEU x2, perplexity
    assert [c["key"] for c in page["charts"]] == ["metrics", "loss", "lengths", "tags"]
    assert all(c["complete"] and c["width"] > 300 for c in page["charts"]), page["charts"]
    assert screenshot.read_bytes().startswith(b"\x89PNG") and page["height"] > 900
