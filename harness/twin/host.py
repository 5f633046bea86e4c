"""The firmware's asyncio runtime inside the board process: pty bytes in, actions out.

Executes the core's actions for real: console output to the pty master (non-blocking, with a bounded
transmit buffer), flash writes with ``os.pwrite`` one program unit at a time (a SIGKILL between two
leaves a half-programmed record, like a power cut), timers with ``loop.call_later``, Reboot by
rebuilding the core from the flash file and handing it the old core's noinit RAM (``Reboot.noinit`` ->
``PowerOn.noinit``; a power cut kills the process, so a fresh process starts without it), network
actions (publish, subscribe, messages in) with paho-mqtt on this same loop (:mod:`harness.twin.netlink`,
created here, after the fork), and activity/halt reports to the rig over a pipe as JSON lines. Every
power-on tells the core the wall-clock offset of the loop's clock, so its telemetry carries Unix
timestamps without the core reading a clock. Timers are held back while the transmit buffer is above
its high-water mark, so a long ``dump`` streams at the pace of whoever reads the console.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
import traceback
from collections import deque
from dataclasses import dataclass

from harness.twin.device import Device
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
from harness.twin.flash import FlashLayout
from harness.twin.http_events import HttpCancel, HttpGet, OtaStatus
from harness.twin.http_host import HttpLink
from harness.twin.netlink import MqttLink

HIGH_WATER = 64 * 1024  # hold timers back above this many untransmitted bytes
TX_LIMIT = 1024 * 1024  # drop output beyond this (nobody is reading the console)
READ_SIZE = 4096
FAULT_EXIT = 70


@dataclass(frozen=True)
class HostConfig:
    """What every board process needs: where flash, console and the report pipe are."""

    flash_path: str
    console_fd: int
    events_fd: int
    slot_pages: int
    boot_time: float
    device_id: str
    program_time: float = 0.0  # seconds per page-program unit; the CPU stalls meanwhile


class FirmwareHost:
    """Runs one board: a core per boot, rebuilt from flash on every Reboot action."""

    def __init__(self, config: HostConfig, generation: int) -> None:
        self.config = config
        self.generation = generation
        self.layout = FlashLayout(slot_pages=config.slot_pages)
        self.flash_fd = os.open(config.flash_path, os.O_RDWR)
        self.tx = bytearray()
        self.tx_dropped = 0
        self.timers: dict[str, asyncio.TimerHandle] = {}
        self.held: list[str] = []
        self.entropy = random.Random(0)
        self.device: Device | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.link: MqttLink | None = None  # the MQTT stack, created in the board process
        self.http: HttpLink | None = None  # OTA downloads (harness.twin.http_host)
        self.actions: deque[Action] = deque()  # returned by the core, not yet executed
        self.events: deque[Event] = deque()  # arrived while actions were still being executed
        self.programming = False
        self._pumping = False

    async def run(self, reset_cause: str, entropy: int) -> None:
        """Power on and serve until the process is killed (that is how a board stops)."""
        self.loop = asyncio.get_running_loop()
        self.link = MqttLink(self.loop, self._feed)
        self.http = HttpLink(self.loop, self._feed)
        self.entropy = random.Random(entropy)
        os.set_blocking(self.config.console_fd, False)
        self.loop.add_reader(self.config.console_fd, self._on_readable)
        self._power_on(reset_cause, entropy)
        await self.loop.create_future()

    # ------------------------------------------------------------------ core plumbing

    def _now(self) -> float:
        assert self.loop is not None
        return self.loop.time()

    def _wall_offset(self) -> float:
        """Unix time minus the loop's clock: the device's real-time clock, set at every power-on."""
        return time.time() - self._now()

    def _power_on(self, reset_cause: str, entropy: int) -> None:
        self.device = self._new_core()
        self._feed(PowerOn(reset_cause, entropy, self._wall_offset()))

    def _new_core(self) -> Device:
        """A fresh core from what the flash file holds now."""
        image = os.pread(self.flash_fd, self.layout.total_size, 0)
        return Device(image, layout=self.layout, device_id=self.config.device_id, boot_time=self.config.boot_time)

    def _feed(self, event: Event) -> None:
        """Queue an event; events are handled one at a time, after the previous event's actions ran."""
        self.events.append(event)
        self._pump()

    def _pump(self) -> None:
        if self._pumping:
            return
        self._pumping = True
        try:
            while not self.programming:
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
            self.actions.extend(self.device.handle(event, self._now()))
        except Exception:
            traceback.print_exc(file=sys.stderr)
            self._report(event="fault", reason=f"firmware core raised on {type(event).__name__}")
            os._exit(FAULT_EXIT)

    def _execute(self, action: Action) -> None:
        if isinstance(action, ConsoleOutput):
            self._transmit(action.data)
        elif isinstance(action, FlashWrite):
            self._program(action)
        elif isinstance(action, StartTimer):
            self._cancel(action.name)
            assert self.loop is not None
            self.timers[action.name] = self.loop.call_later(action.delay, self._fire, action.name)
        elif isinstance(action, CancelTimer):
            self._cancel(action.name)
        elif isinstance(action, StateChange):
            self._report(event="state", state=action.state)
        elif isinstance(action, Halt):
            self._report(event="halt", reason=action.reason)
        elif isinstance(action, NetConnect | NetPublish | NetSubscribe | NetDisconnect):
            assert self.link is not None
            self.link.execute(action)
        elif isinstance(action, HttpGet | HttpCancel):
            assert self.http is not None
            self.http.execute(action)
        elif isinstance(action, OtaStatus):  # for the rig; the core publishes it on MQTT itself
            self._report(event="ota", phase=action.phase, version=action.version, percent=action.percent,
                         reason=action.reason)  # fmt: skip
        elif isinstance(action, Reboot):
            self._reboot(action.reason, action.noinit)
        else:
            print(f"twin host: ignoring unknown action {action!r}", file=sys.stderr)

    def _program(self, write: FlashWrite) -> None:
        """One page-program unit; with a program time the unit lands when programming completes."""
        if self.config.program_time <= 0:
            os.pwrite(self.flash_fd, write.data, write.offset)
            return
        assert self.loop is not None
        self.programming = True
        self.loop.call_later(self.config.program_time, self._programmed, write)

    def _programmed(self, write: FlashWrite) -> None:
        os.pwrite(self.flash_fd, write.data, write.offset)
        self.programming = False
        self._pump()

    def _reboot(self, reason: str, noinit: bytes) -> None:
        """A software reset: a new core from flash, given the noinit RAM the old one left (a power cut
        ends the process instead, and the next process starts without it)."""
        for name in list(self.timers):
            self._cancel(name)
        self.held.clear()
        self.actions.clear()
        if self.link is not None:
            self.link.reset()  # whatever the old core did not close cleanly is dropped
        if self.http is not None:
            self.http.reset()  # downloads of the old core are abandoned
        # The old core's timer expiries and network events die with it; typed input reaches the
        # new core (which boots).
        self.events = deque(e for e in self.events if isinstance(e, ConsoleInput))
        self._report(event="reboot", reason=reason)
        self.device = self._new_core()
        self.events.appendleft(PowerOn(reason, self.entropy.getrandbits(64), self._wall_offset(), noinit))

    # ------------------------------------------------------------------ timers

    def _cancel(self, name: str) -> None:
        handle = self.timers.pop(name, None)
        if handle is not None:
            handle.cancel()
        if name in self.held:
            self.held.remove(name)
        self.events = deque(e for e in self.events if e != TimerFired(name))

    def _fire(self, name: str) -> None:
        self.timers.pop(name, None)
        if len(self.tx) > HIGH_WATER:
            self.held.append(name)
            return
        self._feed(TimerFired(name))

    # ------------------------------------------------------------------ console

    def _on_readable(self) -> None:
        try:
            data = os.read(self.config.console_fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            assert self.loop is not None
            self.loop.remove_reader(self.config.console_fd)
            return
        if data:
            self._feed(ConsoleInput(data))

    def _transmit(self, data: bytes) -> None:
        room = TX_LIMIT - len(self.tx)
        if room < len(data):
            self.tx_dropped += len(data) - max(room, 0)
            data = data[: max(room, 0)]
        was_empty = not self.tx
        self.tx += data
        if was_empty and self.tx:
            self._on_writable()

    def _on_writable(self) -> None:
        assert self.loop is not None
        fd = self.config.console_fd
        try:
            while self.tx:
                sent = os.write(fd, self.tx[: READ_SIZE * 16])
                del self.tx[:sent]
        except BlockingIOError:
            pass
        except OSError:
            self.tx_dropped += len(self.tx)
            self.tx.clear()
        if self.tx:
            self.loop.add_writer(fd, self._on_writable)
        else:
            self.loop.remove_writer(fd)
        if self.held and len(self.tx) <= HIGH_WATER:
            # Never feed the core from inside another event's action list: keep actions in order.
            self.loop.call_soon(self._release_held)

    def _release_held(self) -> None:
        while self.held and len(self.tx) <= HIGH_WATER:
            self._feed(TimerFired(self.held.pop(0)))

    # ------------------------------------------------------------------ reports to the rig

    def _report(self, **fields: object) -> None:
        message = json.dumps({"gen": self.generation, **fields}, separators=(",", ":")) + "\n"
        os.write(self.config.events_fd, message.encode())
