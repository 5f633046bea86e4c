"""The OTA artifact server: a real HTTP server (aiohttp) serving a folder of images.

It runs its own event loop in a background thread, so a synchronous test drives it directly::

    with ArtifactServer(tmp_path / "artifacts", journal=journal) as server:
        url = server.publish("fw-2.0.0.img", image.data)
        server.set_fault(TruncateBody(after=4096), times=1)   # the next download is cut short
        ...

``GET`` and ``HEAD`` with a single ``Range`` (206 + ``Content-Range``; 416 when unsatisfiable), a
strong ``ETag`` from the content hash, ``If-Range``, ``Content-Length``. Every request is journaled
as ``artifact.request`` (method, path, range, status, bytes, duration, client); every fault switched
on or off, and every :meth:`~ArtifactServer.replace`, as an ``injection`` with action
``artifact-fault``. Faults are in :mod:`harness.services.artifact_faults`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from harness.errors import ConfigError, RigError
from harness.ota.slot import check_fits
from harness.run.journal import Journal
from harness.run.runfolder import make_scratch
from harness.services.artifact_faults import Decision, Fault, FaultPlan, describe
from harness.services.artifact_response import Artifact, Reply, decide_response

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*(/[A-Za-z0-9_][A-Za-z0-9._-]*)*")
_CHUNK = 16 * 1024


class ArtifactServerError(RigError):
    """The artifact server could not start or stop."""


class ArtifactServer:
    """Serves the files of ``folder`` (a temporary folder if ``None``) over HTTP, with injectable faults."""

    def __init__(
        self,
        folder: str | os.PathLike[str] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        journal: Journal | None = None,
        advertise: str | None = None,
        start_timeout: float = 10.0,
        shutdown_timeout: float = 1.0,
        slot_size: int | None = None,
    ) -> None:
        self._own_dir: Path | None = None
        if folder is None:
            # A scratch folder: removed at close, and swept by the next run if this process is killed.
            self._own_dir = make_scratch("artifacts")
            folder = self._own_dir
        self.folder = Path(folder)
        self.host = host
        self._want_port = port
        self.port = 0
        self._advertise = advertise
        self._journal = journal
        self._start_timeout = start_timeout
        self._shutdown_timeout = shutdown_timeout
        self.slot_size = slot_size  # publish() refuses an image larger than the devices' slot (None: any size)
        self.faults = FaultPlan()
        self._cache: dict[str, tuple[tuple[int, int, int], Artifact]] = {}
        self._cache_lock = threading.Lock()
        self._stats_lock = threading.Condition()
        self._requests = 0
        self._in_flight = 0
        self._last = "<no request yet>"
        self._bytes = 0
        self._resumed = 0
        self._statuses: Counter[int] = Counter()
        self._faults_fired: Counter[str] = Counter()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> ArtifactServer:
        """Listen (on ``host:port``; port 0 picks a free one) and serve from a background thread."""
        if self._thread is not None:
            raise ArtifactServerError(f"artifact server already running at {self.base_url}")
        self.folder.mkdir(parents=True, exist_ok=True)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="artifact-server", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        future = asyncio.run_coroutine_threadsafe(self._serve(), loop)
        try:
            self.port = future.result(self._start_timeout)
        except Exception as exc:
            future.cancel()
            self._halt_loop()
            if isinstance(exc, TimeoutError):
                raise ArtifactServerError(
                    f"artifact server: not listening on {self.host}:{self._want_port} after {self._start_timeout:g}s"
                ) from None
            raise ArtifactServerError(
                f"artifact server: cannot listen on {self.host}:{self._want_port} ({exc})"
            ) from None
        return self

    async def _serve(self) -> int:
        app = web.Application()
        app.router.add_route("GET", "/{name:.+}", self._handle)
        app.router.add_route("HEAD", "/{name:.+}", self._handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=self._shutdown_timeout)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._want_port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        addresses = runner.addresses
        return int(addresses[0][1]) if addresses else self._want_port

    def stop(self, timeout: float = 10.0) -> None:
        """Close the listening socket and every connection, end the thread; idempotent."""
        loop, runner = self._loop, self._runner
        if loop is None:
            self._cleanup_dir()
            return
        if runner is not None:
            future = asyncio.run_coroutine_threadsafe(runner.cleanup(), loop)
            try:
                future.result(timeout)
            except TimeoutError:
                future.cancel()
                self._halt_loop()
                raise ArtifactServerError(
                    f"artifact server at {self.base_url}: still stopping after {timeout:g}s, "
                    f"{self._in_flight} requests in flight (last finished: {self._last})"
                ) from None
            finally:
                self._runner = None
            with contextlib.suppress(TimeoutError):  # the threads that read files for requests
                asyncio.run_coroutine_threadsafe(loop.shutdown_default_executor(), loop).result(timeout)
        self._halt_loop()
        self._cleanup_dir()

    def _halt_loop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        if not thread.is_alive():
            loop.close()
        self._loop = self._thread = None

    def _cleanup_dir(self) -> None:
        if self._own_dir is not None:
            shutil.rmtree(self._own_dir, ignore_errors=True)
            self._own_dir = None

    def __enter__(self) -> ArtifactServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- artifacts ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        host = self._advertise or (self.host if self.host not in ("0.0.0.0", "::", "") else "127.0.0.1")
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def url(self, name: str) -> str:
        return f"{self.base_url}/{_check_name(name)}"

    def publish(self, name: str, data: bytes) -> str:
        """Write ``data`` as artifact ``name`` (atomically: a request sees old or new, never half); its URL.

        With a ``slot_size``, an image larger than the slot is refused (ConfigError naming both sizes):
        no device it is served to could install it.
        """
        check_fits(len(data), self.slot_size, where=f"artifact {name}")
        path = self.folder / _check_name(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        if self._journal is not None:  # the image by reference: a run folder need not keep its bytes
            self._journal.record("artifact.published", name=name, size=len(data),
                                 sha256=hashlib.sha256(data).hexdigest())  # fmt: skip
        return self.url(name)

    def replace(self, name: str, data: bytes) -> str:
        """Change an artifact's content (a new ETag), as a re-published image mid-download; journaled."""
        old = self.artifact(name)
        url = self.publish(name, data)
        new = self.artifact(name)
        self._inject(
            {
                "fault": "replace",
                "name": name,
                "old_etag": old.etag if old else None,
                "new_etag": new.etag if new else None,
            }
        )
        return url

    def names(self) -> list[str]:
        files = (p for p in self.folder.rglob("*") if p.is_file() and not p.name.startswith("."))
        return sorted(p.relative_to(self.folder).as_posix() for p in files)

    def artifact(self, name: str) -> Artifact | None:
        """The artifact as it would be served now, or ``None`` if there is no such file."""
        if not _NAME.fullmatch(name) or any(part in (".", "..") for part in name.split("/")):
            return None
        path = self.folder / name
        try:
            st = path.stat()
        except OSError:
            return None
        if not path.is_file():
            return None
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        with self._cache_lock:
            cached = self._cache.get(name)
            if cached is not None and cached[0] == key:
                return cached[1]
        data = path.read_bytes()
        art = Artifact.of(data)
        with self._cache_lock:
            self._cache[name] = (key, art)
        return art

    # -- faults ------------------------------------------------------------------------------

    def set_fault(self, fault: Fault, *, names: list[str] | None = None, times: int | None = None) -> object:
        """Switch a fault on for ``names`` (default: every artifact), ``times`` firings (default: until cleared).

        Returns a handle for :meth:`clear_fault`.
        """
        handle = self.faults.add(fault, names=frozenset(names) if names else None, times=times)
        self._inject({**describe(fault), "names": names, "times": times})
        return handle

    def clear_fault(self, handle: object) -> None:
        """Switch off the one fault :meth:`set_fault` returned ``handle`` for."""
        if self.faults.remove(handle):
            fault = getattr(handle, "fault", None)
            self._inject({"fault": "clear", "cleared": fault.action if fault is not None else None})

    def clear_faults(self) -> None:
        """Switch every fault off."""
        if self.faults.clear():
            self._inject({"fault": "clear"})

    @contextlib.contextmanager
    def fault(
        self, fault: Fault, *, names: list[str] | None = None, times: int | None = None
    ) -> Iterator[ArtifactServer]:
        """``with server.fault(ServerError(every=2)): ...``: this fault holds inside the block only."""
        handle = self.set_fault(fault, names=names, times=times)
        try:
            yield self
        finally:
            self.clear_fault(handle)

    def _inject(self, params: dict[str, Any]) -> None:
        if self._journal is not None:
            self._journal.record("injection", action="artifact-fault", params=params)

    # -- statistics ------------------------------------------------------------------------

    def statistics(self) -> dict[str, Any]:
        """A snapshot: requests, bytes served, per-status counts, resumed (Range) requests, faults fired."""
        with self._stats_lock:
            return {
                "url": self.base_url,
                "requests": self._requests,
                "in_flight": self._in_flight,
                "bytes_served": self._bytes,
                "by_status": dict(sorted(self._statuses.items())),
                "resumed": self._resumed,
                "faults_fired": dict(self._faults_fired),
                "active_faults": self.faults.active(),
            }

    def wait_requests(self, count: int, *, timeout: float = 5.0) -> dict[str, Any]:
        """Wait until ``count`` requests have *finished* (answered and journaled); the statistics then.

        A client can hold the last body byte before the server has logged the request; wait on this
        before reading the journal or the statistics.
        """
        return self._wait(lambda: self._requests >= count, f"{count} finished requests", timeout)

    def wait_in_flight(self, count: int = 1, *, timeout: float = 5.0) -> dict[str, Any]:
        """Wait until ``count`` requests are being answered at once (e.g. a slow download under way)."""
        return self._wait(lambda: self._in_flight >= count, f"{count} requests in flight", timeout)

    def _wait(self, done: Callable[[], bool], what: str, timeout: float) -> dict[str, Any]:
        with self._stats_lock:
            if not self._stats_lock.wait_for(done, timeout):
                raise TimeoutError(
                    f"artifact server at {self.base_url}: waited {timeout:g}s for {what}; saw {self._requests} "
                    f"finished, {self._in_flight} in flight (last: {self._last})"
                )
        return self.statistics()

    # -- serving ---------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        name = request.match_info["name"]
        range_header = request.headers.get("Range")
        outcome = _Outcome()
        with self._stats_lock:
            self._in_flight += 1
            self._stats_lock.notify_all()
        try:
            return await self._respond(request, name, range_header, outcome)
        finally:
            self._account(request, range_header, outcome, time.monotonic() - started)

    async def _respond(
        self, request: web.Request, name: str, range_header: str | None, out: _Outcome
    ) -> web.StreamResponse:
        art = await asyncio.get_running_loop().run_in_executor(None, self.artifact, name)
        decision = self.faults.decide(name, has_body=request.method != "HEAD") if art is not None else None
        reply = decide_response(art, name, method=request.method, range_header=range_header,
                                if_range=request.headers.get("If-Range"),
                                decision=decision if decision is not None else _NO_FAULT)  # fmt: skip
        out.status = reply.status
        out.fired = list(reply.fired) or None
        if reply.status >= 400 and reply.status != 416:
            return web.Response(status=reply.status, text=reply.text, headers=reply.headers)
        headers = dict(reply.headers)
        length = int(headers.pop("Content-Length", "0"))
        resp = web.StreamResponse(status=reply.status, headers=headers)
        resp.content_length = length
        await resp.prepare(request)
        if request.method == "HEAD" or reply.status == 416:
            return resp
        await self._send(request, resp, reply, out)
        return resp

    async def _send(self, request: web.Request, resp: web.StreamResponse, reply: Reply, out: _Outcome) -> None:
        body = reply.body[: reply.send]
        try:
            if reply.rate is None:
                await resp.write(body)
                out.sent = len(body)
            else:
                await self._send_paced(resp, body, reply.rate, out)
        except ConnectionError:  # the client went away; aiohttp drops the connection quietly
            out.aborted = True
            return
        except asyncio.CancelledError:  # the server is stopping
            out.aborted = True
            raise
        if reply.truncated:
            out.aborted = True
            transport = request.transport
            if transport is not None:
                transport.close()  # flushes what was written, then closes: the client sees a short body

    async def _send_paced(self, resp: web.StreamResponse, body: memoryview, rate: float, out: _Outcome) -> None:
        chunk = max(1, min(_CHUNK, int(rate / 20)))  # about 20 writes a second
        started = time.monotonic()
        for offset in range(0, len(body), chunk):
            await resp.write(body[offset : offset + chunk])
            out.sent += len(body[offset : offset + chunk])
            delay = started + out.sent / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)

    def _account(self, request: web.Request, range_header: str | None, out: _Outcome, duration: float) -> None:
        """Journal the request, then count it and wake waiters: finished means journaled."""
        if self._journal is not None:
            peer = request.transport.get_extra_info("peername") if request.transport is not None else None
            client = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else (request.remote or "")
            fields: dict[str, Any] = {
                "method": request.method,
                "path": request.path,
                "range": range_header,
                "status": out.status,
                "bytes": out.sent,
                "duration": round(duration, 6),
                "client": client,
            }
            if out.fired:
                fields["faults"] = out.fired
            if out.aborted:
                fields["aborted"] = True
            self._journal.record("artifact.request", **fields)
        with self._stats_lock:
            self._in_flight -= 1
            self._requests += 1
            self._last = f"{request.method} {request.path} {out.status}"
            self._bytes += out.sent
            self._statuses[out.status] += 1
            if range_header is not None:
                self._resumed += 1
            self._faults_fired.update(out.fired or ())
            self._stats_lock.notify_all()


_NO_FAULT = Decision()


@dataclass
class _Outcome:
    status: int = 0
    sent: int = 0
    aborted: bool = False
    fired: list[str] | None = None


def _check_name(name: str) -> str:
    if not _NAME.fullmatch(name) or any(part in (".", "..") for part in name.split("/")):
        raise ConfigError(
            f"artifact name: expected letters, digits, '.', '_', '-' in '/'-separated parts, e.g. 'fw-2.0.0.img' "
            f"(got {name!r})"
        )
    return name
