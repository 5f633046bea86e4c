"""The process host of one board: the pure runtime on asyncio, with real executors.

Inside the board process (forked by :mod:`harness.twin.child`) this wires
:class:`~harness.twin.runtime.BoardRuntime` to the real world: asyncio's loop is its scheduler (and
``time.time()`` minus the loop's clock its wall offset, so telemetry carries Unix timestamps without
the core reading a clock); the pty master is its console (non-blocking writes, the loop's writer
callback when it drains); the flash file is written with ``os.pwrite`` one program unit at a time (a
SIGKILL between two leaves a half-programmed record, like a power cut); network actions go to
paho-mqtt on this same loop (:mod:`harness.twin.netlink`) and OTA downloads to asyncio streams
(:mod:`harness.twin.http_host`), both created here, after the fork; activity, halts, OTA status and
reboots are reported to the rig over a pipe as JSON lines. A power cut kills the process, so a fresh
process starts without the previous one's noinit RAM.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from harness.twin.events import ConsoleInput, Event
from harness.twin.flash import FlashLayout
from harness.twin.http_host import HttpLink
from harness.twin.netlink import MqttLink
from harness.twin.runtime import BoardRuntime, RuntimeConfig

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


class LoopScheduler:
    """The runtime's scheduler on an asyncio loop (its monotonic clock)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def now(self) -> float:
        return self.loop.time()

    def wall_offset(self) -> float:
        return time.time() - self.loop.time()

    def call_at(self, when: float, callback: Callable[[], None]) -> object:
        return self.loop.call_at(when, callback)

    def call_soon(self, callback: Callable[[], None]) -> None:
        self.loop.call_soon(callback)

    def cancel(self, handle: object) -> None:
        assert isinstance(handle, asyncio.TimerHandle)
        handle.cancel()


class PtyConsole:
    """The console's transmit side on the (non-blocking) pty master."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int, writable: Callable[[], None]) -> None:
        self.loop, self.fd, self.writable = loop, fd, writable

    def send(self, data: bytes) -> int:
        try:
            return os.write(self.fd, data)
        except BlockingIOError:
            return 0

    def watch_writable(self, on: bool) -> None:
        if on:
            self.loop.add_writer(self.fd, self.writable)
        else:
            self.loop.remove_writer(self.fd)


class FileFlash:
    """The flash file: read whole for every new core, programmed a unit at a time with ``os.pwrite``."""

    def __init__(self, fd: int, size: int) -> None:
        self.fd, self.size = fd, size

    def read(self) -> bytes:
        return os.pread(self.fd, self.size, 0)

    def program(self, offset: int, data: bytes) -> None:
        os.pwrite(self.fd, data, offset)


class PipeReports:
    """Reports to the rig: one JSON line each on the events pipe, tagged with this board's generation."""

    def __init__(self, fd: int, generation: int) -> None:
        self.fd, self.generation = fd, generation

    def report(self, event: str, **fields: object) -> None:
        message = json.dumps({"gen": self.generation, "event": event, **fields}, separators=(",", ":")) + "\n"
        os.write(self.fd, message.encode())

    def fault(self, event: Event, error: Exception) -> None:
        traceback.print_exception(error, file=sys.stderr)
        self.report("fault", reason=f"firmware core raised on {type(event).__name__}")
        os._exit(FAULT_EXIT)


class FirmwareHost:
    """Runs one board process: the runtime, its executors, and the pty's input."""

    def __init__(self, config: HostConfig, generation: int) -> None:
        self.config = config
        self.generation = generation
        self.layout = FlashLayout(slot_pages=config.slot_pages)
        self.flash_fd = os.open(config.flash_path, os.O_RDWR)
        self.runtime: BoardRuntime | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    async def run(self, reset_cause: str, entropy: int) -> None:
        """Power on and serve until the process is killed (that is how a board stops)."""
        self.loop = loop = asyncio.get_running_loop()
        config = self.config
        self.runtime = runtime = BoardRuntime(
            RuntimeConfig(self.layout, config.device_id, config.boot_time, config.program_time),
            LoopScheduler(loop),
            console=PtyConsole(loop, config.console_fd, self._console_writable),
            flash=FileFlash(self.flash_fd, self.layout.total_size),
            net=MqttLink(loop, self._feed),
            http=HttpLink(loop, self._feed),
            reports=PipeReports(config.events_fd, self.generation),
        )
        os.set_blocking(config.console_fd, False)
        loop.add_reader(config.console_fd, self._on_readable)
        runtime.power_on(reset_cause, entropy)
        await loop.create_future()

    def _feed(self, event: Event) -> None:
        assert self.runtime is not None
        self.runtime.feed(event)

    def _console_writable(self) -> None:
        assert self.runtime is not None
        self.runtime.console_writable()

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
