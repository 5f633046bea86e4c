"""Deterministic doubles of the runtime's host: a heap of timers on virtual time, executors in memory.

:class:`FakeScheduler` keeps callbacks in a heap ordered by (due time, order scheduled); ``run``
advances virtual time from one due callback to the next, so a test of the pure runtime
(:class:`harness.twin.runtime.BoardRuntime`) needs no loop, no pty, no thread and no sleeping.
:class:`MemoryConsole` is a UART with a receive buffer of ``capacity`` bytes that a test reads
(``capacity=None``: a reader that keeps up with anything). :class:`MemoryBroker` answers CONNECT and
QoS 1 PUBLISH ``delay`` seconds later on the same scheduler.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field

from harness.twin import PROMPT, ConsoleInput, Event, FlashLayout
from harness.twin.events import NetConnect, NetConnected, NetPublish, NetPublished
from harness.twin.executors import HttpAction, NetAction
from harness.twin.runtime import BoardRuntime, RuntimeConfig

WALL = 1_700_000_000.0
MAX_CALLBACKS = 200_000


@dataclass(order=True)
class Timer:
    when: float
    order: int
    callback: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)


class FakeScheduler:
    """Virtual time: nothing happens until :meth:`run` is asked to advance it."""

    def __init__(self) -> None:
        self.time = 0.0
        self.heap: list[Timer] = []
        self._order = 0

    def now(self) -> float:
        return self.time

    def wall_offset(self) -> float:
        return WALL

    def call_at(self, when: float, callback: Callable[[], None]) -> object:
        self._order += 1
        timer = Timer(max(when, self.time), self._order, callback)
        heapq.heappush(self.heap, timer)
        return timer

    def call_soon(self, callback: Callable[[], None]) -> None:
        self.call_at(self.time, callback)

    def cancel(self, handle: object) -> None:
        assert isinstance(handle, Timer)
        handle.cancelled = True

    def pending(self) -> list[Timer]:
        return sorted(t for t in self.heap if not t.cancelled)

    def run(self, until: float) -> None:
        """Run every callback due up to ``until`` in order, then leave the clock at ``until``."""
        for _ in range(MAX_CALLBACKS):
            while self.heap and self.heap[0].cancelled:
                heapq.heappop(self.heap)
            if not self.heap or self.heap[0].when > until:
                break
            timer = heapq.heappop(self.heap)
            self.time = timer.when
            timer.callback()
        else:
            raise AssertionError(f"more than {MAX_CALLBACKS} callbacks before t={until}")
        self.time = max(self.time, until)

    def step(self, seconds: float) -> None:
        self.run(self.time + seconds)


class MemoryConsole:
    """The console UART: what the runtime sent waits in ``unread`` until the test reads it."""

    def __init__(self, capacity: int | None = None) -> None:
        self.capacity = capacity
        self.unread = bytearray()
        self.watching = False
        self.gone = False  # the console was closed: send raises OSError
        self.sent_at: list[tuple[float, bytes]] = []
        self.on_writable: Callable[[], None] = lambda: None
        self.clock: Callable[[], float] = lambda: 0.0

    def send(self, data: bytes) -> int:
        if self.gone:
            raise OSError(5, "Input/output error")
        room = len(data) if self.capacity is None else max(0, self.capacity - len(self.unread))
        taken = data[:room]
        if taken:
            self.unread += taken
            self.sent_at.append((self.clock(), bytes(taken)))
        return len(taken)

    def watch_writable(self, on: bool) -> None:
        self.watching = on

    def read(self) -> bytes:
        """Everything received so far; the runtime hears that the console has room again."""
        data, self.unread = bytes(self.unread), bytearray()
        if self.watching:
            self.on_writable()
        return data


class MemoryFlash:
    """The flash chip as a bytearray; ``programmed`` says when each unit landed."""

    def __init__(self, data: bytearray) -> None:
        self.data = data
        self.programmed: list[tuple[float, int]] = []
        self.clock: Callable[[], float] = lambda: 0.0

    def read(self) -> bytes:
        return bytes(self.data)

    def program(self, offset: int, data: bytes) -> None:
        self.data[offset : offset + len(data)] = data
        self.programmed.append((self.clock(), offset))


@dataclass
class MemoryBroker:
    """Accepts every connection and acknowledges QoS 1 publishes, ``delay`` seconds later."""

    scheduler: FakeScheduler
    delay: float = 0.001
    actions: list[tuple[float, NetAction]] = field(default_factory=list)
    resets: int = 0
    feed: Callable[[Event], None] = lambda event: None

    def execute(self, action: NetAction) -> None:
        self.actions.append((self.scheduler.now(), action))
        if isinstance(action, NetConnect):
            self._answer(NetConnected(action.conn))
        elif isinstance(action, NetPublish) and action.qos == 1:
            self._answer(NetPublished(action.conn, action.ref))

    def reset(self) -> None:
        self.resets += 1  # answers still on their way belong to the old core: dropped

    def published(self, topic: str) -> list[tuple[float, NetPublish]]:
        return [(at, a) for at, a in self.actions if isinstance(a, NetPublish) and a.topic == topic]

    def _answer(self, event: Event) -> None:
        epoch = self.resets

        def deliver() -> None:
            if epoch == self.resets:
                self.feed(event)

        self.scheduler.call_at(self.scheduler.now() + self.delay, deliver)


@dataclass
class NoHttp:
    """No artifact server: records what was asked."""

    actions: list[HttpAction] = field(default_factory=list)
    resets: int = 0

    def execute(self, action: HttpAction) -> None:
        self.actions.append(action)

    def reset(self) -> None:
        self.resets += 1


@dataclass
class ReportLog:
    reports: list[tuple[float, str, dict[str, object]]] = field(default_factory=list)
    faults: list[tuple[Event, Exception]] = field(default_factory=list)
    clock: Callable[[], float] = lambda: 0.0

    def report(self, event: str, **fields: object) -> None:
        self.reports.append((self.clock(), event, fields))

    def fault(self, event: Event, error: Exception) -> None:
        self.faults.append((event, error))

    def of(self, event: str) -> list[dict[str, object]]:
        return [fields for _, name, fields in self.reports if name == event]


class Board:
    """A runtime wired to the fakes above, with console helpers in virtual time."""

    def __init__(self, flash: bytearray, layout: FlashLayout, *, program_time: float = 0.0,
                 capacity: int | None = None) -> None:  # fmt: skip
        self.scheduler = scheduler = FakeScheduler()
        self.console = MemoryConsole(capacity)
        self.flash = MemoryFlash(flash)
        self.broker = MemoryBroker(scheduler)
        self.http = NoHttp()
        self.reports = ReportLog()
        self.runtime = BoardRuntime(
            RuntimeConfig(layout, program_time=program_time),
            scheduler,
            console=self.console,
            flash=self.flash,
            net=self.broker,
            http=self.http,
            reports=self.reports,
        )
        self.console.on_writable = self.runtime.console_writable
        self.broker.feed = self.runtime.feed
        self.console.clock = self.flash.clock = self.reports.clock = scheduler.now

    def type(self, data: bytes) -> None:
        self.runtime.feed(ConsoleInput(data))

    def read_until(self, marker: bytes, *, within: float = 5.0, step: float = 0.001) -> bytes:
        """Advance virtual time until ``marker`` was received (reading as it goes); return the text."""
        seen = bytearray()
        deadline = self.scheduler.time + within
        while marker not in seen:
            if self.scheduler.time >= deadline:
                raise AssertionError(f"no {marker!r} within {within} s of virtual time; got {bytes(seen[-200:])!r}")
            seen += self.console.read()
            if marker not in seen:
                self.scheduler.step(step)
        return bytes(seen)

    def command(self, line: str) -> list[str]:
        """Type ``line`` + CR and read to the next prompt; return the reply lines."""
        self.type(line.encode() + b"\r")
        text = self.read_until(b"\r\n" + PROMPT).decode()
        body = text.split("\r\n", 1)[1][: -len(PROMPT)]
        return body.split("\r\n")[:-1]
