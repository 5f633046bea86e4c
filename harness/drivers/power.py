"""A programmable power supply over VISA (pyvisa + the pure-Python pyvisa-py backend).

The same driver talks to a bench supply (``TCPIP::psu3::INSTR``, ``USB0::...``, ``ASRL/dev/ttyUSB0::INSTR``)
and to the twin's SCPI server (``TCPIP::127.0.0.1::<port>::SOCKET``). What differs between supply
families is data in :mod:`harness.drivers.scpi_dialects`. After every setting command the SCPI
error queue is drained; anything in it raises :class:`InstrumentError` naming the instrument and
the command. Every action is journaled as a ``power`` record.

    with PowerSupply("TCPIP::127.0.0.1::5025::SOCKET", dialect="keysight-e36300", journal=j) as psu:
        psu.set(3.3, 0.5)
        psu.cycle(off_for=2.0)
"""

from __future__ import annotations

import contextlib
import socket
import time
from dataclasses import dataclass
from typing import Any

import pyvisa
import pyvisa.errors

from harness.drivers.scpi_dialects import Dialect, get_dialect, parse_error_reply
from harness.errors import ConfigError, InstrumentError, PowerError
from harness.report.journal import Journal

#: Upper bound on error-queue entries read after one command (a real queue holds 16-32).
MAX_ERRORS = 64
VISA_BACKEND = "@py"


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
        self.idn = ""
        self._inst: Any = None
        self._stats = {"commands": 0, "queries": 0, "instrument_errors": 0}

    # -- lifecycle -------------------------------------------------------------------------

    def open(self) -> PowerSupply:
        """Connect; apply ``voltage``/``current_limit`` if given. Raises :class:`PowerError`."""
        if self._inst is not None:
            return self
        try:
            # pyvisa keeps one ResourceManager per backend per process, shared by every supply:
            # never close it here, or every other open instrument loses its session.
            rm = pyvisa.ResourceManager(VISA_BACKEND)
            inst: Any = rm.open_resource(self.resource, open_timeout=int(self.timeout * 1000))
            inst.timeout = int(self.timeout * 1000)
            inst.read_termination = "\n"
            inst.write_termination = "\n"
            _send_at_once(inst)
        except (pyvisa.errors.Error, OSError, ValueError) as exc:
            raise PowerError(
                f"power {self.name}: cannot open {self.resource}: {exc} "
                "(is the supply on, reachable, and the resource string right?)"
            ) from exc
        self._inst = inst
        try:
            self.idn = self.identify()  # some transports connect lazily: fail here, not later
            if self.voltage is not None and self.current_limit is not None:
                self.set(self.voltage, self.current_limit)
        except PowerError:
            self.close()
            raise
        return self

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
        self._stats["queries"] += 1
        return str(self._visa("query", self.dialect.identify)).strip()

    def statistics(self) -> dict[str, Any]:
        """Counters: commands and queries sent, instrument errors seen."""
        return {**self._stats, "resource": self.resource, "dialect": self.dialect.name, "open": self.is_open}

    @property
    def is_open(self) -> bool:
        return self._inst is not None

    # -- internals -------------------------------------------------------------------------

    def _do(self, template: str, **values: float) -> None:
        for command in self.dialect.commands(template, self.channel, **values):
            self._write(command)
            self._check_errors(command)

    def _query(self, template: str) -> str:
        commands = self.dialect.commands(template, self.channel)
        for command in commands[:-1]:
            self._write(command)
        self._stats["queries"] += 1
        reply = self._visa("query", commands[-1])
        return str(reply).strip()

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
        except pyvisa.errors.VisaIOError as exc:
            raise PowerError(
                f"power {self.name} ({self.resource}): {command!r} failed: {exc.description or exc} "
                f"(timeout {self.timeout:g}s; is the supply still connected and is the dialect "
                f"{self.dialect.name!r} right?)"
            ) from exc
        except (pyvisa.errors.Error, OSError) as exc:
            raise PowerError(
                f"power {self.name} ({self.resource}): {command!r} failed: {exc} "
                "(is the supply on, reachable, and the resource string right?)"
            ) from exc

    def _journal(self, action: str, *, t: float | None = None, **fields: Any) -> None:
        if self.journal is not None:
            self.journal.record("power", t=t, action=action, channel=self.channel, source=self.name, **fields)


def _send_at_once(inst: Any) -> None:
    """Turn Nagle's algorithm off on a raw-socket (``::SOCKET``) session.

    SCPI over a socket is small writes, each followed by a query (``SYST:ERR?`` after every setting):
    with Nagle on, a command written while the previous one is unacknowledged waits for the peer's
    delayed ACK, so ``OUTP OFF`` reached the supply ~40 ms after the call — a power cut 40 ms late.
    pyvisa-py has no VISA attribute for it on SOCKET sessions, so it is set on the session's socket;
    other transports (VXI-11, USB, serial) are left as they are.
    """
    session = getattr(getattr(inst, "visalib", None), "sessions", {}).get(getattr(inst, "session", None))
    sock = getattr(session, "interface", None)
    if isinstance(sock, socket.socket) and sock.type == socket.SOCK_STREAM:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
