"""A small Chrome DevTools Protocol client for the browser tests: the Debian ``chromium``
binary, headless, driven over one websocket (``websocket-client``). No browser download.

Flags: --headless --no-sandbox --disable-gpu --disable-background-networking, plus
--no-first-run --disable-component-update --disable-sync and a fresh --user-data-dir, so the
browser talks to nothing but the pages it is sent to. ``offline=True`` also points every proxy
at a closed port and turns on DevTools' offline emulation.
"""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


class CDPError(RuntimeError):
    pass


class Browser:
    def __init__(
        self, profile: Path, *, offline: bool = False, width: int = 1280, height: int = 1600
    ):
        import websocket  # websocket-client

        exe = chromium_path()
        if exe is None:
            raise CDPError("chromium is not installed (Debian package `chromium`)")
        profile.mkdir(parents=True, exist_ok=True)
        args = [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--disable-extensions",
            "--mute-audio",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            "--remote-debugging-port=0",
            "--remote-allow-origins=*",
        ]
        if offline:
            args += ["--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>"]
        args.append("about:blank")
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = profile / "DevToolsActivePort"
        deadline = time.time() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            if time.time() > deadline or self.proc.poll() is not None:
                self.close()
                raise CDPError("chromium did not start (no DevToolsActivePort)")
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            targets = json.load(r)
        page = next(t for t in targets if t.get("type") == "page")
        self.ws = websocket.create_connection(
            page["webSocketDebuggerUrl"], timeout=30, suppress_origin=True
        )
        self._ids = itertools.count(1)
        self.events: list[dict] = []
        self.dialogs: list[str] = []
        self.requests: list[str] = []
        self.call("Page.enable")
        self.call("Runtime.enable")
        self.call("Network.enable")
        if offline:
            self.call(
                "Network.emulateNetworkConditions",
                offline=True,
                latency=0,
                downloadThroughput=-1,
                uploadThroughput=-1,
            )

    # -- protocol -----------------------------------------------------------------------
    def _handle(self, msg: dict) -> None:
        method = msg.get("method")
        if method == "Page.javascriptDialogOpening":
            self.dialogs.append(msg["params"].get("message", ""))
            self.ws.send(json.dumps({"id": next(self._ids), "method": "Page.handleJavaScriptDialog",
                                     "params": {"accept": False}}))  # fmt: skip
        elif method == "Network.requestWillBeSent":
            self.requests.append(msg["params"]["request"]["url"])
        self.events.append(msg)

    def call(self, method: str, **params: Any) -> dict:
        mid = next(self._ids)
        self.ws.settimeout(60)
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == mid:
                if "error" in msg:
                    raise CDPError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self._handle(msg)

    def wait_event(self, method: str, timeout: float = 30, after: int = 0) -> dict:
        deadline = time.time() + timeout
        while True:
            for m in self.events[after:]:
                if m.get("method") == method:
                    return m
            if time.time() > deadline:
                raise CDPError(f"no {method} within {timeout} s")
            self.ws.settimeout(max(0.05, deadline - time.time()))
            try:
                msg = json.loads(self.ws.recv())
            except Exception:
                continue
            if "method" in msg:
                self._handle(msg)

    # -- conveniences --------------------------------------------------------------------
    def goto(self, url: str, timeout: float = 30) -> None:
        mark = len(self.events)
        result = self.call("Page.navigate", url=url)
        if result.get("errorText"):
            raise CDPError(f"cannot open {url}: {result['errorText']}")
        self.wait_event("Page.loadEventFired", timeout, after=mark)

    def eval(self, expression: str) -> Any:
        r = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in r:
            raise CDPError(f"{expression[:80]}...: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait_images(self, selector: str = "img") -> list[dict]:
        """Wait for every matching image (lazy ones made eager) to finish; report natural sizes."""
        return self.eval(
            f"""Promise.all(Array.from(document.querySelectorAll({json.dumps(selector)})).map(img =>
                  (img.loading = "eager", img.complete) ? img : new Promise(r => {{ img.onload = img.onerror = () => r(img); }})))
               .then(imgs => imgs.map(i => ({{src: i.currentSrc.slice(0, 120), w: i.naturalWidth,
                                              h: i.naturalHeight}})))"""
        )

    def click(self, selector: str, timeout: float = 30, *, navigates: bool = True) -> None:
        """A real mouse click at the centre of the element, then (``navigates``) wait for the
        next page load."""
        box = self.eval(
            f"""(() => {{ const el = document.querySelector({json.dumps(selector)});
                 if (!el) return null; el.scrollIntoView({{block: "center"}});
                 const r = el.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()"""
        )
        if box is None:
            raise CDPError(f"nothing matches {selector}")
        mark = len(self.events)
        x, y = box
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)
        if navigates:
            self.wait_event("Page.loadEventFired", timeout, after=mark)

    def press(self, key: str) -> None:
        """A real key press (keyDown with its text, then keyUp) on the focused page."""
        code = f"Key{key.upper()}" if len(key) == 1 and key.isalpha() else key
        self.call("Input.dispatchKeyEvent", type="keyDown", key=key, code=code, text=key)
        self.call("Input.dispatchKeyEvent", type="keyUp", key=key, code=code)

    def wait_for(self, expression: str, timeout: float = 30) -> Any:
        """Poll ``expression`` until it is truthy; its value."""
        deadline = time.time() + timeout
        while True:
            value = self.eval(expression)
            if value:
                return value
            if time.time() > deadline:
                raise CDPError(f"{expression[:80]} still falsy after {timeout} s")
            time.sleep(0.05)

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        ws = getattr(self, "ws", None)
        if ws is not None:
            ws.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
