"""The board runtime, pure: one board's core fed events in order, its actions executed through executors.

What it owns (the same under every host, see :mod:`harness.twin.executors`):

* **Order.** Events are handled one at a time, after every action of the previous event ran; an event
  that arrives meanwhile (from an executor, or typed input) waits in a queue.
* **Timers.** ``StartTimer``/``CancelTimer`` become scheduler callbacks; an expiry still queued when
  its timer is cancelled or restarted is dropped.
* **Flash programming stalls.** With ``program_time`` > 0 each ``FlashWrite`` lands ``program_time``
  after it started and nothing else happens meanwhile (input and timer expiries wait), like a CPU
  polling the flash controller; a power cut inside the stall loses the unit.
* **Console backpressure.** Output goes into a transmit buffer drained through the console executor;
  beyond :data:`TX_LIMIT` it is dropped (nobody reads the console), and timer expiries are held back
  while more than :data:`HIGH_WATER` bytes wait, so a long ``dump`` streams at the reader's pace.
* **Reboot.** A ``Reboot`` action rebuilds the core from what flash holds, cancels the old core's timers,
  drops its queued timer and network events (typed input survives), resets the network and HTTP
  executors, and hands the old core's noinit RAM to the new one's ``PowerOn``.

No clock, no asyncio, no threads, no files or sockets: time is the scheduler's, I/O is the executors'.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass
from functools import partial

from harness.twin.device import DEFAULT_BOOT_TIME, Device
from harness.twin.events import (
    Action,
    CancelTimer,
    ConsoleInput,
    ConsoleOutput,
    Event,
    FlashWrite,
    Halt,
    NetConnect,
    NetDisconnect,
    NetPublish,
    NetSubscribe,
    PowerOn,
    Reboot,
    StartTimer,
    StateChange,
    TimerFired,
)
from harness.twin.executors import Console, FlashStore, HttpLink, NetLink, Reports, Scheduler
from harness.twin.flash import FlashLayout
from harness.twin.http_events import HttpCancel, HttpGet, OtaStatus

HIGH_WATER = 64 * 1024  # hold timers back above this many untransmitted bytes
TX_LIMIT = 1024 * 1024  # drop output beyond this (nobody is reading the console)
SEND_CHUNK = 64 * 1024  # bytes offered to the console per send


@dataclass(frozen=True)
class RuntimeConfig:
    """How to build the board's core, and how long one page-program unit takes (seconds)."""

    layout: FlashLayout
    device_id: str = "twin-0001"
    boot_time: float = DEFAULT_BOOT_TIME
    program_time: float = 0.0


@dataclass(frozen=True)
class RuntimeStatistics:
    """A snapshot of the runtime (the core has its own: ``runtime.device.statistics()``)."""

    powered: bool
    reboots: int
    timers: tuple[str, ...]  # pending, by name
    held: tuple[str, ...]  # expired, held back by console backpressure
    tx_buffered: int
    tx_dropped: int
    programming: bool
    queued_events: int


class BoardRuntime:
    """Runs one board: a core per boot, rebuilt from flash on every ``Reboot`` action."""

    def __init__(
        self,
        config: RuntimeConfig,
        scheduler: Scheduler,
        *,
        console: Console,
        flash: FlashStore,
        net: NetLink,
        http: HttpLink,
        reports: Reports,
    ) -> None:
        self.config = config
        self.scheduler = scheduler
        self.console = console
        self.flash = flash
        self.net = net
        self.http = http
        self.reports = reports
        self.device: Device | None = None  # None: unpowered (or crashed)
        self.entropy = random.Random(0)
        self.tx = bytearray()
        self.tx_dropped = 0
        self.reboots = 0
        self.timers: dict[str, object] = {}  # name -> scheduler handle
        self.held: list[str] = []
        self.actions: deque[Action] = deque()  # returned by the core, not yet executed
        self.events: deque[Event] = deque()  # arrived while actions were still being executed
        self._programming: object | None = None  # the handle of the unit being programmed
        self._pumping = False

    # ------------------------------------------------------------------ the host's side

    def power_on(self, reset_cause: str, entropy: int) -> None:
        """Supply up: a core from flash, ``PowerOn`` with this entropy (later reboots draw from it)."""
        self.entropy = random.Random(entropy)
        self.device = self._new_core()
        self.feed(PowerOn(reset_cause, entropy, self.scheduler.wall_offset()))

    def power_off(self) -> None:
        """Supply gone: the core, its timers, queued work, connections and untransmitted output are lost
        (a unit being programmed is not written). The process host ends the process instead."""
        self._stop()

    def feed(self, event: Event) -> None:
        """An event from outside (console input, an executor's answer): handled in turn."""
        if self.device is None:
            return  # nothing listens on an unpowered board
        self.events.append(event)
        self._pump()

    def console_writable(self) -> None:
        """The console can take bytes again (called by the console executor while watched)."""
        self._flush()

    def statistics(self) -> RuntimeStatistics:
        return RuntimeStatistics(
            powered=self.device is not None,
            reboots=self.reboots,
            timers=tuple(sorted(self.timers)),
            held=tuple(self.held),
            tx_buffered=len(self.tx),
            tx_dropped=self.tx_dropped,
            programming=self._programming is not None,
            queued_events=len(self.events),
        )

    # ------------------------------------------------------------------ core plumbing

    def _new_core(self) -> Device:
        """A fresh core from what the flash holds now."""
        c = self.config
        return Device(self.flash.read(), layout=c.layout, device_id=c.device_id, boot_time=c.boot_time)

    def _pump(self) -> None:
        if self._pumping:
            return
        self._pumping = True
        try:
            while self._programming is None and self.device is not None:
                if self.actions:
                    self._execute(self.actions.popleft())
                elif self.events:
                    self._handle(self.events.popleft())
                else:
                    break
        finally:
            self._pumping = False

    def _handle(self, event: Event) -> None:
        assert self.device is not None
        try:
            self.actions.extend(self.device.handle(event, self.scheduler.now()))
        except Exception as error:
            self._stop()
            self.reports.fault(event, error)

    def _execute(self, action: Action) -> None:
        if isinstance(action, ConsoleOutput):
            self._transmit(action.data)
        elif isinstance(action, FlashWrite):
            self._program(action)
        elif isinstance(action, StartTimer):
            self._cancel(action.name)
            when = self.scheduler.now() + action.delay
            self.timers[action.name] = self.scheduler.call_at(when, partial(self._fire, action.name))
        elif isinstance(action, CancelTimer):
            self._cancel(action.name)
        elif isinstance(action, StateChange):
            self.reports.report("state", state=action.state)
        elif isinstance(action, Halt):
            self.reports.report("halt", reason=action.reason)
        elif isinstance(action, NetConnect | NetPublish | NetSubscribe | NetDisconnect):
            self.net.execute(action)
        elif isinstance(action, HttpGet | HttpCancel):
            self.http.execute(action)
        elif isinstance(action, OtaStatus):  # for the rig; the core publishes it on MQTT itself
            self.reports.report("ota", phase=action.phase, version=action.version, percent=action.percent,
                                reason=action.reason)  # fmt: skip
        elif isinstance(action, Reboot):
            self._reboot(action.reason, action.noinit)
        else:
            self.reports.report("ignored", action=type(action).__name__)

    def _program(self, write: FlashWrite) -> None:
        """One page-program unit; with a program time the unit lands when programming completes."""
        if self.config.program_time <= 0:
            self.flash.program(write.offset, write.data)
            return
        when = self.scheduler.now() + self.config.program_time
        self._programming = self.scheduler.call_at(when, partial(self._programmed, write))

    def _programmed(self, write: FlashWrite) -> None:
        self._programming = None
        self.flash.program(write.offset, write.data)
        self._pump()

    def _reboot(self, reason: str, noinit: bytes) -> None:
        """A software reset: a new core from flash, given the noinit RAM the old one left (a power cut
        ends the process instead, and the next process starts without it)."""
        for name in list(self.timers):
            self._cancel(name)
        self.held.clear()
        self.actions.clear()
        self.net.reset()  # whatever the old core did not close cleanly is dropped
        self.http.reset()  # downloads of the old core are abandoned
        # The old core's timer expiries and network events die with it; typed input reaches the
        # new core (which boots).
        self.events = deque(e for e in self.events if isinstance(e, ConsoleInput))
        self.reboots += 1
        self.reports.report("reboot", reason=reason)
        self.device = self._new_core()
        wall = self.scheduler.wall_offset()
        self.events.appendleft(PowerOn(reason, self.entropy.getrandbits(64), wall, noinit))

    def _stop(self) -> None:
        for name in list(self.timers):
            self._cancel(name)
        if self._programming is not None:
            self.scheduler.cancel(self._programming)
            self._programming = None
        self.device = None
        self.held.clear()
        self.actions.clear()
        self.events.clear()
        self.tx.clear()
        self.console.watch_writable(False)
        self.net.reset()
        self.http.reset()

    # ------------------------------------------------------------------ timers

    def _cancel(self, name: str) -> None:
        handle = self.timers.pop(name, None)
        if handle is not None:
            self.scheduler.cancel(handle)
        if name in self.held:
            self.held.remove(name)
        self.events = deque(e for e in self.events if e != TimerFired(name))

    def _fire(self, name: str) -> None:
        self.timers.pop(name, None)
        if len(self.tx) > HIGH_WATER:
            self.held.append(name)
            return
        self.feed(TimerFired(name))

    def _release_held(self) -> None:
        while self.held and len(self.tx) <= HIGH_WATER:
            self.feed(TimerFired(self.held.pop(0)))

    # ------------------------------------------------------------------ console

    def _transmit(self, data: bytes) -> None:
        room = TX_LIMIT - len(self.tx)
        if room < len(data):
            self.tx_dropped += len(data) - max(room, 0)
            data = data[: max(room, 0)]
        was_empty = not self.tx
        self.tx += data
        if was_empty and self.tx:
            self._flush()

    def _flush(self) -> None:
        try:
            while self.tx:
                sent = self.console.send(bytes(self.tx[:SEND_CHUNK]))
                if sent <= 0:
                    break
                del self.tx[:sent]
        except OSError:
            self.tx_dropped += len(self.tx)
            self.tx.clear()
        self.console.watch_writable(bool(self.tx))
        if self.held and len(self.tx) <= HIGH_WATER:
            # Never feed the core from inside another event's action list: keep actions in order.
            self.scheduler.call_soon(self._release_held)
