"""The twin's rig process: a pty console, a SCPI power supply on TCP, and the board behind them.

The rig owns both ends of a pseudo-terminal (slave in raw mode) for its whole life, a flash file,
and one board host process (:mod:`harness.twin.child`). Output ON on the twin's channel asks the
host to fork a board process; output OFF (or a voltage below the brownout threshold) SIGKILLs it
at once, mid flash write if it was writing. While no board runs, the rig reads and discards
console input: a dead board hears nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import signal
import subprocess
import sys
import tempfile
import tty
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

from harness.twin.factory import factory_flash
from harness.twin.flash import FlashLayout
from harness.twin.power import PowerModel
from harness.twin.scpi import Session, split_units
from harness.twin.supply import PowerSupply

log = logging.getLogger("harness.twin.rig")
_T = TypeVar("_T")

START_TIMEOUT = 15.0  # the board host imports Python modules once; generous for a loaded machine
SPAWN_TIMEOUT = 10.0
KILL_TIMEOUT = 5.0
SCPI_LINE_LIMIT = 64 * 1024


class RigError(Exception):
    """The rig cannot start or keep running; the message is one line for the user."""


@dataclass(frozen=True)
class RigOptions:
    """Everything ``serve`` can configure."""

    flash: Path | None = None
    host: str = "127.0.0.1"
    scpi_port: int = 0
    power_on: bool = True
    device_id: str = "twin-0001"
    boot_time: float = 0.05
    seed: int | None = None
    slot_pages: int = 512
    channel: int = 1
    nominal_voltage: float = 3.3
    brownout_voltage: float = 2.7
    current_limit: float = 0.5
    program_time: float = 0.0


@dataclass
class RigStatistics:
    """Counters over the rig's life (logged on close)."""

    power_ons: int = 0
    power_offs: int = 0
    brownouts: int = 0
    board_faults: int = 0
    scpi_clients: int = 0
    scpi_units: int = 0


class _Pipe:
    """Line-oriented JSON reader on a pipe fd, driven by the event loop."""

    def __init__(self, fd: int, on_message: Callable[[dict[str, object]], None]) -> None:
        self.fd = fd
        self.on_message = on_message
        self.pending = b""

    def readable(self) -> None:
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        self.pending += data
        *lines, self.pending = self.pending.split(b"\n")
        for line in lines:
            if line.strip():
                self.on_message(json.loads(line))


class TwinRig:
    """Start with :meth:`start`, stop with :meth:`close`; ``failed`` is set if the host process dies."""

    def __init__(self, options: RigOptions) -> None:
        self.options = options
        self.layout = FlashLayout(slot_pages=options.slot_pages)
        self.power = PowerModel(seed=options.seed)
        self.supply = PowerSupply(
            serial=options.device_id.upper(),
            draw=self._draw,
            defaults={options.channel: (options.nominal_voltage, options.current_limit)},
        )
        self.failed = asyncio.Event()
        self.flash_path = Path()
        self._owns_flash = False
        self._master = self._slave = -1
        self._events_r = self._control_w = -1
        self._host: subprocess.Popen[bytes] | None = None
        self._host_pidfd = -1
        self._server: asyncio.Server | None = None
        self._lock = asyncio.Lock()
        self._waiters: dict[tuple[str, int], asyncio.Future[dict[str, object]]] = {}
        self._generation = 0
        self._board_pid: int | None = None
        self._board_pidfd = -1
        self._board_exit: asyncio.Future[None] | None = None
        self._powered = False
        self._next_cause = "power-on"
        self._draining = False
        self._closing = False
        self.console_path = ""
        self.scpi_port = 0
        self._stats = RigStatistics()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> dict[str, object]:
        """Open pty, flash, host process and SCPI server; apply initial power; return the ready line."""
        loop = asyncio.get_running_loop()
        self._open_flash()
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self.console_path = os.ttyname(self._slave)
        await self._start_host(loop)
        self._drain(True)
        try:
            self._server = await asyncio.start_server(
                self._client, self.options.host, self.options.scpi_port, limit=SCPI_LINE_LIMIT
            )
        except OSError as error:
            raise RigError(f"cannot listen on {self.options.host}:{self.options.scpi_port}: {error}") from None
        self.scpi_port = self._server.sockets[0].getsockname()[1]
        if self.options.power_on:
            self.supply.channel(self.options.channel).output = True
            await self.apply_power()
        return {
            "event": "ready",
            "console": self.console_path,
            "scpi": f"TCPIP::{self.options.host}::{self.scpi_port}::SOCKET",
            "scpi_host": self.options.host,
            "scpi_port": self.scpi_port,
            "channel": self.options.channel,
            "flash": str(self.flash_path),
            "pid": os.getpid(),
        }

    async def close(self) -> None:
        """Kill the board, stop the host, close every fd; remove a temporary flash file."""
        self._closing = True
        if self._server is not None:
            log.info("rig statistics: %s", self.statistics())
        if self._server is not None:
            self._server.close()
        with contextlib.suppress(RigError):
            await self._kill_board()
        loop = asyncio.get_running_loop()
        if self._master >= 0:
            self._drain(False)
        for fd in (self._events_r, self._host_pidfd):
            if fd >= 0:
                loop.remove_reader(fd)
        if self._control_w >= 0:
            os.close(self._control_w)  # EOF: the host kills and reaps its boards, then exits
            self._control_w = -1
        if self._host is not None:
            try:
                await asyncio.wait_for(loop.run_in_executor(None, self._host.wait), KILL_TIMEOUT)
            except TimeoutError:
                self._host.kill()
                self._host.wait()
        for fd in (self._events_r, self._host_pidfd, self._master, self._slave):
            if fd >= 0:
                os.close(fd)
        self._events_r = self._host_pidfd = self._master = self._slave = -1
        if self._owns_flash:
            self.flash_path.unlink(missing_ok=True)

    def statistics(self) -> RigStatistics:
        """A snapshot of the rig's counters."""
        return replace(self._stats)

    # ------------------------------------------------------------------ setup helpers

    def _open_flash(self) -> None:
        path = self.options.flash
        if path is None:
            handle, name = tempfile.mkstemp(prefix="twin-flash-", suffix=".bin")
            os.close(handle)
            path, self._owns_flash = Path(name), True
            path.unlink()
        self.flash_path = path.resolve()
        if not path.exists():
            try:
                path.write_bytes(factory_flash(self.layout))
            except OSError as error:
                raise RigError(f"flash: cannot create {path}: {error.strerror}") from None
            except ValueError as error:
                raise RigError(f"flash: {error}") from None
            log.info("flash %s created, factory image 1.0.0 in slot A", path)
            return
        size = path.stat().st_size
        if size != self.layout.total_size:
            raise RigError(
                f"flash: {path} is {size} bytes; --slot-pages {self.options.slot_pages} "
                f"needs {self.layout.total_size} (delete it or pass the slot size it was made with)"
            )

    async def _start_host(self, loop: asyncio.AbstractEventLoop) -> None:
        events_r, events_w = os.pipe()
        control_r, control_w = os.pipe()
        self._events_r, self._control_w = events_r, control_w
        os.set_blocking(events_r, False)
        args = [
            sys.executable, "-m", "harness.twin.child",
            "--flash", str(self.flash_path),
            "--console-fd", str(self._master),
            "--events-fd", str(events_w),
            "--control-fd", str(control_r),
            "--parent", str(os.getpid()),
            "--slot-pages", str(self.options.slot_pages),
            "--boot-time", repr(self.options.boot_time),
            "--device-id", self.options.device_id,
            "--program-time", repr(self.options.program_time),
        ]  # fmt: skip
        ready = self._expect("host-ready", 0)
        self._host = subprocess.Popen(
            args, pass_fds=(self._master, events_w, control_r), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        os.close(events_w)
        os.close(control_r)
        loop.add_reader(events_r, _Pipe(events_r, self._on_event).readable)
        self._host_pidfd = os.pidfd_open(self._host.pid)
        loop.add_reader(self._host_pidfd, self._on_host_exit)
        await self._await(ready, START_TIMEOUT, "the board host process to start")

    # ------------------------------------------------------------------ power

    def _draw(self, channel: int) -> float:
        if channel != self.options.channel or not self._powered:
            return 0.0
        return self.power.current(alive=self._board_pid is not None)

    async def apply_power(self) -> None:
        """Make the board match the twin channel: powered iff output on and voltage >= brownout."""
        channel = self.supply.channel(self.options.channel)
        want = channel.output and channel.voltage >= self.options.brownout_voltage
        if want == self._powered:
            return
        if want:
            await self._spawn_board(self._next_cause)
        else:
            self._next_cause = "brownout" if channel.output else "power-on"
            self._stats.power_offs += 1
            self._stats.brownouts += channel.output
            log.info("power: %s, board killed", "brownout" if channel.output else "output off")
            await self._kill_board()

    async def _spawn_board(self, reset_cause: str) -> None:
        self._generation += 1
        gen = self._generation
        if self.options.seed is None:
            entropy = int.from_bytes(os.urandom(8), "little")
        else:
            entropy = random.Random(f"{self.options.seed}:{gen}").getrandbits(64)
        self._drain(False)
        self._powered = True
        self.power.activity = "boot"
        spawned = self._expect("spawned", gen)
        request = {"cmd": "spawn", "gen": gen, "reset_cause": reset_cause, "entropy": entropy}
        os.write(self._control_w, (json.dumps(request) + "\n").encode())
        message = await self._await(spawned, SPAWN_TIMEOUT, f"the board process of power-on #{gen}")
        pid = int(str(message["pid"]))
        loop = asyncio.get_running_loop()
        self._board_exit = loop.create_future()
        try:
            self._board_pidfd = os.pidfd_open(pid)
        except ProcessLookupError:  # died before we could watch it (a firmware fault at start-up)
            self._board_exit.set_result(None)
            self.power.activity = "off"
            self._drain(True)
            return
        self._board_pid = pid
        loop.add_reader(self._board_pidfd, self._on_board_exit)
        self._stats.power_ons += 1
        log.info("power: on (%s), board pid %d", reset_cause, pid)

    async def _kill_board(self) -> None:
        self._powered = False
        self.power.activity = "off"
        if self._board_pid is not None and self._board_exit is not None:
            signal.pidfd_send_signal(self._board_pidfd, signal.SIGKILL)
            await self._await(self._board_exit, KILL_TIMEOUT, f"board process {self._board_pid} to die")
        if not self._closing:
            self._drain(True)

    def _on_board_exit(self) -> None:
        loop = asyncio.get_running_loop()
        loop.remove_reader(self._board_pidfd)
        os.close(self._board_pidfd)
        self._board_pidfd = -1
        if self._powered:
            self._stats.board_faults += 1
            log.warning("board process %s exited while powered (firmware fault)", self._board_pid)
        self._board_pid = None
        self.power.activity = "off"
        if self._board_exit is not None and not self._board_exit.done():
            self._board_exit.set_result(None)
        if not self._closing:
            self._drain(True)

    def _on_host_exit(self) -> None:
        asyncio.get_running_loop().remove_reader(self._host_pidfd)
        if not self._closing:
            log.error("board host process exited unexpectedly; the rig cannot power the board any more")
            self.failed.set()

    # ------------------------------------------------------------------ host reports

    def _expect(self, event: str, gen: int) -> asyncio.Future[dict[str, object]]:
        future: asyncio.Future[dict[str, object]] = asyncio.get_running_loop().create_future()
        self._waiters[(event, gen)] = future
        return future

    async def _await(self, future: asyncio.Future[_T], timeout: float, what: str) -> _T:
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            raise RigError(f"timed out after {timeout:g} s waiting for {what}") from None

    def _on_event(self, message: dict[str, object]) -> None:
        event = str(message.get("event"))
        gen = int(str(message.get("gen", 0)))
        waiter = self._waiters.pop((event, gen), None)
        if waiter is not None and not waiter.done():
            waiter.set_result(message)
        if gen != self._generation or gen == 0:
            return
        if event == "state":
            self.power.activity = str(message["state"])
        elif event == "halt":
            self.power.activity = "halt"
            log.warning("board halted: %s", message.get("reason"))
        elif event == "reboot":
            log.info("board rebooting: %s", message.get("reason"))
        elif event == "fault":
            log.error("board fault: %s", message.get("reason"))

    # ------------------------------------------------------------------ console drain while dead

    def _drain(self, on: bool) -> None:
        if on == self._draining:
            return
        loop = asyncio.get_running_loop()
        if on:
            loop.add_reader(self._master, self._discard)
        else:
            loop.remove_reader(self._master)
        self._draining = on

    def _discard(self) -> None:
        with contextlib.suppress(BlockingIOError, InterruptedError):
            os.read(self._master, 65536)

    # ------------------------------------------------------------------ SCPI clients

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = Session()
        self._stats.scpi_clients += 1
        try:
            while not reader.at_eof():
                try:
                    raw = await reader.readuntil(b"\n")
                except asyncio.IncompleteReadError as partial:
                    raw = partial.partial
                    if not raw.strip():
                        break
                reply = await self._execute(raw.decode("ascii", "replace"), session)
                if reply is not None:
                    writer.write(reply.encode() + b"\n")
                    await writer.drain()
        except asyncio.LimitOverrunError:
            log.warning("SCPI client sent a line longer than %d bytes; disconnected", SCPI_LINE_LIMIT)
        except (ConnectionError, RigError) as error:
            log.warning("SCPI client: %s", error)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _execute(self, line: str, session: Session) -> str | None:
        """Run a line unit by unit, applying power after each so ``OUTP OFF;OUTP ON`` power-cycles."""
        replies = []
        async with self._lock:
            for unit in split_units(line):
                self._stats.scpi_units += 1
                reply = self.supply.execute_unit(unit, session)
                await self.apply_power()
                if reply is not None:
                    replies.append(reply)
        return ";".join(replies) if replies else None
