"""The TCP side of the impairment point: one listening socket per service, two pipes per connection.

Each accepted device connection gets its own upstream connection. Bytes flow through a
:class:`_Pipe` per direction. With nothing configured the pipe writes straight through (the fast
path); otherwise each chunk is sliced to ``segment`` bytes, given a release time by the
:class:`StreamModel` (delay, jitter, token-bucket rate; byte order always kept) and written when
that time comes. ``stall`` holds data while keeping the connection open; ``reset`` aborts with RST;
``close_after`` ends a connection once a byte budget has passed. Back-pressure is real: a pipe
that holds too much pauses reading from its source, so the sender sees a full TCP window.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections import deque
from collections.abc import Callable

from harness.netmodel.link import Address, LinkState
from harness.netmodel.model import StreamModel

HIGH_WATER = 256 * 1024  # bytes held in a pipe before its source is paused
LOW_WATER = 64 * 1024
CONNECT_TIMEOUT = 10.0
_LINGER_RST = struct.pack("ii", 1, 0)


def _rst(transport: asyncio.Transport | None) -> None:
    """Abort ``transport`` so the peer sees a reset (SO_LINGER 0), not a FIN."""
    if transport is None or transport.is_closing():
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
    transport.abort()


def _slices(data: bytes, size: int | None) -> list[bytes]:
    """``data`` cut into pieces of at most ``size`` bytes (whole when ``size`` is None)."""
    if not size or len(data) <= size:
        return [data]
    return [data[i : i + size] for i in range(0, len(data), size)]


class _Pipe:
    """One direction of one connection: source transport -> impairment -> destination transport."""

    def __init__(self, conn: _Connection, direction: str) -> None:
        self.conn = conn
        self.state = conn.state
        self.loop = conn.loop
        self.direction = direction
        self.src: asyncio.Transport | None = None
        self.dst: asyncio.Transport | None = None
        self.queue: deque[tuple[float, float, bytes]] = deque()  # (release, arrival, piece)
        self.queued = 0
        self.held: list[bytes] = []
        self.held_total = 0
        self.model: StreamModel | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.eof = False  # the source said it will send no more
        self.eof_sent = False
        self.pauses: set[str] = set()

    # --- flow control -------------------------------------------------------------------
    def pause(self, reason: str) -> None:
        if not self.pauses and self.src is not None and not self.src.is_closing():
            self.src.pause_reading()
        self.pauses.add(reason)

    def resume(self, reason: str) -> None:
        if reason not in self.pauses:
            return
        self.pauses.discard(reason)
        if not self.pauses and self.src is not None and not self.src.is_closing():
            self.src.resume_reading()

    # --- data in ------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        state = self.state
        if state.fast and not self.queue and not self.held:
            self.dst.write(data)  # type: ignore[union-attr]  # dst is set before reading starts
            st = state.stats[self.direction]
            n = len(data)
            st.offered_packets += 1
            st.offered_bytes += n
            st.delivered_packets += 1
            st.delivered_bytes += n
            return
        self._feed_impaired(data)

    def _feed_impaired(self, data: bytes) -> None:
        state = self.state
        st = state.stats[self.direction]
        st.offered(len(data))
        data = self.conn.spend(self.direction, data)
        if not data:
            self._maybe_finish()
            return
        if state.stalled:
            self.held.append(data)
            self.held_total += len(data)
            st.held_bytes += len(data)
            if self.held_total > HIGH_WATER:
                self.pause("hold")
            return
        self._enqueue(self.loop.time(), data)
        self._maybe_finish()

    def feed_eof(self) -> None:
        self.eof = True
        self._maybe_finish()

    def _current_model(self) -> StreamModel:
        params = self.state.params[self.direction]
        model = self.model
        if model is None or model.params is not params:
            new = StreamModel(params, self.state.rngs[self.direction], self.state.bucket(self.direction))
            if model is not None:
                new.continue_from(model)
            self.model = model = new
        return model

    def _enqueue(self, now: float, data: bytes) -> None:
        """Write ``data`` now or queue it; the caller finishes (EOF, cut) once all its data is in."""
        model = self._current_model()
        queue = self.queue
        for piece in _slices(data, model.segment):
            release = model.release_time(now, len(piece))
            if not queue and release <= now:
                self._write(piece, now, now)
            else:
                queue.append((release, now, piece))
                self.queued += len(piece)
        if queue:
            if self.timer is None:
                self.timer = self.loop.call_at(queue[0][0], self._flush)
            if self.queued > HIGH_WATER:
                self.pause("queue")

    # --- data out -----------------------------------------------------------------------
    def _write(self, piece: bytes, arrival: float, now: float) -> None:
        dst = self.dst
        if dst is None or dst.is_closing():
            return
        dst.write(piece)
        self.state.stats[self.direction].delivered(len(piece), now - arrival, now)

    def _flush(self) -> None:
        self.timer = None
        now = self.loop.time()
        queue = self.queue
        while queue and queue[0][0] <= now:
            _release, arrival, piece = queue.popleft()
            self.queued -= len(piece)
            self._write(piece, arrival, now)
        if queue:
            self.timer = self.loop.call_at(queue[0][0], self._flush)
        if self.queued < LOW_WATER:
            self.resume("queue")
        if not queue:
            self._maybe_finish()

    def hold_queue(self) -> None:
        """A stall began: data still queued (in flight) is held too, ahead of anything held later."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if not self.queue:
            return
        pieces = [piece for _release, _arrival, piece in self.queue]
        self.queue.clear()
        self.queued = 0
        self.held[:0] = pieces
        self.held_total += sum(len(p) for p in pieces)
        self.model = None  # the queue's timeline is void; held data gets fresh delays at heal
        self.resume("queue")
        if self.held_total > HIGH_WATER:
            self.pause("hold")

    def release_held(self) -> None:
        """After a stall: send what was held, as if it arrived now (the stall itself is not 'delay').

        The EOF (or close-after cut) that waited for the heal goes out once, after *all* held pieces
        are written or queued: finishing after the first would half-close the destination under the rest.
        """
        if not self.held:
            self._maybe_finish()  # an EOF or a close-after cut may have waited for the heal
            return
        held, self.held, self.held_total = self.held, [], 0
        now = self.loop.time()
        for data in held:
            self._enqueue(now, data)
        self.resume("hold")
        self._maybe_finish()

    def _maybe_finish(self) -> None:
        if self.queue or self.held or self.state.stalled:
            return
        if self.conn.cut:
            self.conn.close()
            return
        if self.eof and not self.eof_sent:
            self.eof_sent = True
            dst = self.dst
            if dst is not None and not dst.is_closing() and dst.can_write_eof():
                try:
                    dst.write_eof()
                except OSError:  # the far side went away meanwhile (ENOTCONN): nothing left to half-close
                    self.conn.close()
                    return
            self.conn.eof_done()

    def drop(self) -> None:
        """Forget everything queued (the connection is going away)."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.queue.clear()
        self.held.clear()
        self.queued = self.held_total = 0


class _End(asyncio.Protocol):
    """One socket of a proxied connection: the device's or the service's."""

    def __init__(self, conn: _Connection, side: str) -> None:
        self.conn = conn
        self.side = side
        self.out = conn.up if side == "device" else conn.down  # pipe fed by this socket
        self.into = conn.down if side == "device" else conn.up  # pipe writing to this socket
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.out.src = transport
        self.into.dst = transport
        if self.side == "device":
            self.conn.device_made(transport)

    def data_received(self, data: bytes) -> None:
        self.out.feed(data)

    def eof_received(self) -> bool:
        self.out.feed_eof()
        return True  # keep the socket half-open: the other direction may still have data

    def pause_writing(self) -> None:
        self.into.pause("peer")

    def resume_writing(self) -> None:
        self.into.resume("peer")

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn.side_lost(self.side, exc)


class _Connection:
    """A device connection and its upstream twin."""

    def __init__(self, proxy: TcpProxy) -> None:
        self.proxy = proxy
        self.state = proxy.state
        self.loop = proxy.loop
        self.up = _Pipe(self, "up")
        self.down = _Pipe(self, "down")
        self.device: asyncio.Transport | None = None
        self.service: asyncio.Transport | None = None
        self.budget: int | None = None
        self.budget_directions: tuple[str, ...] = ()
        self.cut = False
        self.closed = False
        self.counted = False  # included in the proxy's count of established connections
        self._eofs = 0
        rule = self.state.close_after
        if rule is not None:
            self.set_budget(rule.nbytes, rule.directions)

    def set_budget(self, nbytes: int | None, directions: tuple[str, ...] = ()) -> None:
        self.budget = nbytes
        self.budget_directions = directions

    def spend(self, direction: str, data: bytes) -> bytes:
        """``data`` cut to the close-after budget; marks the connection for closing when spent."""
        if self.cut:
            return b""
        if self.budget is None or direction not in self.budget_directions:
            return data
        if len(data) >= self.budget:
            data = data[: self.budget]
            self.budget = 0
            self.cut = True
        else:
            self.budget -= len(data)
        return data

    def device_made(self, transport: asyncio.Transport) -> None:
        self.device = transport
        if self.state.refusing:
            self.proxy.refused += 1
            self.closed = True
            _rst(transport)
            return
        self.proxy.connections.add(self)
        self.up.pause("connect")
        task = self.loop.create_task(self._connect())
        self.proxy.tasks.add(task)
        task.add_done_callback(self.proxy.tasks.discard)

    async def _connect(self) -> None:
        host, port = self.state.upstream
        try:
            transport, _ = await asyncio.wait_for(
                self.loop.create_connection(lambda: _End(self, "service"), host, port), CONNECT_TIMEOUT
            )
        except (TimeoutError, OSError) as exc:
            self.proxy.upstream_errors.append(f"{host}:{port}: {exc or 'connect timed out'}")
            self.abort()
            return
        self.service = transport
        if self.closed:
            transport.close()
            return
        self.up.resume("connect")
        self.counted = True
        self.proxy.established += 1
        self.proxy.flows_changed()

    def eof_done(self) -> None:
        self._eofs += 1
        if self._eofs >= 2:
            self.close()

    def side_lost(self, side: str, exc: Exception | None) -> None:
        if self.closed:
            return
        if exc is not None:  # the peer reset or the socket failed: pass the reset on
            self.abort()
            return
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.up.drop()
        self.down.drop()
        for transport in (self.device, self.service):
            if transport is not None and not transport.is_closing():
                transport.close()
        self._forget()

    def _forget(self) -> None:
        self.proxy.connections.discard(self)
        if self.counted:
            self.counted = False
            self.proxy.established -= 1
        self.proxy.flows_changed()

    def abort(self) -> None:
        self.closed = True
        self.up.drop()
        self.down.drop()
        _rst(self.device)
        _rst(self.service)
        self._forget()


class TcpProxy:
    """All connections of one TCP service, on the point's event loop."""

    def __init__(self, state: LinkState, loop: asyncio.AbstractEventLoop) -> None:
        self.state = state
        self.loop = loop
        self.connections: set[_Connection] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.refused = 0
        self.accepted = 0
        self.established = 0  # connections with both sockets up (read from other threads)
        self.upstream_errors: list[str] = []
        self.on_flows: Callable[[], None] | None = None  # called when a connection opens or closes
        self._server: asyncio.base_events.Server | None = None

    async def start(self, listen: Address) -> Address:
        def factory() -> _End:
            self.accepted += 1
            return _End(_Connection(self), "device")

        self._server = await self.loop.create_server(factory, listen[0], listen[1], reuse_address=True)
        host, port = self._server.sockets[0].getsockname()[:2]
        self.state.listen = (host, port)
        return (host, port)

    def changed(self) -> None:
        """Parameters, stall or close-after changed: apply to open connections."""
        rule = self.state.close_after
        stalled = self.state.stalled
        for conn in list(self.connections):
            conn.set_budget(rule.nbytes if rule else None, rule.directions if rule else ())
            for pipe in (conn.up, conn.down):
                if stalled:
                    pipe.hold_queue()
                else:
                    pipe.release_held()

    @property
    def open_count(self) -> int:
        """Connections established end to end right now."""
        return self.established

    def flows_changed(self) -> None:
        if self.on_flows is not None:
            self.on_flows()

    def reset(self) -> int:
        """RST every open connection (both the device's and the service's socket)."""
        conns = list(self.connections)
        for conn in conns:
            conn.abort()
        return len(conns)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.abort()
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
