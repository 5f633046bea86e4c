"""The UDP side of the impairment point: per-datagram netem decisions between device and service.

One socket listens for the device. Each device address (host, port) gets its own connected
socket towards the service, so replies find their way back. Every datagram is offered to the
direction's :class:`DatagramModel` (duplicate, loss, corrupt, delay/jitter, reorder, rate) and
each resulting copy is sent when its time comes. A partition or stall drops datagrams (they have
no connection to hold) and counts them apart from configured loss.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
from collections.abc import Callable
from typing import Any, cast

from harness.netmodel.link import Address, LinkState
from harness.netmodel.model import DatagramModel, Delivery

SOCKET_BUFFER = 4 * 1024 * 1024
# SO_RCVBUFFORCE / SO_SNDBUFFORCE (Linux asm-generic values; the socket module does not export them)
_FORCE_OPTIONS = (33, 32) if sys.platform == "linux" else (None, None)


def _enlarge_buffers(transport: asyncio.BaseTransport) -> None:
    """Ask for large socket buffers so bursts queue in the kernel instead of being dropped there.

    Unprivileged, the kernel caps the request at ``net.core.rmem_max``/``wmem_max``; best effort.
    """
    sock = transport.get_extra_info("socket")
    if sock is None:
        return
    forced = _FORCE_OPTIONS
    for force, option in zip(forced, (socket.SO_RCVBUF, socket.SO_SNDBUF), strict=True):
        try:  # beyond rmem_max/wmem_max when privileged (CAP_NET_ADMIN)
            if force is None:
                raise OSError
            sock.setsockopt(socket.SOL_SOCKET, force, SOCKET_BUFFER)
        except OSError:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)


class _Direction:
    """Model and sequence numbers of one direction (shared by every device address)."""

    def __init__(self, state: LinkState, direction: str) -> None:
        self.state = state
        self.direction = direction
        self.model: DatagramModel | None = None
        self.seq = 0

    def current_model(self) -> DatagramModel:
        params = self.state.params[self.direction]
        if self.model is None or self.model.params is not params:
            self.model = DatagramModel(params, self.state.rngs[self.direction])
        return self.model


class _Listener(asyncio.DatagramProtocol):
    def __init__(self, proxy: UdpProxy) -> None:
        self.proxy = proxy

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.proxy.from_device(data, (addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:
        self.proxy.errors += 1


class _Upstream(asyncio.DatagramProtocol):
    """The connected socket towards the service for one device address."""

    def __init__(self, proxy: UdpProxy, device: Address) -> None:
        self.proxy = proxy
        self.device = device
        self.transport: asyncio.DatagramTransport | None = None
        self.waiting: list[tuple[bytes, Delivery, float, int]] = []
        self.last_active = proxy.loop.time()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        waiting, self.waiting = self.waiting, []
        for data, delivery, arrival, seq in waiting:
            self.proxy.send_up(self, data, delivery, arrival, seq)
        if self.proxy.on_flows is not None:
            self.proxy.on_flows()

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.proxy.from_service(data, self.device)

    def error_received(self, exc: Exception) -> None:
        self.proxy.errors += 1  # e.g. ICMP port unreachable: the service is not there right now


class UdpProxy:
    """All datagram flows of one UDP service, on the point's event loop."""

    def __init__(
        self, state: LinkState, loop: asyncio.AbstractEventLoop, idle_timeout: float = 120.0
    ) -> None:
        self.state = state
        self.loop = loop
        self.idle_timeout = idle_timeout  # a device address silent this long loses its upstream socket
        self.errors = 0
        self._listener: asyncio.DatagramTransport | None = None
        self._upstreams: dict[Address, _Upstream] = {}
        self._timers: set[asyncio.TimerHandle] = set()
        self._dirs = {d: _Direction(state, d) for d in ("up", "down")}
        self._tasks: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.TimerHandle | None = None
        self.on_flows: Callable[[], None] | None = None  # called when a flow opens or closes

    async def start(self, listen: Address) -> Address:
        transport, _ = await self.loop.create_datagram_endpoint(lambda: _Listener(self), local_addr=listen)
        _enlarge_buffers(transport)
        self._listener = transport
        host, port = transport.get_extra_info("sockname")[:2]
        self.state.listen = (host, port)
        self._sweeper = self.loop.call_later(self.idle_timeout / 4, self._sweep)
        return (host, port)

    def _sweep(self) -> None:
        """Close the upstream sockets of device addresses idle for ``idle_timeout`` (bounded memory)."""
        cutoff = self.loop.time() - self.idle_timeout
        idle = [dev for dev, up in self._upstreams.items() if up.last_active < cutoff and up.transport]
        for device in idle:
            upstream = self._upstreams.pop(device)
            if upstream.transport is not None:
                upstream.transport.close()
        if idle and self.on_flows is not None:
            self.on_flows()
        self._sweeper = self.loop.call_later(self.idle_timeout / 4, self._sweep)

    # --- decisions ----------------------------------------------------------------------
    def _decide(self, direction: str, data: bytes) -> tuple[list[Delivery], float, int]:
        state = self.state
        st = state.stats[direction]
        st.offered(len(data))
        now = self.loop.time()
        d = self._dirs[direction]
        seq = d.seq
        d.seq += 1
        if state.stalled:
            st.partition_dropped += 1
            return [], now, seq
        if state.fast:
            return [Delivery(at=now)], now, seq
        model = d.current_model()
        deliveries = model.decide(now, len(data))
        st.loss_outcome(model.last_lost)
        for delivery in deliveries:
            if delivery.flip is not None:
                st.corrupted += 1
            if delivery.duplicate:
                st.duplicated += 1
        return deliveries, now, seq

    def from_device(self, data: bytes, device: Address) -> None:
        upstream = self._upstreams.get(device)
        if upstream is not None:
            upstream.last_active = self.loop.time()
        if self.state.fast and upstream is not None and upstream.transport is not None:
            upstream.transport.sendto(data)  # nothing configured: straight through, counted
            self._count_through("up", len(data))
            return
        deliveries, arrival, seq = self._decide("up", data)
        if not deliveries:
            return
        if upstream is None:
            upstream = self._open_upstream(device)
        for delivery in deliveries:
            if upstream.transport is None:
                upstream.waiting.append((data, delivery, arrival, seq))
            else:
                self.send_up(upstream, data, delivery, arrival, seq)

    def from_service(self, data: bytes, device: Address) -> None:
        upstream = self._upstreams.get(device)
        if upstream is not None:
            upstream.last_active = self.loop.time()
        if self.state.fast and self._listener is not None:
            self._listener.sendto(data, device)
            self._count_through("down", len(data))
            return
        deliveries, arrival, seq = self._decide("down", data)
        for delivery in deliveries:
            self._schedule("down", self._send_down, data, delivery, arrival, seq, device)

    def _count_through(self, direction: str, size: int) -> None:
        st = self.state.stats[direction]
        st.offered_packets += 1
        st.offered_bytes += size
        st.delivered_packets += 1
        st.delivered_bytes += size

    # --- sending ------------------------------------------------------------------------
    def send_up(self, upstream: _Upstream, data: bytes, delivery: Delivery, arrival: float, seq: int) -> None:
        self._schedule("up", self._send_up, data, delivery, arrival, seq, upstream)

    def _schedule(
        self,
        direction: str,
        send: Callable[[str, bytes, Delivery, float, int, Any], None],
        data: bytes,
        delivery: Delivery,
        arrival: float,
        seq: int,
        target: Any,
    ) -> None:
        if delivery.at <= self.loop.time():
            send(direction, data, delivery, arrival, seq, target)
            return
        handle: asyncio.TimerHandle

        def fire() -> None:
            self._timers.discard(handle)
            send(direction, data, delivery, arrival, seq, target)

        handle = self.loop.call_at(delivery.at, fire)
        self._timers.add(handle)

    def _record(self, direction: str, size: int, arrival: float, seq: int) -> None:
        now = self.loop.time()
        self.state.stats[direction].delivered(size, now - arrival, now, seq)

    def _send_up(self, direction: str, data: bytes, delivery: Delivery, arrival: float, seq: int,
                 upstream: _Upstream) -> None:
        if upstream.transport is None or upstream.transport.is_closing():
            return
        upstream.transport.sendto(delivery.apply(data))
        self._record(direction, len(data), arrival, seq)

    def _send_down(self, direction: str, data: bytes, delivery: Delivery, arrival: float, seq: int,
                   device: Address) -> None:
        if self._listener is None or self._listener.is_closing():
            return
        self._listener.sendto(delivery.apply(data), device)
        self._record(direction, len(data), arrival, seq)

    def _open_upstream(self, device: Address) -> _Upstream:
        upstream = _Upstream(self, device)
        self._upstreams[device] = upstream
        task = self.loop.create_task(self._connect(upstream))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return upstream

    async def _connect(self, upstream: _Upstream) -> None:
        try:
            transport, _ = await self.loop.create_datagram_endpoint(
                lambda: upstream, remote_addr=self.state.upstream
            )
            _enlarge_buffers(transport)
        except OSError:
            self.errors += 1
            self._upstreams.pop(upstream.device, None)

    # --- control ------------------------------------------------------------------------
    def changed(self) -> None:
        """Nothing to carry over: each datagram is decided by the parameters when it arrives."""

    def retarget(self) -> None:
        """The service moved: drop the per-device sockets so the next datagram opens new ones."""
        for upstream in self._upstreams.values():
            if upstream.transport is not None:
                upstream.transport.close()
        self._upstreams.clear()

    def reset(self) -> int:
        """Datagrams have no connection to reset; the per-device sockets are re-opened instead."""
        count = len(self._upstreams)
        self.retarget()
        return count

    @property
    def flows(self) -> int:
        return len(self._upstreams)

    @property
    def open_count(self) -> int:
        """Device addresses with a socket towards the service right now."""
        return len(self._upstreams)

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self.retarget()
        if self._listener is not None:
            self._listener.close()
