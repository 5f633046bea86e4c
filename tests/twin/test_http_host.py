"""The board's HTTP client (harness.twin.http_host) against the artifact server and a raw socket server."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from harness.services.artifact_faults import TruncateBody, Unavailable
from harness.services.artifacts import ArtifactServer
from harness.twin.events import Event
from harness.twin.http_events import HttpCancel, HttpChunk, HttpDone, HttpFailed, HttpGet, HttpResponse
from harness.twin.http_host import HttpLink

DATA = bytes(range(256)) * 400  # 102400 bytes


async def fetch(get: HttpGet, *, cancel_after_first_chunk: bool = False) -> list[Event]:
    """Run one request to its end; the events the core would have seen."""
    events: list[Event] = []
    finished = asyncio.Event()
    link: HttpLink

    def feed(event: Event) -> None:
        events.append(event)
        if isinstance(event, HttpDone | HttpFailed):
            finished.set()
        if cancel_after_first_chunk and isinstance(event, HttpChunk):
            link.execute(HttpCancel(get.ref))
            finished.set()

    link = HttpLink(asyncio.get_running_loop(), feed)
    link.execute(get)
    await asyncio.wait_for(finished.wait(), 10)
    await asyncio.sleep(0.05)  # anything reported after the end would show up now
    link.reset()
    return events


def body(events: list[Event]) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, HttpChunk))


def test_full_range_if_range_and_416_from_the_artifact_server() -> None:
    with ArtifactServer() as server:
        url = server.publish("fw.img", DATA)
        etag = server.artifact("fw.img").etag  # type: ignore[union-attr]
        full = asyncio.run(fetch(HttpGet(1, url)))
        assert full[0] == HttpResponse(1, 200, 0, len(DATA), etag, None)
        assert body(full) == DATA and isinstance(full[-1], HttpDone)
        part = asyncio.run(fetch(HttpGet(2, url, 40960, None, etag)))
        assert part[0] == HttpResponse(2, 206, 40960, len(DATA), etag, None)
        assert body(part) == DATA[40960:]
        stale = asyncio.run(fetch(HttpGet(3, url, 40960, None, '"0000"')))
        assert isinstance(stale[0], HttpResponse) and stale[0].status == 200 and body(stale) == DATA
        past = asyncio.run(fetch(HttpGet(4, url, len(DATA) + 10)))
        assert isinstance(past[0], HttpResponse) and (past[0].status, past[0].total) == (416, len(DATA))
        assert body(past) == b"" and isinstance(past[-1], HttpDone)


def test_faults_become_failed_events_and_retry_after() -> None:
    with ArtifactServer() as server:
        url = server.publish("fw.img", DATA)
        with server.fault(TruncateBody(after=30000), times=1):
            cut = asyncio.run(fetch(HttpGet(1, url)))
        assert isinstance(cut[-1], HttpFailed) and "cut short at 30000 of 102400" in cut[-1].reason
        assert len(body(cut)) == 30000
        with server.fault(Unavailable(retry_after=7), times=1):
            busy = asyncio.run(fetch(HttpGet(2, url)))
        assert isinstance(busy[0], HttpResponse) and (busy[0].status, busy[0].retry_after) == (503, 7.0)
        assert body(busy) == b"" and isinstance(busy[-1], HttpDone)
        missing = asyncio.run(fetch(HttpGet(3, server.url("nope.img"))))
        assert isinstance(missing[0], HttpResponse) and missing[0].status == 404


def test_a_cancelled_request_reports_nothing_more() -> None:
    with ArtifactServer() as server:
        url = server.publish("fw.img", DATA)
        events = asyncio.run(fetch(HttpGet(1, url), cancel_after_first_chunk=True))
        assert [type(e) for e in events] == [HttpResponse, HttpChunk]


async def raw_server(reply: bytes, handle: Callable[[int], Awaitable[None]]) -> None:
    """Answer every request with ``reply`` (then close) while ``handle(port)`` runs."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(reply)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    async with server:
        await handle(server.sockets[0].getsockname()[1])


def test_malformed_responses_and_refused_connections_fail_with_one_line() -> None:
    cases = [
        (b"HTTP/1.1 200 OK\r\nETag: \"x\"\r\n\r\nbody", "200 response without Content-Length"),
        (b"SSH-2.0-OpenSSH\r\n\r\n", "not an HTTP/1.x status line"),
        (b"HTTP/1.1 206 Partial\r\nContent-Length: 4\r\n\r\nbody", "206 without a Content-Range"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: lots\r\n\r\n", "content-length: expected a byte count"),
    ]
    for reply, reason in cases:
        got: list[Event] = []

        async def run(port: int, got: list[Event] = got) -> None:
            got.extend(await fetch(HttpGet(1, f"http://127.0.0.1:{port}/fw.img")))

        asyncio.run(raw_server(reply, run))
        assert isinstance(got[-1], HttpFailed) and reason in got[-1].reason, (reply, got)

    async def refused() -> list[Event]:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        return await fetch(HttpGet(1, f"http://127.0.0.1:{port}/fw.img"))

    events = asyncio.run(refused())
    assert len(events) == 1 and isinstance(events[0], HttpFailed)
