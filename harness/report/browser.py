"""Open a report page in headless Chromium and measure what a reader gets: console errors, horizontal
scroll, images that failed to load, whether the verdict is visible without scrolling; and screenshots.

Driven over the DevTools protocol (a websocket, through aiohttp) so the checks run JavaScript in the
page itself. The browser gets its own profile folder; both are gone when :func:`inspect_page` returns,
whatever happened.

    check = inspect_page(Path("reports/<run>/soak.html"))
    assert check.scroll_width <= 1280 and not check.console_errors
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

#: Debian installs it as ``chromium``; other systems name it differently.
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)
START_TIMEOUT = 30.0
LOAD_TIMEOUT = 30.0
_LISTENING = re.compile(r"DevTools listening on (ws://\S+)")

#: What the page is asked, in its own JavaScript.
PROBE = """(() => {
  const v = document.getElementById('verdict');
  const r = v ? v.getBoundingClientRect() : null;
  return {
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
    innerHeight: window.innerHeight,
    images: Array.from(document.images).map(i => ({alt: i.alt, complete: i.complete, naturalWidth: i.naturalWidth})),
    verdict: r ? {top: r.top, bottom: r.bottom, state: v.dataset.state || '', text: v.innerText} : null,
    wide: Array.from(document.querySelectorAll('body *')).filter(e => e.getBoundingClientRect().right >
      document.documentElement.clientWidth + 1 && !e.closest('.scroll')).slice(0, 5).map(e => e.tagName),
  };
})()"""


class BrowserError(RuntimeError):
    """Chromium did not start, or the page did not load, in time; the message says what was awaited."""


@dataclass
class PageCheck:
    url: str
    width: int
    height: int
    scroll_width: int = 0
    inner_height: int = 0
    images: list[dict[str, Any]] = field(default_factory=list)
    verdict: dict[str, Any] | None = None
    console_errors: list[str] = field(default_factory=list)
    wide_elements: list[str] = field(default_factory=list)
    screenshot: bytes | None = None

    @property
    def broken_images(self) -> list[dict[str, Any]]:
        return [i for i in self.images if not i["complete"] or i["naturalWidth"] <= 0]

    @property
    def verdict_visible(self) -> bool:
        return self.verdict is not None and self.verdict["top"] >= 0 and self.verdict["bottom"] <= self.inner_height

    def problems(self) -> list[str]:
        """What a reader would trip over, one line each; empty when the page is fine."""
        out = [f"console error: {e}" for e in self.console_errors]
        if self.scroll_width > self.width:
            out.append(f"scrolls horizontally: scrollWidth {self.scroll_width} > {self.width} "
                       f"(wide: {', '.join(self.wide_elements) or '?'})")  # fmt: skip
        out += [f"image not loaded: {i['alt']!r}" for i in self.broken_images]
        if self.verdict is None:
            out.append("no #verdict element")
        elif not self.verdict_visible:
            out.append(f"verdict not visible without scrolling: bottom {self.verdict['bottom']:.0f} px > "
                       f"{self.inner_height} px")  # fmt: skip
        return out


def find_chromium() -> str | None:
    """The Chromium executable on PATH, or None."""
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


class _Session:
    """One DevTools websocket; commands by id, events kept for the caller."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            fut = self.pending.pop(data["id"], None) if "id" in data else None
            if fut is not None and not fut.done():
                fut.set_result(data)
            elif "method" in data:
                self.events.put_nowait(data)

    async def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None,
                   timeout: float = LOAD_TIMEOUT) -> dict[str, Any]:  # fmt: skip
        n = next(self.ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[n] = fut
        msg: dict[str, Any] = {"id": n, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        await self.ws.send_str(json.dumps(msg))
        try:
            reply = await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise BrowserError(f"DevTools {method}: no reply within {timeout:g} s") from None
        if "error" in reply:
            raise BrowserError(f"DevTools {method}: {reply['error'].get('message')}")
        result: dict[str, Any] = reply.get("result", {})
        return result


async def _start(executable: str, profile: Path, width: int, height: int) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        executable, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}", "about:blank",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    last = ""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT
    while True:
        left = deadline - loop.time()
        if left <= 0:
            raise BrowserError(f"{executable} did not print its DevTools address within {START_TIMEOUT:g} s; "
                               f"last output: {last or '(none)'}")  # fmt: skip
        try:
            raw = await asyncio.wait_for(proc.stderr.readline(), left)
        except TimeoutError:
            continue
        if not raw:
            raise BrowserError(f"{executable} exited (status {await proc.wait()}) before listening; last output: "
                               f"{last or '(none)'}")  # fmt: skip
        last = raw.decode(errors="replace").strip()
        m = _LISTENING.search(last)
        if m:
            return proc, m.group(1)


async def _drain(stream: asyncio.StreamReader | None) -> None:
    while stream is not None and await stream.readline():
        pass


async def _inspect(executable: str, path: Path, width: int, height: int, shot_height: int | None) -> PageCheck:
    profile = Path(tempfile.mkdtemp(prefix="harness-chromium-"))
    proc: asyncio.subprocess.Process | None = None
    drain: asyncio.Task[None] | None = None
    url = path.resolve().as_uri()
    check = PageCheck(url, width, height)
    try:
        proc, ws_url = await _start(executable, profile, width, height)
        drain = asyncio.create_task(_drain(proc.stderr))
        async with aiohttp.ClientSession() as http, http.ws_connect(ws_url, max_msg_size=0) as ws:
            s = _Session(ws)
            target = await s.send("Target.createTarget", {"url": "about:blank"})
            sid = (await s.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}))[
                "sessionId"
            ]
            for domain in ("Page", "Runtime", "Log"):
                await s.send(f"{domain}.enable", session=sid)
            await s.send("Emulation.setDeviceMetricsOverride",
                         {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, sid)  # fmt: skip
            await s.send("Page.navigate", {"url": url}, sid)
            await _until_loaded(s, check)
            probe = await s.send("Runtime.evaluate", {"expression": PROBE, "returnByValue": True}, sid)
            value = probe.get("result", {}).get("value") or {}
            check.scroll_width = int(value.get("scrollWidth", 0))
            check.inner_height = int(value.get("innerHeight", 0))
            check.images = list(value.get("images", []))
            check.verdict = value.get("verdict")
            check.wide_elements = list(value.get("wide", []))
            _collect_errors(s, check)
            if shot_height:
                shot = await s.send("Page.captureScreenshot", {
                    "format": "png", "captureBeyondViewport": True,
                    "clip": {"x": 0, "y": 0, "width": width, "height": shot_height, "scale": 1},
                }, sid)  # fmt: skip
                check.screenshot = base64.b64decode(shot["data"])
            s.reader.cancel()
        return check
    finally:
        if proc is not None and proc.returncode is None:
            proc.kill()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 10)
        if drain is not None:
            drain.cancel()
        shutil.rmtree(profile, ignore_errors=True)


async def _until_loaded(s: _Session, check: PageCheck) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + LOAD_TIMEOUT
    seen = ""
    while True:
        left = deadline - loop.time()
        if left <= 0:
            raise BrowserError(f"{check.url}: no Page.loadEventFired within {LOAD_TIMEOUT:g} s; last event: "
                               f"{seen or '(none)'}")  # fmt: skip
        try:
            event = await asyncio.wait_for(s.events.get(), left)
        except TimeoutError:
            continue
        seen = event["method"]
        _note_error(event, check)
        if seen == "Page.loadEventFired":
            return


def _collect_errors(s: _Session, check: PageCheck) -> None:
    while not s.events.empty():
        _note_error(s.events.get_nowait(), check)


def _note_error(event: dict[str, Any], check: PageCheck) -> None:
    method, p = event.get("method"), event.get("params", {})
    if method == "Runtime.exceptionThrown":
        details = p.get("exceptionDetails", {})
        check.console_errors.append(str(details.get("exception", {}).get("description") or details.get("text")))
    elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
        check.console_errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
    elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
        check.console_errors.append(str(p["entry"].get("text")))


def inspect_page(path: Path, *, width: int = 1280, height: int = 800, screenshot_height: int | None = None,
                 executable: str | None = None) -> PageCheck:  # fmt: skip
    """Load ``path`` in headless Chromium at ``width`` x ``height`` and measure it (see :class:`PageCheck`);
    with ``screenshot_height``, also a PNG of the page's top that many pixels tall."""
    exe = executable or find_chromium()
    if exe is None:
        raise BrowserError(f"no Chromium found on PATH (tried {', '.join(CANDIDATES)}); install Debian's chromium")
    return asyncio.run(_inspect(exe, path, width, height, screenshot_height))
