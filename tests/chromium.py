"""A page open in headless Chromium, driven over the DevTools protocol (websocket-client; no Playwright)."""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import numpy as np


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class DevTools:
    """A minimal Chrome DevTools Protocol client (one page, request/response over websocket-client)."""

    def __init__(self, ws_url: str):
        import websocket

        self.ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self.next_id = 0

    def call(self, method: str, **params):
        self.next_id += 1
        # A call that waits in the page (``timeout`` ms, e.g. clips played to their end) may
        # take that long to answer on a loaded machine: the socket waits a little longer.
        self.ws.settimeout(max(30.0, params.get("timeout", 0) / 1000 + 30))
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]

    def wait_event(self, name: str, timeout: float = 30):
        end = time.time() + timeout
        while time.time() < end:
            msg = json.loads(self.ws.recv())
            if msg.get("method") == name:
                return msg
        raise TimeoutError(name)


available = _chromium


class Page:
    def __init__(self, dt: DevTools):
        self.dt = dt

    def eval(self, expression: str, timeout_ms: int = 20000):
        """The JSON value of ``expression`` (a promise is awaited)."""
        out = self.dt.call("Runtime.evaluate", expression=f"Promise.resolve({expression}).then(v => JSON.stringify(v))",
                           awaitPromise=True, returnByValue=True, timeout=timeout_ms)
        if "exceptionDetails" in out:
            raise RuntimeError(out["exceptionDetails"])
        return json.loads(out["result"]["value"])

    def shot(self, selector: str) -> np.ndarray:
        """A screenshot of the element ``selector`` as ``(H, W, 3)`` uint8."""
        from PIL import Image

        r = self.eval(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); e.scrollIntoView();"
                      " const b = e.getBoundingClientRect(); return [b.x, b.y + window.scrollY, b.width, b.height]; })()")
        data = self.dt.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                            clip={"x": r[0], "y": r[1], "width": r[2], "height": r[3], "scale": 1})["data"]
        with Image.open(io.BytesIO(base64.b64decode(data))) as im:
            return np.asarray(im.convert("RGB")).copy()


@contextmanager
def open_page(page: Path, width: int = 1280, height: int = 1000):
    """Headless Chromium with ``page`` loaded (autoplay allowed); yields a ``Page``."""
    profile = Path(tempfile.mkdtemp(prefix="cinekit-chromium-"))
    proc = subprocess.Popen([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                             "--disable-background-networking", "--disable-component-update", "--disable-sync",
                             "--mute-audio", "--autoplay-policy=no-user-gesture-required",
                             f"--user-data-dir={profile}", "--remote-debugging-port=0", "--remote-allow-origins=*",
                             f"--window-size={width},{height}", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        end = time.time() + 60
        while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
            assert time.time() < end and proc.poll() is None, "chromium did not start"
            time.sleep(0.1)
        port = int(port_file.read_text().splitlines()[0])
        targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10).read())
        dt = DevTools(next(t["webSocketDebuggerUrl"] for t in targets if t.get("type") == "page"))
        dt.call("Page.enable")
        dt.call("Page.navigate", url=page.resolve().as_uri())
        dt.wait_event("Page.loadEventFired", timeout=60)
        try:
            yield Page(dt)
        finally:
            dt.ws.close()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(profile, ignore_errors=True)
