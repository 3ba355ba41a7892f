"""A small Chrome DevTools Protocol client around Debian's headless chromium.

Used by tests/report/test_html.py and benchmarks/bench_html.py to load
report.html, record every network request and console/CSP message, run
JavaScript in the page and take screenshots.  Chromium is started with a proxy
that refuses everything and no background networking, so even a request that
slipped past the page's CSP would be seen (Network events) and go nowhere.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")


def chromium_path() -> str | None:
    env = os.environ.get("CRA_FW_CHROMIUM")
    if env and Path(env).exists():
        return env
    for cand in CHROMIUM_CANDIDATES:
        if Path(cand).exists():
            return cand
    return shutil.which("chromium")


@dataclass
class PageLoad:
    url: str
    seconds: float
    requests: list[str] = field(default_factory=list)  # URLs of every request the page made
    log: list[dict[str, Any]] = field(default_factory=list)  # Log.entryAdded entries
    console: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)  # console.error / console.assert calls
    statuses: dict[str, int] = field(default_factory=dict)  # URL -> HTTP status of each response
    exceptions: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


class Chromium:
    """One headless chromium with one page, driven over CDP."""

    def __init__(self, timeout: float = 30.0, loopback: bool = False) -> None:
        """``loopback``: let the page reach servers on this machine (a local web app under test);
        everything else still goes to the refusing proxy."""
        import websocket  # websocket-client (test dependency)

        exe = chromium_path()
        if exe is None:
            raise FileNotFoundError("chromium is not installed (Debian package `chromium`)")
        self.timeout = timeout
        self.profile = Path(tempfile.mkdtemp(prefix="cra-fw-chromium-"))
        args = [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--disable-extensions",
            "--mute-audio",
            "--no-default-browser-check",
            "--proxy-server=http://127.0.0.1:9",
            # <-loopback> removes Chromium's implicit proxy bypass for localhost
            *(() if loopback else ("--proxy-bypass-list=<-loopback>",)),
            "--remote-debugging-port=0",
            f"--user-data-dir={self.profile}",
            "--window-size=1280,900",
            "about:blank",
        ]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if port_file.exists():
                lines = port_file.read_text().split()
                if len(lines) >= 2:
                    break
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with status {self.proc.returncode}")
            time.sleep(0.05)
        else:
            self.close()
            raise TimeoutError("chromium did not open its DevTools port")
        port, path = lines[0], lines[1]
        self.ws = websocket.create_connection(
            f"ws://127.0.0.1:{port}{path}", timeout=timeout, suppress_origin=True
        )
        self._id = 0
        self.events: list[dict[str, Any]] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Network", "Runtime", "Log"):
            self.call(f"{domain}.enable", session=True)

    # ---- protocol ------------------------------------------------------------------------
    def call(self, method: str, session: bool = False, **params: Any) -> dict[str, Any]:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if session:
            msg["sessionId"] = self.session
        self.ws.send(json.dumps(msg))
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)
        raise TimeoutError(method)

    def wait_event(self, method: str, timeout: float | None = None) -> dict[str, Any]:
        for i, ev in enumerate(self.events):
            if ev.get("method") == method:
                return self.events.pop(i)
        deadline = time.monotonic() + (timeout or self.timeout)
        while time.monotonic() < deadline:
            ev = json.loads(self.ws.recv())
            if ev.get("method") == method:
                return ev
            if "method" in ev:
                self.events.append(ev)
        raise TimeoutError(method)

    def drain(self, seconds: float = 0.3) -> None:
        """Collect events for a short while (late requests after load)."""
        self.ws.settimeout(0.05)
        end = time.monotonic() + seconds
        try:
            while time.monotonic() < end:
                try:
                    ev = json.loads(self.ws.recv())
                except Exception:  # noqa: BLE001 - socket timeout: nothing more yet
                    continue
                if "method" in ev:
                    self.events.append(ev)
        finally:
            self.ws.settimeout(self.timeout)

    # ---- page helpers --------------------------------------------------------------------
    def load(self, path: Path | str) -> PageLoad:
        """Open a file (a Path) or an http(s) URL (a str) and collect what happened until it loaded."""
        url = (
            path
            if isinstance(path, str) and path.startswith(("http://", "https://"))
            else Path(path).resolve().as_uri()
        )
        self.events.clear()
        start = time.monotonic()
        self.call("Page.navigate", session=True, url=url)
        self.wait_event("Page.loadEventFired")
        seconds = time.monotonic() - start
        self.drain()
        return self.collect(PageLoad(url=url, seconds=seconds))

    def collect(self, load: PageLoad) -> PageLoad:
        """Add the events received so far (after :meth:`drain`) to ``load``; they are consumed."""
        events, self.events = self.events, []
        for ev in events:
            method, params = ev.get("method"), ev.get("params", {})
            if method == "Network.requestWillBeSent":
                load.requests.append(params.get("request", {}).get("url", ""))
            elif method == "Log.entryAdded":
                load.log.append(params.get("entry", {}))
            elif method == "Runtime.consoleAPICalled":
                text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
                load.console.append(text)
                if params.get("type") in ("error", "assert"):
                    load.console_errors.append(text)
            elif method == "Network.responseReceived":
                response = params.get("response", {})
                load.statuses[response.get("url", "")] = int(response.get("status", 0))
            elif method == "Runtime.exceptionThrown":
                load.exceptions.append(json.dumps(params.get("exceptionDetails", {}))[:500])
            elif method == "Page.javascriptDialogOpening":
                load.dialogs.append(params.get("message", ""))
        return load

    def wait_for(self, expression: str, timeout: float = 15.0) -> Any:
        """Poll a page expression until it is truthy (content drawn after load, e.g. by fetch())."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value or time.monotonic() > deadline:
                return value
            time.sleep(0.1)

    def evaluate(self, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate", session=True, expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    def screenshot(self, out: Path, max_height: int = 8000, width: int = 1280) -> Path:
        """The page from the top, up to ``max_height`` CSS pixels.

        The viewport is made as tall as the shot first, so content that the page
        renders lazily (``content-visibility: auto``) is on screen and painted.
        """
        self.call(
            "Emulation.setDeviceMetricsOverride",
            session=True,
            width=width,
            height=900,
            deviceScaleFactor=1,
            mobile=False,
        )
        metrics = self.call("Page.getLayoutMetrics", session=True)
        size = metrics.get("cssContentSize") or metrics.get("contentSize")
        height = min(int(size["height"]), max_height)
        self.call(
            "Emulation.setDeviceMetricsOverride",
            session=True,
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        try:
            # two animation frames: layout and paint of everything now in the viewport
            self.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(1))))")
            metrics = self.call("Page.getLayoutMetrics", session=True)
            size = metrics.get("cssContentSize") or metrics.get("contentSize")
            height = min(int(size["height"]), max_height)
            self.call(
                "Emulation.setDeviceMetricsOverride",
                session=True,
                width=width,
                height=height,
                deviceScaleFactor=1,
                mobile=False,
            )
            self.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(1))))")
            shot = self.call("Page.captureScreenshot", session=True, format="png")
        finally:
            self.call("Emulation.clearDeviceMetricsOverride", session=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(base64.b64decode(shot["data"]))
        return out

    def close(self) -> None:
        try:
            if getattr(self, "ws", None) is not None:
                try:
                    self.call("Browser.close")
                except Exception:  # noqa: BLE001 - the browser may already be gone
                    pass
                self.ws.close()
        finally:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
