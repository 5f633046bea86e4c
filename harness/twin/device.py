"""The twin's firmware core: bootloader, application shell and flash, as one sans-IO state machine.

``Device.handle(event, now)`` is the only entry point. It never sleeps, reads a clock, touches a
file or a socket: ``now`` is the caller's clock (real or simulated) and every effect comes back
as an :mod:`action <harness.twin.events>` for the runtime to execute in order.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from harness.twin import commands, heap
from harness.twin.bootloader import decide_boot
from harness.twin.dump import DumpJob
from harness.twin.events import (
    Action,
    CancelTimer,
    ConsoleInput,
    ConsoleOutput,
    Event,
    Halt,
    NetConnected,
    NetDisconnected,
    NetMessage,
    NetPublished,
    PowerOn,
    Reboot,
    StartTimer,
    StateChange,
    TimerFired,
)
from harness.twin.flash import Flash, FlashLayout
from harness.twin.heap import heap_free
from harness.twin.http_events import HttpEvent
from harness.twin.image import ImageInfo
from harness.twin.noinit import load_outbox, save_outbox
from harness.twin.ota_client import TIMERS as OTA_TIMERS
from harness.twin.ota_client import OtaAgent
from harness.twin.ota_jobs import job_topic
from harness.twin.records import BootControl, read_config, write_bootctl
from harness.twin.session import TIMERS as SESSION_TIMERS
from harness.twin.session import MqttSession
from harness.twin.settings import load as load_settings
from harness.twin.shell import LineEditor
from harness.twin.states import BOOTING, BUSY, HALTED, OFF, RESET, RUNNING, STOPPING, IllegalMove, legal_move
from harness.twin.telemetry import Identity
from harness.twin.trial import extra_boot_time

PROMPT = b"twin> "
BOOT_DONE = "BOOT-DONE"
DEFAULT_BOOT_TIME = 0.05
BACKLOG_LIMIT = 1024  # bytes of console input buffered while busy (a UART RX FIFO + driver ring)
BOOT_TIMER = "boot"
DUMP_TIMER = "dump"
DRAIN_TIMER = "reset.drain"
#: Seconds a software reset waits for the PUBACKs of the reports in flight before it goes ahead (the
#: ones still unacknowledged are then carried to the next boot in noinit RAM and sent again).
RESET_DRAIN = 2.0


@dataclass(frozen=True)
class DeviceStatistics:
    """Counters of one core instance (a re-created core starts from zero)."""

    state: str
    boots: int
    flash_writes: int
    flash_bytes: int
    commands: int
    command_errors: int
    console_bytes_in: int
    console_bytes_out: int
    input_dropped: int


class Device:
    """One power-on lifetime of the reference device, built from the bytes its flash holds."""

    def __init__(
        self,
        flash: bytes | bytearray,
        *,
        layout: FlashLayout | None = None,
        device_id: str = "twin-0001",
        boot_time: float = DEFAULT_BOOT_TIME,
    ) -> None:
        self.layout = layout or FlashLayout.for_size(len(flash))
        self.flash = Flash(flash, self.layout)
        self.device_id = device_id
        self.boot_time = boot_time
        self.state = OFF
        self.rng = random.Random(0)
        self.boot_id = ""
        self.reset_cause = ""
        self.slot = ""
        self.image: ImageInfo | None = None
        self.bootctl = BootControl()
        self.config: dict[str, str] = {}
        self.powered_at = 0.0
        self.wall_offset = 0.0
        self.session: MqttSession | None = None
        self.editor = LineEditor()
        self.dump: DumpJob | None = None
        self.ota: OtaAgent | None = None  # OTA client and trial-boot logic (harness.twin.ota_client)
        self._timers: set[str] = set()
        self._pending_reset = ""  # the reason of the software reset waiting in state stopping
        self._backlog = bytearray()
        self._counts = dict.fromkeys(
            ("boots", "commands", "command_errors", "console_in", "console_out", "input_dropped"), 0
        )

    # ------------------------------------------------------------------ public

    def handle(self, event: Event, now: float) -> list[Action]:
        """Apply one event at time ``now``; return the actions to execute, in order."""
        move = legal_move(self.state, event)
        out: list[Action] = []
        getattr(self, "_on_" + move.handler)(event, now, out)
        if self.state not in move.next_states:
            raise IllegalMove(f"{type(event).__name__} in a legal state left the core in {self.state!r}")
        for action in out:
            if isinstance(action, ConsoleOutput):
                self._counts["console_out"] += len(action.data)
        return out

    def statistics(self) -> DeviceStatistics:
        c = self._counts
        return DeviceStatistics(
            state=self.state,
            boots=c["boots"],
            flash_writes=self.flash.writes,
            flash_bytes=self.flash.bytes_written,
            commands=c["commands"],
            command_errors=c["command_errors"],
            console_bytes_in=c["console_in"],
            console_bytes_out=c["console_out"],
            input_dropped=c["input_dropped"],
        )

    def uptime(self, now: float) -> float:
        return max(0.0, now - self.powered_at)

    # ------------------------------------------------------------------ helpers for commands

    def say(self, out: list[Action], line: str) -> None:
        out.append(ConsoleOutput(line.encode() + b"\r\n"))

    def error(self, out: list[Action], message: str) -> None:
        self._counts["command_errors"] += 1
        self.say(out, "ERR " + message)

    def start_timer(self, out: list[Action], name: str, delay: float) -> None:
        self._timers.add(name)
        out.append(StartTimer(name, delay))

    def cancel_timer(self, out: list[Action], name: str) -> None:
        if name in self._timers:
            self._timers.discard(name)
            out.append(CancelTimer(name))

    def start_dump(self, out: list[Action], requested: int) -> None:
        self.dump = DumpJob(requested)
        self.state = BUSY
        out.append(StateChange("busy"))
        self._pump_dump(out)

    def reboot(self, out: list[Action], reason: str, now: float, *, crashed: bool = False) -> None:
        """A software or watchdog reset: RAM marked noinit (the reports not sent yet) survives it.
        ``crashed``: the application died first, so the connection just ends (no goodbye).

        A software reset with reports in flight on a live connection first waits, at most
        :data:`RESET_DRAIN` seconds, for their PUBACKs (state ``stopping``: every timer stopped,
        nothing new sent, console input dropped), as firmware flushes its MQTT client before
        ``esp_restart()``: the ``rebooting`` report must not die with the connection."""
        session = self.session
        if not crashed and session is not None and session.reports_in_flight():
            self._stop_timers(out)
            session.drain()
            self.state = STOPPING
            self._pending_reset = reason
            self.start_timer(out, DRAIN_TIMER, RESET_DRAIN)
            return
        self._reset(out, reason, now, crashed=crashed)

    def _reset(self, out: list[Action], reason: str, now: float, *, crashed: bool = False,
               carry_in_flight: bool = False) -> None:  # fmt: skip
        noinit = b""
        if self.session is not None:
            if crashed:
                self.session.crash(out)
            else:  # status offline + DISCONNECT go out before the reset
                self.session.shutdown(now, out, carry_in_flight=carry_in_flight)
            noinit = save_outbox(self.session.unsent())
        self._stop_timers(out)
        self.state = RESET
        out.append(Reboot(reason, noinit))

    def _stop_timers(self, out: list[Action]) -> None:
        for name in sorted(self._timers):
            out.append(CancelTimer(name))
        self._timers.clear()

    def _drained(self, now: float, out: list[Action]) -> None:
        """Stopping: the reset goes ahead once nothing waits for a PUBACK (or the connection is gone)."""
        assert self.session is not None
        if not self.session.reports_in_flight():
            self._reset(out, self._pending_reset, now)  # cancels the drain timer with the rest

    # ------------------------------------------------------------------ move handlers

    def _on_power_on(self, event: PowerOn, now: float, out: list[Action]) -> None:
        self.rng = random.Random(event.entropy)
        self.boot_id = f"{self.rng.getrandbits(64):016x}"
        self.reset_cause = event.reset_cause
        self.powered_at = now
        self.wall_offset = event.wall_offset
        self._counts["boots"] += 1
        out.append(StateChange("boot"))
        decision = decide_boot(self.flash, event.reset_cause)
        if decision.slot is None or decision.image is None or decision.record is None:
            # Reports come before the console lines they explain: whoever reads "halting" on the
            # console already sees the halted current draw.
            self.state = HALTED
            out.append(Halt("no bootable image"))
            for line in decision.log:
                self.say(out, line)
            return
        for line in decision.log:
            self.say(out, line)
        self.slot, self.image = decision.slot, decision.image
        out.extend(write_bootctl(self.flash, decision.record))
        self.bootctl = decision.record
        self.config = read_config(self.flash)
        settings, warnings = load_settings(self.config)
        for line in warnings:
            self.say(out, line)
        self.session = MqttSession(
            settings,
            Identity(self.device_id, self.boot_id, self.image.version),
            powered_at=now,
            wall_offset=self.wall_offset,
            rng=random.Random(self.rng.getrandbits(64)),
            timers=self,
            heap_free=lambda at: heap_free(self, at),
            subscriptions=(job_topic(self.device_id),),
            inbox=self._on_message,
            carried=load_outbox(event.noinit),
        )
        self.state = BOOTING
        self.ota = OtaAgent(self)
        self.start_timer(out, BOOT_TIMER, self.boot_time + extra_boot_time(self.image))

    def _on_ignore_input(self, event: ConsoleInput, now: float, out: list[Action]) -> None:
        self._counts["console_in"] += len(event.data)
        self._counts["input_dropped"] += len(event.data)

    def _on_console_input(self, event: ConsoleInput, now: float, out: list[Action]) -> None:
        self._counts["console_in"] += len(event.data)
        if self.state == BUSY:
            self._buffer_input(event.data)
            return
        self._process_input(bytes(event.data), now, out)

    def _on_timer(self, event: TimerFired, now: float, out: list[Action]) -> None:
        if event.name not in self._timers:
            raise IllegalMove(f"TimerFired({event.name!r}) but no such timer is pending ({self.state!r})")
        self._timers.discard(event.name)
        if self.state == STOPPING:
            if event.name != DRAIN_TIMER:
                raise IllegalMove(f"TimerFired({event.name!r}) while stopping: only {DRAIN_TIMER!r} is pending")
            self._reset(out, self._pending_reset, now, carry_in_flight=True)  # no PUBACK in time
        elif event.name == BOOT_TIMER and self.state == BOOTING:
            assert self.ota is not None
            if not self.ota.app_start(now, out):
                return  # the application crashed at start; the watchdog timer resets the board
            self.state = RUNNING
            out.append(StateChange("idle"))  # before the marker: whoever sees the prompt sees idle draw
            self.say(out, BOOT_DONE)
            out.append(ConsoleOutput(PROMPT))
            assert self.session is not None
            self.session.start(now, out)
            self.ota.app_started(now, out)
            if self.state == RUNNING:
                heap.arm(self, now, out)
        elif event.name in OTA_TIMERS and self.ota is not None:
            self.ota.on_timer(event.name, now, out)
        elif event.name in SESSION_TIMERS and self.session is not None:
            self.session.on_timer(event.name, now, out)
        elif event.name == heap.HEAP_TIMER:
            if heap.on_timer(self, now, out):
                self.reboot(out, "watchdog", now, crashed=True)
        elif event.name == DUMP_TIMER and self.dump is not None:
            self._pump_dump(out)
            if self.state == RUNNING:
                out.append(ConsoleOutput(PROMPT))
                backlog, self._backlog = bytes(self._backlog), bytearray()
                self._process_input(backlog, now, out)
        else:
            raise IllegalMove(f"TimerFired({event.name!r}) has no meaning in state {self.state!r}")

    def _on_http(self, event: HttpEvent, now: float, out: list[Action]) -> None:
        assert self.ota is not None
        self.ota.on_http(event, now, out)

    def _on_net(self, event: NetConnected | NetDisconnected | NetPublished | NetMessage, now: float,
                out: list[Action]) -> None:  # fmt: skip
        assert self.session is not None
        self.session.on_net(event, now, out)
        if self.state == STOPPING:
            self._drained(now, out)

    def _on_ignore_http(self, event: HttpEvent, now: float, out: list[Action]) -> None:
        """A download's news while stopping: the reset is about to end it (the next boot resumes it)."""

    def _on_message(self, topic: str, payload: bytes, retained: bool, now: float, out: list[Action]) -> None:
        """A message on a subscribed topic: the only one today is this device's OTA job topic (not
        acted on while stopping: the job is redelivered, retained, to the next boot)."""
        if self.state == STOPPING:
            return
        if self.ota is not None and topic == job_topic(self.device_id):
            self.ota.on_job_message(payload, now, out)

    # ------------------------------------------------------------------ internals

    def _buffer_input(self, data: bytes) -> None:
        room = BACKLOG_LIMIT - len(self._backlog)
        self._backlog += data[:room]
        self._counts["input_dropped"] += max(0, len(data) - room)

    def _process_input(self, data: bytes, now: float, out: list[Action]) -> None:
        while data and self.state == RUNNING:
            fed = self.editor.feed(data)
            data = data[fed.consumed :]
            if fed.echo:
                out.append(ConsoleOutput(fed.echo))
            if fed.line is None:
                continue
            if fed.line.strip():
                self._counts["commands"] += 1
                commands.run(self, fed.line, now, out)
            if self.state == RUNNING:
                out.append(ConsoleOutput(PROMPT))
        if data and self.state == BUSY:
            self._buffer_input(data)

    def _pump_dump(self, out: list[Action]) -> None:
        job = self.dump
        assert job is not None
        out.append(ConsoleOutput(job.next_chunk()))
        if not job.done:
            self.start_timer(out, DUMP_TIMER, 0.0)
            return
        self.dump = None
        self.state = RUNNING
        out.append(StateChange("idle"))
        self.say(out, job.trailer())
