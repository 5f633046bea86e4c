"""A programmable power supply over VISA (pyvisa + the pure-Python pyvisa-py backend).

The same driver talks to a bench supply (``TCPIP::psu3::INSTR``, ``USB0::...``, ``ASRL/dev/ttyUSB0::INSTR``)
and to the twin's SCPI server (``TCPIP::127.0.0.1::<port>::SOCKET``). What differs between supply
families is data in :mod:`harness.drivers.scpi_dialects`. After every setting command the SCPI
error queue is drained; anything in it raises :class:`InstrumentError` naming the instrument and
the command. Every action is journaled as a ``power`` record.

A lost VISA session (the supply was power-cycled, its LAN or USB link dropped, or someone closed the
session) is reopened: up to ``len(reconnect_delays)`` attempts, each after its pause, then the
operation runs once more. Reopening re-applies nothing (no set points, no output state): the
supply is as its own power-on left it. When every attempt fails, ONE :class:`PowerError` line says
which supply, what was lost and what to check. The driver opens its sessions through a VISA
resource manager of its own, so code that closes pyvisa's shared manager cannot close them.

    with PowerSupply("TCPIP::127.0.0.1::5025::SOCKET", dialect="keysight-e36300", journal=j) as psu:
        psu.set(3.3, 0.5)
        psu.cycle(off_for=2.0)
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pyvisa
import pyvisa.errors
from pyvisa.constants import StatusCode
from pyvisa_py.highlevel import PyVisaLibrary

from harness.drivers.scpi_dialects import Dialect, get_dialect, parse_error_reply
from harness.errors import ConfigError, InstrumentError, PowerError
from harness.run.journal import Journal

#: Upper bound on error-queue entries read after one command (a real queue holds 16-32).
MAX_ERRORS = 64
#: Pauses before each attempt to reopen a lost session: three attempts over 3.5 s, long enough for a
#: supply's LAN interface to come back after a short drop, short enough to fail a run promptly.
RECONNECT_DELAYS = (0.5, 1.0, 2.0)
#: VISA status codes that mean the session is gone (not a slow or confused instrument: that is a timeout).
LOST_SESSION_CODES = frozenset({StatusCode.error_connection_lost, StatusCode.error_invalid_object, StatusCode.error_io})
#: What to do when a supply is gone for good (in every "lost" error).
WHAT_TO_DO = "check that the supply is powered and its LAN/USB link is up, then run `harness rig check` on the rig"
T = TypeVar("T")

_own_manager: pyvisa.ResourceManager | None = None


def resource_manager() -> pyvisa.ResourceManager:
    """The harness's own VISA resource manager (pyvisa-py), not the one ``pyvisa.ResourceManager("@py")`` shares.

    pyvisa keeps one resource manager per VISA library and closing it closes every session opened
    through it; a test or a tool that closes "its" ``ResourceManager("@py")`` would close the rig's
    supply. The harness opens its sessions through a library instance of its own instead, which no
    other code gets by asking pyvisa. It is never closed by the driver (pyvisa closes it at exit);
    if it was closed anyway, a new one is made.
    """
    global _own_manager
    manager = _own_manager
    if manager is None or manager.visalib.resource_manager is not manager:
        library = PyVisaLibrary("iot-harness")  # registry key (class, path): distinct from "@py"'s ("py")
        manager = pyvisa.ResourceManager(library)
        _own_manager = manager
    return manager


class Unreachable(PowerError):
    """The supply could not be opened (nothing answers at the resource, or it is malformed)."""

    def __init__(self, name: str, resource: str, reason: str) -> None:
        super().__init__(
            f"power {name}: cannot open {resource}: {reason} "
            "(is the supply on, reachable, and the resource string right?)"
        )
        self.reason = reason


class SessionLost(PowerError):
    """The VISA session of a supply is gone (raised inside the driver, answered by reopening)."""

    def __init__(self, message: str, command: str, reason: str) -> None:
        super().__init__(message)
        self.command = command
        self.reason = reason


@dataclass(frozen=True)
class Measurement:
    """One read-back of a channel's output."""

    volts: float
    amps: float


class PowerSupply:
    """One channel of a SCPI power supply: on/off/cycle, set, measure, with error-queue checks."""

    def __init__(
        self,
        resource: str,
        *,
        dialect: str = "generic",
        channel: int = 1,
        name: str = "psu",
        journal: Journal | None = None,
        timeout: float = 5.0,
        voltage: float | None = None,
        current_limit: float | None = None,
        reconnect_delays: tuple[float, ...] = RECONNECT_DELAYS,
    ) -> None:
        self.resource = resource
        self.dialect: Dialect = get_dialect(dialect)
        if not 1 <= channel <= self.dialect.max_channel:
            raise ConfigError(f"power channel: expected 1..{self.dialect.max_channel} for {dialect} (got {channel})")
        if (voltage is None) != (current_limit is None):
            raise ConfigError("power voltage/current_limit: expected both or neither (got only one)")
        self.channel = channel
        self.name = name
        self.journal = journal
        self.timeout = timeout
        self.voltage = voltage
        self.current_limit = current_limit
        if any(delay < 0 for delay in reconnect_delays):
            raise ConfigError(f"power reconnect_delays: expected seconds >= 0 (got {reconnect_delays})")
        self.reconnect_delays = tuple(reconnect_delays)
        self.idn = ""
        self._inst: Any = None
        self._stats = {"commands": 0, "queries": 0, "instrument_errors": 0, "reconnects": 0}

    # -- lifecycle -------------------------------------------------------------------------

    def open(self) -> PowerSupply:
        """Connect; apply ``voltage``/``current_limit`` if given. Raises :class:`PowerError`."""
        if self._inst is not None:
            return self
        self._connect()
        try:
            if self.voltage is not None and self.current_limit is not None:
                self.set(self.voltage, self.current_limit)
        except PowerError:
            self.close()
            raise
        return self

    def _connect(self) -> None:
        """Open the VISA session and read ``*IDN?`` (some transports connect lazily: fail here, not later)."""
        try:
            inst: Any = resource_manager().open_resource(self.resource, open_timeout=int(self.timeout * 1000))
            inst.timeout = int(self.timeout * 1000)
            inst.read_termination = "\n"
            inst.write_termination = "\n"
            _send_at_once(inst)
        except (pyvisa.errors.Error, OSError, ValueError) as exc:
            raise Unreachable(self.name, self.resource, str(exc)) from exc
        self._inst = inst
        try:
            self.idn = self._identify()
        except SessionLost as lost:  # never connected: not a lost session but an unreachable supply
            self.close()
            raise Unreachable(self.name, self.resource, lost.reason) from None
        except PowerError:
            self.close()
            raise

    def close(self) -> None:
        """Disconnect (the output stays as it is)."""
        inst, self._inst = self._inst, None
        if inst is not None:
            with contextlib.suppress(pyvisa.errors.Error, OSError):
                inst.close()

    def __enter__(self) -> PowerSupply:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the power protocol ----------------------------------------------------------------

    def on(self) -> None:
        """Switch the channel's output on."""
        self._do(self.dialect.output_on)
        self._journal("on")

    def off(self) -> None:
        """Switch the channel's output off."""
        self._do(self.dialect.output_off)
        self._journal("off")

    def cycle(self, off_for: float = 1.0) -> None:
        """Cut power for ``off_for`` seconds, then restore it (one ``cycle`` journal record)."""
        if off_for < 0:
            raise ConfigError(f"power cycle off_for: expected seconds >= 0 (got {off_for})")
        t_off = time.time()
        started = time.monotonic()
        self._do(self.dialect.output_off)
        time.sleep(off_for)  # the length of the power cut itself, not a wait for a condition
        self._do(self.dialect.output_on)
        self._journal("cycle", t=t_off, off_for=off_for, actual_off=round(time.monotonic() - started, 6))

    def set(self, volts: float, amps: float) -> None:
        """Program the voltage and the current limit."""
        if volts < 0 or amps < 0:
            raise ConfigError(f"power set: expected volts >= 0 and amps >= 0 (got {volts} V, {amps} A)")
        if self.dialect.apply is not None:
            self._do(self.dialect.apply, v=volts, a=amps)
        else:
            self._do(self.dialect.set_voltage, v=volts)
            self._do(self.dialect.set_current, a=amps)
        self.voltage, self.current_limit = volts, amps
        self._journal("set", volts=volts, amps=amps)

    def measure(self) -> Measurement:
        """Read back the output voltage and current."""
        volts = self._query_float(self.dialect.measure_voltage)
        amps = self._query_float(self.dialect.measure_current)
        if self.journal is not None:
            self.journal.record(
                "power", action="measure", channel=self.channel, volts=volts, amps=amps, source=self.name
            )
        return Measurement(volts, amps)

    def is_on(self) -> bool:
        """Whether the channel's output is on."""
        reply = self._query(self.dialect.output_query)
        try:
            return self.dialect.parse_output_state(reply, self.channel)
        except (ValueError, KeyError) as exc:
            raise PowerError(f"power {self.name} ({self.resource}): {exc}") from exc

    def identify(self) -> str:
        """The instrument's ``*IDN?`` string."""
        return self._run(self._identify)

    def statistics(self) -> dict[str, Any]:
        """Counters: commands and queries sent, instrument errors seen."""
        return {**self._stats, "resource": self.resource, "dialect": self.dialect.name, "open": self.is_open}

    @property
    def is_open(self) -> bool:
        return self._inst is not None

    # -- internals -------------------------------------------------------------------------

    def _identify(self) -> str:
        self._stats["queries"] += 1
        return str(self._visa("query", self.dialect.identify)).strip()

    def _do(self, template: str, **values: float) -> None:
        def send() -> None:
            for command in self.dialect.commands(template, self.channel, **values):
                self._write(command)
                self._check_errors(command)

        self._run(send)

    def _query(self, template: str) -> str:
        def ask() -> str:
            commands = self.dialect.commands(template, self.channel)
            for command in commands[:-1]:
                self._write(command)
            self._stats["queries"] += 1
            return str(self._visa("query", commands[-1])).strip()

        return self._run(ask)

    def _run(self, operation: Callable[[], T]) -> T:
        """Run one whole operation (channel select included); on a lost session reopen it and run it again.

        Every command the driver sends sets or reads a state, so sending an operation twice is
        harmless; a supply that power-cycled lost whatever it had been told, and gets only this.
        """
        try:
            return operation()
        except SessionLost as lost:
            self._reopen(lost)
        try:
            return operation()
        except SessionLost as again:
            raise PowerError(
                f"power {self.name} ({self.resource}): the VISA session was lost again right after reopening "
                f"it ({again.command!r}: {again.reason}); {WHAT_TO_DO}"
            ) from None

    def _reopen(self, lost: SessionLost) -> None:
        """Reopen a lost session: one attempt after each pause of :attr:`reconnect_delays`, then one error."""
        started = time.monotonic()
        previous_idn = self.idn
        self.close()
        last = lost.reason
        for attempt, pause in enumerate(self.reconnect_delays, 1):
            time.sleep(pause)  # a pause between attempts, for the supply to come back: no condition to await
            try:
                self._connect()
            except Unreachable as exc:
                last = exc.reason
                continue
            if previous_idn and self.idn != previous_idn:
                found, self.idn = self.idn, previous_idn
                self.close()
                raise PowerError(
                    f"power {self.name} ({self.resource}): after reopening the lost session a different "
                    f"instrument answers ({found!r}, was {previous_idn!r}); check the rig file's resource string"
                )
            self._stats["reconnects"] += 1
            if self.journal is not None:
                self.journal.record("power", action="reconnect", channel=self.channel, source=self.name,
                                    attempts=attempt, waited=round(time.monotonic() - started, 3),
                                    lost=f"{lost.command}: {lost.reason}")  # fmt: skip
            return
        tried = (
            f"{len(self.reconnect_delays)} reopen attempts over {time.monotonic() - started:.1f}s failed (last: {last})"
            if self.reconnect_delays
            else "reconnection is off (reconnect_delays=())"
        )
        raise PowerError(
            f"power {self.name} ({self.resource}): lost the VISA session ({lost.command!r}: {lost.reason}) "
            f"and {tried}; {WHAT_TO_DO}"
        ) from None

    def _query_float(self, template: str) -> float:
        reply = self._query(template)
        try:
            return float(reply)
        except ValueError:
            raise PowerError(
                f"power {self.name} ({self.resource}): expected a number from {template!r} (got {reply!r})"
            ) from None

    def _write(self, command: str) -> None:
        self._stats["commands"] += 1
        self._visa("write", command)

    def _check_errors(self, command: str) -> None:
        errors: list[tuple[int, str]] = []
        for _ in range(MAX_ERRORS):
            reply = str(self._visa("query", self.dialect.error_query))
            try:
                code, message = parse_error_reply(reply)
            except ValueError as exc:
                raise PowerError(f"power {self.name} ({self.resource}): {exc}") from None
            if code == 0:
                break
            errors.append((code, message))
        if errors:
            self._stats["instrument_errors"] += len(errors)
            raise InstrumentError(f"{self.name} ({self.resource})", command, errors)

    def _visa(self, method: str, command: str) -> Any:
        inst = self._inst
        if inst is None:
            raise PowerError(f"power {self.name}: {self.resource} is not open (call open() first)")
        try:
            return getattr(inst, method)(command)
        except pyvisa.errors.InvalidSession as exc:
            raise self._lost(command, f"the session was closed ({exc})") from None
        except pyvisa.errors.VisaIOError as exc:
            if exc.error_code in LOST_SESSION_CODES:
                raise self._lost(command, exc.description or str(exc)) from None
            if exc.error_code == StatusCode.error_timeout and _peer_closed(inst):
                # pyvisa-py reads a socket the supply closed (power-cycled, rebooted) as a timeout
                raise self._lost(command, "the supply closed the connection") from None
            raise PowerError(
                f"power {self.name} ({self.resource}): {command!r} failed: {exc.description or exc} "
                f"(timeout {self.timeout:g}s; is the supply still connected and is the dialect "
                f"{self.dialect.name!r} right?)"
            ) from exc
        except OSError as exc:  # the socket or device file under the session: the link is gone
            raise self._lost(command, str(exc) or type(exc).__name__) from None
        except pyvisa.errors.Error as exc:
            raise PowerError(
                f"power {self.name} ({self.resource}): {command!r} failed: {exc} "
                "(is the supply on, reachable, and the resource string right?)"
            ) from exc

    def _lost(self, command: str, reason: str) -> SessionLost:
        return SessionLost(
            f"power {self.name} ({self.resource}): lost the VISA session ({command!r}: {reason}); {WHAT_TO_DO}",
            command,
            reason,
        )

    def _journal(self, action: str, *, t: float | None = None, **fields: Any) -> None:
        if self.journal is not None:
            self.journal.record("power", t=t, action=action, channel=self.channel, source=self.name, **fields)


def _session_socket(inst: Any) -> socket.socket | None:
    """The TCP socket under a pyvisa-py raw-socket (``::SOCKET``) session; None for other transports."""
    session = getattr(getattr(inst, "visalib", None), "sessions", {}).get(getattr(inst, "session", None))
    sock = getattr(session, "interface", None)
    if isinstance(sock, socket.socket) and sock.type == socket.SOCK_STREAM:
        return sock
    return None


def _peer_closed(inst: Any) -> bool:
    """Whether the instrument closed or reset the connection under a socket session (peeked, not read)."""
    sock = _session_socket(inst)
    if sock is None:
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False  # open, nothing to read: a slow or silent instrument, a real timeout
    except OSError:
        return True  # reset, or not connected any more


def _send_at_once(inst: Any) -> None:
    """Turn Nagle's algorithm off on a raw-socket (``::SOCKET``) session.

    SCPI over a socket is small writes, each followed by a query (``SYST:ERR?`` after every setting):
    with Nagle on, a command written while the previous one is unacknowledged waits for the peer's
    delayed ACK, so ``OUTP OFF`` reached the supply ~40 ms after the call — a power cut 40 ms late.
    pyvisa-py has no VISA attribute for it on SOCKET sessions, so it is set on the session's socket;
    other transports (VXI-11, USB, serial) are left as they are.
    """
    sock = _session_socket(inst)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
