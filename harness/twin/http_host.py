"""The board's HTTP/1.1 client for OTA downloads: asyncio streams on the board process's loop.

Executes :class:`~harness.twin.http_events.HttpGet` (one connection per request, ``Connection:
close``, ``Range: bytes=a-[b]`` and ``If-Range`` when asked) and :class:`HttpCancel`, and turns what
the server says into events for the core: one :class:`HttpResponse` (status, ``Content-Range`` start
and total, ``ETag``, ``Retry-After`` in seconds), the body as :class:`HttpChunk` events of at most
:data:`CHUNK` bytes, then :class:`HttpDone` once ``Content-Length`` bytes arrived -- or
:class:`HttpFailed` (connect error, timeout, malformed response, body cut short). Bodies of statuses
other than 200/206 are read and dropped. No redirects, no chunked transfer coding (the artifact server
always sends ``Content-Length``); a response without it is a failure.

Events of a cancelled request, or of a previous boot (after :meth:`HttpLink.reset`), never reach the core.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from urllib.parse import urlsplit

from harness.twin.events import Event
from harness.twin.http_events import HttpCancel, HttpChunk, HttpDone, HttpFailed, HttpGet, HttpResponse

CHUNK = 16 * 1024
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 10.0  # the longest silence on a connection before the request fails
MAX_HEADER_LINE = 8192
MAX_HEADERS = 100
_CONTENT_RANGE = re.compile(r"bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)", re.IGNORECASE)


class HttpError(Exception):
    """The response is not what an OTA download can use (one line)."""


class HttpLink:
    """The requests in flight of one board process."""

    def __init__(self, loop: asyncio.AbstractEventLoop, feed: Callable[[Event], None]) -> None:
        self.loop = loop
        self.feed = feed
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.epoch = 0
        self.counts = dict.fromkeys(("requests", "bytes", "failures", "cancelled"), 0)

    def execute(self, action: HttpGet | HttpCancel) -> None:
        if isinstance(action, HttpGet):
            self.counts["requests"] += 1
            self.tasks[action.ref] = self.loop.create_task(self._get(action, self.epoch))
        else:
            task = self.tasks.pop(action.ref, None)
            if task is not None:
                self.counts["cancelled"] += 1
                task.cancel()

    def reset(self) -> None:
        """A new core takes over: abandon every request; nothing of theirs is reported any more."""
        self.epoch += 1
        tasks, self.tasks = self.tasks, {}
        for task in tasks.values():
            task.cancel()

    def _live(self, ref: int, epoch: int) -> bool:
        return epoch == self.epoch and ref in self.tasks

    def _report(self, ref: int, epoch: int, event: Event) -> None:
        if self._live(ref, epoch):
            self.feed(event)

    async def _get(self, get: HttpGet, epoch: int) -> None:
        writer: asyncio.StreamWriter | None = None
        try:
            parts = urlsplit(get.url)
            if parts.scheme != "http" or not parts.hostname:
                raise HttpError(f"only http:// URLs are supported (got {get.url!r})")
            host, port = parts.hostname, parts.port or 80
            async with asyncio.timeout(CONNECT_TIMEOUT):
                reader, writer = await asyncio.open_connection(host, port)
            writer.write(_request(get, parts.path or "/", parts.query, parts.netloc))
            await writer.drain()
            status, headers = await _read_head(reader)
            length = _int_header(headers, "content-length")
            start, total = 0, length if status == 200 else None
            match = _CONTENT_RANGE.fullmatch(headers.get("content-range", "").strip())
            if match is not None:
                start = int(match.group(1) or 0)
                total = int(match.group(3)) if match.group(3) != "*" else None
            if status == 206 and match is None:
                raise HttpError("206 without a Content-Range")
            retry = headers.get("retry-after", "").strip()
            self._report(get.ref, epoch, HttpResponse(
                get.ref, status, start, total, headers.get("etag"), float(retry) if retry.isdigit() else None,
            ))  # fmt: skip
            if length is None:
                raise HttpError(f"{status} response without Content-Length")
            await self._body(get.ref, epoch, reader, length, forward=status in (200, 206))
            self._report(get.ref, epoch, HttpDone(get.ref))
        except (OSError, TimeoutError, HttpError, ValueError, asyncio.IncompleteReadError) as exc:
            self.counts["failures"] += 1
            self._report(get.ref, epoch, HttpFailed(get.ref, _describe(exc)))
        finally:
            if self.tasks.get(get.ref) is asyncio.current_task():
                del self.tasks[get.ref]
            if writer is not None:
                writer.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(writer.wait_closed(), 1.0)

    async def _body(self, ref: int, epoch: int, reader: asyncio.StreamReader, length: int, *, forward: bool) -> None:
        received = 0
        while received < length:
            async with asyncio.timeout(READ_TIMEOUT):
                data = await reader.read(min(CHUNK, length - received))
            if not data:
                raise HttpError(f"body cut short at {received} of {length} bytes")
            received += len(data)
            self.counts["bytes"] += len(data)
            if forward:
                self._report(ref, epoch, HttpChunk(ref, data))
            if not self._live(ref, epoch):
                return


def _request(get: HttpGet, path: str, query: str, netloc: str) -> bytes:
    target = path + ("?" + query if query else "")
    lines = [f"GET {target} HTTP/1.1", f"Host: {netloc}", "Connection: close", "User-Agent: twin-ota/1"]
    if get.range_start > 0 or get.range_end is not None:
        end = "" if get.range_end is None else str(get.range_end)
        lines.append(f"Range: bytes={get.range_start}-{end}")
        if get.if_range is not None:
            lines.append(f"If-Range: {get.if_range}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    async with asyncio.timeout(READ_TIMEOUT):
        status_line = await reader.readuntil(b"\r\n")
        parts = status_line.decode("latin-1").split(None, 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise HttpError(f"not an HTTP/1.x status line: {status_line[:80]!r}")
        headers: dict[str, str] = {}
        for _ in range(MAX_HEADERS):
            line = await reader.readuntil(b"\r\n")
            if len(line) > MAX_HEADER_LINE:
                raise HttpError("header line too long")
            if line == b"\r\n":
                return int(parts[1]), headers
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep:
                raise HttpError(f"malformed header line {line[:80]!r}")
            headers[name.strip().lower()] = value.strip()
        raise HttpError(f"more than {MAX_HEADERS} header lines")


def _int_header(headers: dict[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    if not value.strip().isdigit():
        raise HttpError(f"{name}: expected a byte count (got {value!r})")
    return int(value)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncio.IncompleteReadError):
        return f"connection closed mid-response ({len(exc.partial)} bytes of a line)"
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]
