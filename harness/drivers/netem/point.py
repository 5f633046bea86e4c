"""The impairment point: a userspace netem between a device and its services, driven from sync code.

:class:`ImpairmentPoint` runs its own asyncio loop in a background thread. Synchronous code (a
pytest test, a scenario step) adds services (``add_tcp``/``add_udp`` return the address the device
should use instead of the service's), changes conditions at run time (``apply``, ``profile``,
``partition``, ``heal``, ``reset``, ``close_after``) and reads back what was produced
(``statistics``). Every change is validated as a whole before anything is swapped, recorded in the
run journal (``kind="injection"``), and closes a measurement epoch whose statistics are journalled
(``kind="netem.stats"``) next to the configuration they were produced under.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol, TypeVar

from harness.drivers.netem.capture import PacketCapture
from harness.drivers.netem.tcp import TcpProxy
from harness.drivers.netem.timing import precise_event_loop, set_thread_priority
from harness.drivers.netem.udp import UdpProxy
from harness.errors import ConfigError, RigError
from harness.netmodel.link import PACKET_ONLY, Address, CloseAfter, LinkState
from harness.netmodel.params import (
    CLEAR,
    DIRECTIONS,
    LinkParams,
    build_directions,
    build_params,
    byte_count,
    directions,
)
from harness.netmodel.profiles import profile_params
from harness.netmodel.syntax import parse_netem
from harness.units import parse_duration

T = TypeVar("T")
DEFAULT_LISTEN: Address = ("127.0.0.1", 0)


class JournalLike(Protocol):
    """What the point needs of a run journal (:class:`harness.run.journal.Journal` fits)."""

    def record(self, kind: str, **fields: Any) -> Any: ...


class ImpairmentPoint:
    """A userspace network impairment point (see the module docstring).

    ``seed`` makes every random decision reproducible: each service and direction draws from its
    own stream derived from the seed and the service name. ``stats_interval`` (seconds, or None)
    journals the measured statistics periodically as well as at every change and at stop.
    ``nice`` (e.g. -10) or ``realtime=True`` (SCHED_FIFO) raises the loop thread's scheduling
    priority where permitted, so delays stay punctual on a busy machine; the outcome is in
    :attr:`priority` and the ``netem.start`` record. ``udp_idle`` (seconds) closes the upstream
    socket of a device address that has been silent that long.
    """

    backend = "userspace"

    def __init__(
        self,
        journal: JournalLike | None = None,
        seed: int | str | None = None,
        *,
        stats_interval: float | None = 10.0,
        control_timeout: float = 10.0,
        nice: int | None = None,
        realtime: bool = False,
        udp_idle: float = 120.0,
    ) -> None:
        self.journal = journal
        self.seed = seed
        self.stats_interval = stats_interval
        self.control_timeout = control_timeout
        self.nice = nice
        self.realtime = realtime
        self.udp_idle = udp_idle
        self.priority = "default"  # what became of ``nice``: reported in the netem.start record
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._control = threading.RLock()  # one change at a time, from validation to swap
        self._links: dict[str, LinkState] = {}
        self._proxies: dict[str, TcpProxy | UdpProxy] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._flows_changed = threading.Condition()

    # --- lifecycle ----------------------------------------------------------------------
    def start(self) -> ImpairmentPoint:
        """Start the event-loop thread; returns ``self``."""
        if self._thread is not None:
            return self
        loop = precise_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            if self.nice is not None or self.realtime:
                self.priority = set_thread_priority(self.nice, self.realtime)
            loop.call_soon(ready.set)
            loop.run_forever()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="netem-point", daemon=True)
        self._thread.start()
        if not ready.wait(self.control_timeout):
            raise RigError(f"netem: event loop thread did not start within {self.control_timeout:g}s")
        self._journal("netem.start", backend=self.backend, seed=self.seed, priority=self.priority,
                      selector=type(getattr(loop, "_selector", None)).__name__)
        if self.stats_interval:
            self._loop.call_soon_threadsafe(self._schedule_periodic)
        return self

    def stop(self) -> None:
        """Journal the last statistics, close every socket, stop the loop and join its thread."""
        if self._thread is None or self._loop is None:
            return
        loop, thread = self._loop, self._thread
        try:
            self._call(self._shutdown, what="stop")
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(self.control_timeout)
            if thread.is_alive():
                raise RigError(f"netem: event loop thread did not stop within {self.control_timeout:g}s")
            loop.close()
            self._thread = self._loop = None
            self._links.clear()  # the proxies belonged to the closed loop; a restart starts empty
            self._proxies.clear()

    async def _shutdown(self) -> None:
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        for name, link in self._links.items():
            for d in DIRECTIONS:
                self._journal("netem.stats", reason="stop", **link.snapshot(d))
            await self._proxies[name].close()

    def __enter__(self) -> ImpairmentPoint:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- services -----------------------------------------------------------------------
    def add_tcp(
        self, upstream: Address, *, listen: Address = DEFAULT_LISTEN, name: str | None = None
    ) -> Address:
        """Proxy TCP to ``upstream``; returns the (host, port) the device should connect to."""
        return self._add("tcp", upstream, listen, name)

    def add_udp(
        self, upstream: Address, *, listen: Address = DEFAULT_LISTEN, name: str | None = None
    ) -> Address:
        """Proxy UDP datagrams to ``upstream``; returns the (host, port) the device should send to."""
        return self._add("udp", upstream, listen, name)

    def _add(self, kind: str, upstream: Address, listen: Address, name: str | None) -> Address:
        loop = self._require_loop()
        name = name or f"{kind}{len(self._links)}"
        if name in self._links:
            raise ConfigError(f"name: service {name!r} is already proxied; expected a new name")
        upstream = _address("upstream", upstream)
        listen = _address("listen", listen)
        state = LinkState(name=name, kind=kind, upstream=upstream, seed=self.seed)
        proxy: TcpProxy | UdpProxy = (
            TcpProxy(state, loop) if kind == "tcp" else UdpProxy(state, loop, idle_timeout=self.udp_idle)
        )
        proxy.on_flows = self._notify_flows
        address: Address = self._call(lambda: proxy.start(listen), what=f"listen for {name}")
        with self._control:
            self._links[name] = state
            self._proxies[name] = proxy
        self._journal(
            "netem.service", service=name, proto=kind, listen=list(address), upstream=list(upstream)
        )
        return address

    @property
    def services(self) -> list[str]:
        return list(self._links)

    def address(self, service: str) -> Address:
        """Where the device reaches ``service`` through the point."""
        listen = self._link(service).listen
        assert listen is not None
        return listen

    def set_upstream(self, service: str, upstream: Address) -> None:
        """Point ``service`` at a new upstream (a broker restarted on another port); new flows use it."""
        link = self._link(service)
        upstream = _address("upstream", upstream)

        def swap() -> None:
            link.upstream = upstream
            proxy = self._proxies[service]
            if isinstance(proxy, UdpProxy):
                proxy.retarget()

        self._change(swap, action="upstream", service=service, params={"upstream": list(upstream)})

    # --- conditions ---------------------------------------------------------------------
    def apply(self, *, direction: str | None = None, service: str | None = None, **params: Any) -> None:
        """Change parameters (netem names; ``latency`` = ``delay``), keeping the others as they are."""
        with self._control:
            targets = self._targets(service)
            new = {name: build_directions(self._links[name].params, direction, params) for name in targets}
            self._swap(new, action="apply", params=params, direction=direction or "both", service=service)

    def apply_netem(self, spec: str, *, direction: str | None = None, service: str | None = None) -> None:
        """``apply`` from a ``tc netem`` option string: ``"delay 100ms 10ms 25% loss 1%"``."""
        self.apply(direction=direction, service=service, **parse_netem(spec))

    def clear(self, *, direction: str | None = None, service: str | None = None) -> None:
        """Remove every impairment parameter (does not heal a partition)."""
        chosen = directions(direction)
        with self._control:
            if all(self._links[n].params[d].is_clear for n in self._targets(service) for d in chosen):
                return  # nothing to clear: not a change, not journalled
            new = {
                name: {d: CLEAR if d in chosen else self._links[name].params[d] for d in DIRECTIONS}
                for name in self._targets(service)
            }
            self._swap(new, action="clear", params={}, direction=direction or "both", service=service)

    def profile(self, name: str, *, service: str | None = None) -> None:
        """Replace the parameters with a named profile (``lan``, ``3g``, ``satellite``...)."""
        table = profile_params(name)
        per_dir = {d: build_params(CLEAR, **table[d]) for d in DIRECTIONS}
        new = {svc: dict(per_dir) for svc in self._targets(service)}
        self._swap(new, action="profile", params={"name": name}, direction="both", service=service)

    def configured(self, service: str) -> dict[str, LinkParams]:
        """The parameters in force for ``service``, per direction."""
        return dict(self._link(service).params)

    def stall(self, duration: float | str | None = None, *, service: str | None = None) -> None:
        """Hold all data, keep connections open and accept new ones (a dead zone)."""
        self._hold("stall", duration, service, refuse=False)

    def partition(self, duration: float | str | None = None, *, service: str | None = None) -> None:
        """Stall and refuse (RST) new connections; heals by itself after ``duration`` if given."""
        self._hold("partition", duration, service, refuse=True)

    def heal(self, *, service: str | None = None) -> None:
        """End a stall or partition: held data flows again, new connections are accepted.

        Healing a link that is neither stalled nor partitioned changes nothing and is not journalled.
        """
        targets = self._targets(service)

        def swap() -> None:
            self._heal_now(targets)

        with self._control:
            if not any(self._links[n].stalled or self._links[n].refusing for n in targets):
                return
            self._change(swap, action="heal", service=service, params={})

    def _hold(self, action: str, duration: float | str | None, service: str | None, *, refuse: bool) -> None:
        seconds = None
        if duration is not None:
            try:
                seconds = parse_duration(duration)
            except ConfigError as exc:
                raise ConfigError(f"duration: {exc.detail}") from None
        targets = self._targets(service)

        def swap() -> None:
            assert self._loop is not None
            for name in targets:
                link = self._links[name]
                self._close_epoch(link, reason=action)
                link.stalled = True
                link.refusing = refuse
                link.refresh()
                self._proxies[name].changed()
                old = self._timers.pop(name, None)
                if old is not None:
                    old.cancel()
                if seconds is not None:
                    self._timers[name] = self._loop.call_later(seconds, self._auto_heal, [name], action)

        self._change(swap, action=action, service=service, params={"duration": seconds})

    def _auto_heal(self, targets: list[str], action: str) -> None:
        self._heal_now(targets)
        self._journal(
            "injection",
            action="heal",
            service=targets[0] if len(targets) == 1 else None,
            params={"reason": f"{action} duration elapsed"},
            direction="both",
        )

    def _heal_now(self, targets: list[str]) -> None:
        for name in targets:
            link = self._links[name]
            handle = self._timers.pop(name, None)
            if handle is not None:
                handle.cancel()
            if link.stalled or link.refusing:
                self._close_epoch(link, reason="heal")
            link.stalled = False
            link.refusing = False
            link.refresh()
            self._proxies[name].changed()

    def reset(self, *, service: str | None = None) -> int:
        """RST every open TCP connection (the device sees ECONNRESET); returns how many were reset."""
        targets = self._targets(service)
        counts: list[int] = []

        def swap() -> None:
            counts.append(sum(self._proxies[name].reset() for name in targets))

        self._change(swap, action="reset", service=service, params={})
        return counts[0]

    def close_after(self, nbytes: int | str | None, *, direction: str | None = None,
                    service: str | None = None) -> None:
        """Close each TCP connection once ``nbytes`` have passed (counted in ``direction``); None ends it."""
        size = byte_count("close_after", nbytes)
        dirs = directions(direction)
        targets = self._targets(service)

        def swap() -> None:
            for name in targets:
                link = self._links[name]
                link.close_after = None if size is None else CloseAfter(size, dirs)
                link.refresh()
                self._proxies[name].changed()

        self._change(swap, action="close_after", service=service, params={"nbytes": size},
                     direction=direction or "both")

    @contextlib.contextmanager
    def impaired(self, *, direction: str | None = None, service: str | None = None,
                 **params: Any) -> Iterator[ImpairmentPoint]:
        """``apply(**params)`` for the ``with`` block, then put back what was configured before."""
        with self._control:
            before = {name: dict(self._links[name].params) for name in self._targets(service)}
            self.apply(direction=direction, service=service, **params)
        try:
            yield self
        finally:
            self._swap(before, action="restore", params={}, direction=direction or "both", service=service)

    @contextlib.contextmanager
    def partitioned(self, *, service: str | None = None) -> Iterator[ImpairmentPoint]:
        """A partition for the ``with`` block, healed on the way out (even on error)."""
        self.partition(service=service)
        try:
            yield self
        finally:
            self.heal(service=service)

    @contextlib.contextmanager
    def stalled(self, *, service: str | None = None) -> Iterator[ImpairmentPoint]:
        """A stall for the ``with`` block, healed on the way out."""
        self.stall(service=service)
        try:
            yield self
        finally:
            self.heal(service=service)

    # --- measurements -------------------------------------------------------------------
    def statistics(self, service: str | None = None) -> dict[str, Any]:
        """Configured next to produced, per service and direction, for the current epoch."""
        targets = self._targets(service)

        def snap() -> dict[str, Any]:
            out: dict[str, Any] = {}
            for name in targets:
                link = self._links[name]
                proxy = self._proxies[name]
                entry: dict[str, Any] = {
                    "proto": link.kind,
                    "listen": link.listen,
                    "upstream": link.upstream,
                    "epoch": link.epoch,
                    "stalled": link.stalled,
                    "refusing": link.refusing,
                }
                if isinstance(proxy, TcpProxy):
                    entry.update(connections=len(proxy.connections), accepted=proxy.accepted,
                                 refused=proxy.refused, upstream_errors=list(proxy.upstream_errors[-5:]))
                else:
                    entry.update(flows=proxy.flows, errors=proxy.errors)
                for d in DIRECTIONS:
                    entry[d] = link.snapshot(d)
                out[name] = entry
            return out

        result: dict[str, Any] = self._call(snap, what="statistics")
        return result

    def connections(self, service: str | None = None) -> int:
        """Open TCP connections (or UDP flows) through the point right now."""
        stats = self.statistics(service)
        return sum(entry.get("connections", entry.get("flows", 0)) for entry in stats.values())

    def wait_connections(self, count: int, *, service: str | None = None, timeout: float = 10.0) -> int:
        """Wait until at least ``count`` connections are open; raises :class:`RigError` on timeout."""
        targets = self._targets(service)

        def open_now() -> int:
            return sum(self._proxies[name].open_count for name in targets)

        with self._flows_changed:
            if not self._flows_changed.wait_for(lambda: open_now() >= count, timeout):
                raise RigError(
                    f"netem: timed out after {timeout:g}s waiting for {count} connection(s) through "
                    f"{service or 'the point'}; last seen {open_now()}"
                )
            return open_now()

    def _notify_flows(self) -> None:
        with self._flows_changed:
            self._flows_changed.notify_all()

    def ports(self) -> list[int]:
        """The ports the point listens on (the device's side of every service)."""
        return [link.listen[1] for link in self._links.values() if link.listen is not None]

    def capture(self, folder: str | os.PathLike[str], *, iface: str = "lo") -> PacketCapture:
        """Start a pcap of the device's traffic (every service added so far) in ``folder``.

        Returns the :class:`PacketCapture` (stop it to close the file). Where sniffing is not
        allowed it is returned stopped, its ``reason`` saying why; either way the journal gets a
        ``netem.capture`` record with the outcome.
        """
        cap = PacketCapture(folder, self.ports(), iface=iface)
        running = cap.start()
        self._journal("netem.capture", running=running, reason=cap.reason,
                      path=str(cap.path) if running else None, ports=self.ports())
        return cap

    # --- internals ----------------------------------------------------------------------
    def _swap(self, new: Mapping[str, Mapping[str, LinkParams]], *, action: str, params: Mapping[str, Any],
              direction: str, service: str | None) -> None:
        """Swap fully validated parameters into every target link in one loop callback."""

        def swap() -> None:
            for name, per_dir in new.items():
                link = self._links[name]
                for snap in link.new_epoch(dict(per_dir)):
                    self._journal("netem.stats", reason=action, **snap)
                self._proxies[name].changed()

        configured = {name: {d: p.describe() for d, p in per_dir.items()} for name, per_dir in new.items()}
        # what a stream service cannot do (loss, duplicate...): accounting must not blame it for a gap
        not_applied = {name: sorted({k for conf in per_dir.values() for k in conf if k in PACKET_ONLY})
                       for name, per_dir in configured.items() if self._links[name].kind == "tcp"}  # fmt: skip
        self._change(swap, action=action, service=service, params=_jsonable(params), direction=direction,
                     configured=configured, not_applied=not_applied)

    def _close_epoch(self, link: LinkState, *, reason: str) -> None:
        for snap in link.new_epoch(link.params):
            self._journal("netem.stats", reason=reason, **snap)

    def _change(self, fn: Callable[[], None], *, action: str, service: str | None, params: Any,
                direction: str = "both", **extra: Any) -> None:
        with self._control:
            self._call(fn, what=action)
            self._journal("injection", action=action, service=service, params=params, direction=direction,
                          **extra)

    def _schedule_periodic(self) -> None:
        """Journal every link's statistics every ``stats_interval`` seconds (runs on the loop)."""
        loop, interval = self._loop, self.stats_interval
        if loop is None or not interval:
            return

        def tick() -> None:
            for link in self._links.values():
                for d in DIRECTIONS:
                    self._journal("netem.stats", reason="periodic", **link.snapshot(d))
            self._timers["<periodic>"] = loop.call_later(interval, tick)

        self._timers["<periodic>"] = loop.call_later(interval, tick)

    def _call(self, fn: Callable[[], Any], *, what: str) -> Any:
        """Run ``fn`` (plain or returning an awaitable) on the loop thread and wait for its result."""
        loop = self._require_loop()

        async def runner() -> Any:
            result = fn()
            if asyncio.iscoroutine(result):
                result = await result
            return result

        future = asyncio.run_coroutine_threadsafe(runner(), loop)
        try:
            return future.result(self.control_timeout)
        except TimeoutError:
            future.cancel()
            raise RigError(
                f"netem: timed out after {self.control_timeout:g}s waiting for the event loop to {what}"
            ) from None

    def _require_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RigError("netem: the impairment point is not started; call start() first")
        return self._loop

    def _targets(self, service: str | None) -> list[str]:
        if service is None:
            return list(self._links)
        self._link(service)
        return [service]

    def _link(self, service: str) -> LinkState:
        try:
            return self._links[service]
        except KeyError:
            known = ", ".join(self._links) or "none added yet"
            raise ConfigError(f"service: unknown service {service!r}; expected one of: {known}") from None

    def _journal(self, kind: str, **fields: Any) -> None:
        if self.journal is not None:
            self.journal.record(kind, **fields)


def _address(field: str, value: Any) -> Address:
    if (
        not isinstance(value, tuple | list)
        or len(value) != 2
        or not isinstance(value[0], str)
        or isinstance(value[1], bool)
        or not isinstance(value[1], int)
        or not 0 <= value[1] <= 65535
    ):
        raise ConfigError(f"{field}: expected (host, port) with a port 0..65535, got {value!r}")
    return (value[0], value[1])


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return value
