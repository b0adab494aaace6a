"""Headless Chromium driven over the DevTools protocol, and a local http server for a folder.

Mouse input goes through `Input.dispatchMouseEvent`, so the page receives real (trusted)
pointer events, as from a person drawing with a mouse.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest


def chromium_binary() -> str:
    """The Chromium binary; skips (or fails under XLV_REQUIRE_CHROMIUM=1) without one."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if path := shutil.which(name):
            return path
    reason = "no Chromium on PATH (tried chromium, chromium-browser, google-chrome)"
    if os.environ.get("XLV_REQUIRE_CHROMIUM") == "1":
        pytest.fail(f"XLV_REQUIRE_CHROMIUM=1 but {reason}")
    pytest.skip(reason)


class QuietHandler(SimpleHTTPRequestHandler):
    extensions_map = {
        **SimpleHTTPRequestHandler.extensions_map,
        ".mjs": "text/javascript",
        ".wasm": "application/wasm",
    }

    def log_message(self, *args) -> None:
        pass


@contextmanager
def serve(folder: Path) -> Iterator[str]:
    """`http://127.0.0.1:<port>/` serving `folder` until the block ends."""
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class Page:
    """One tab of a headless Chromium, spoken to over its DevTools websocket."""

    def __init__(self, socket) -> None:
        self.socket = socket
        self.next_id = 0

    def send(self, method: str, **params) -> dict:
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression: str):
        result = self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60.0):
        """Poll `expression` until it is truthy; its value. While a page is still loading
        (`document.body` not there yet) it counts as false."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # One evaluation: the page may be replaced between two (Chromium's first
            # about:blank gives way to the url), leaving `document.body` null for a moment.
            value = self.evaluate(
                f"(document.readyState === 'loading' || document.body === null) ? false : ({expression})"
            )
            if value:
                return value
            time.sleep(0.1)
        where = self.evaluate("location.href + ' (' + document.readyState + ')'")
        raise TimeoutError(f"{expression} still false after {timeout} s at {where}")

    def mouse(self, kind: str, x: float, y: float, buttons: int) -> None:
        self.send(
            "Input.dispatchMouseEvent",
            type=kind,
            x=x,
            y=y,
            button="left" if kind != "mouseMoved" or buttons else "none",
            buttons=buttons,
            clickCount=1 if kind != "mouseMoved" else 0,
        )

    def stroke(self, points: list[tuple[float, float]], steps: int = 6) -> None:
        """Press at the first point, drag through the rest (interpolated), release."""
        self.mouse("mousePressed", *points[0], buttons=1)
        for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
            for i in range(1, steps + 1):
                t = i / steps
                self.mouse("mouseMoved", x0 + t * (x1 - x0), y0 + t * (y1 - y0), buttons=1)
        self.mouse("mouseReleased", *points[-1], buttons=0)

    def click(self, x: float, y: float) -> None:
        self.mouse("mousePressed", x, y, buttons=1)
        self.mouse("mouseReleased", x, y, buttons=0)


@contextmanager
def chromium_page(profile: Path, url: str) -> Iterator[Page]:
    """A headless Chromium showing `url`, with its DevTools socket open; closed afterwards."""
    import websocket

    command = [
        chromium_binary(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--remote-debugging-port=0",
        "--remote-allow-origins=*",
        f"--user-data-dir={profile}",
        "--window-size=1200,900",
        url,
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    socket = None
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.is_file() and port_file.read_text().strip()):
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("Chromium did not open its DevTools port")
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        while True:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
                targets = [t for t in json.load(r) if t.get("type") == "page"]
            if targets or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        socket = websocket.create_connection(
            targets[0]["webSocketDebuggerUrl"], timeout=60, suppress_origin=True
        )
        yield Page(socket)
    finally:
        if socket is not None:
            socket.close()
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
