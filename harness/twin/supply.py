"""A three-channel programmable power supply, sans-IO: state, error queue and the SCPI command set.

Generic SCPI forms (``OUTP ON``, ``VOLT 3.3``, ``INST:NSEL 1``), Rigol DP800 forms (``:OUTP CH1,ON``,
``:APPL CH1,3.3,0.5``, ``:MEAS:VOLT? CH1``) and Keysight E36300 forms (``OUTP ON,(@1)``,
``VOLT 3.3,(@1)``, ``MEAS:CURR? (@1)``) all act on the same channels. The supply never touches the
device: the rig reads :attr:`Channel.output`/:attr:`Channel.voltage` after every message unit
and measures current through the ``draw`` callback it supplies.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from harness.twin.scpi import (
    CommandTable,
    ScpiError,
    Session,
    missing_parameter,
    parameter_not_allowed,
    parse_bool,
    parse_channel_list,
    parse_channel_name,
    parse_number,
    parse_unit,
    queue_overflow,
    resolve,
    split_units,
)

QUEUE_DEPTH = 20  # entries, the overflow entry included
OVERFLOW = -350
MANUFACTURER = "TWIN-LABS"
MODEL = "TWIN-PSU3"
FIRMWARE = "1.0"


@dataclass
class Channel:
    """One output: limits, set points, output state."""

    number: int
    max_voltage: float
    max_current: float
    default_voltage: float = 0.0
    default_current: float = 1.0
    voltage: float = 0.0
    current: float = 1.0
    output: bool = False

    def reset(self) -> None:
        self.voltage, self.current, self.output = self.default_voltage, self.default_current, False


class PowerSupply:
    """The instrument: channels, selected channel, one error queue shared by every client."""

    def __init__(
        self,
        *,
        serial: str = "TWIN0001",
        draw: Callable[[int], float] | None = None,
        defaults: dict[int, tuple[float, float]] | None = None,
    ) -> None:
        self.serial = serial
        self.draw = draw or (lambda channel: 0.0)
        self.channels = [Channel(1, 30.0, 3.0), Channel(2, 30.0, 3.0), Channel(3, 5.0, 3.0)]
        for number, (volts, amps) in (defaults or {}).items():
            channel = self.channel(number)
            channel.default_voltage, channel.default_current = volts, amps
        self.selected = 1
        self.errors: deque[ScpiError] = deque()
        self.table = self._build_table()
        self.reset()

    # ------------------------------------------------------------------ API for the rig

    def channel(self, number: int) -> Channel:
        return self.channels[number - 1]

    def execute_unit(self, text: str, session: Session) -> str | None:
        """Run one message unit; its response text, or None. Errors go to the queue."""
        try:
            unit = parse_unit(text)
            handler = resolve(self.table, unit, session)
            return handler(unit.params)
        except ScpiError as error:
            self.push_error(error)
            return None

    def execute(self, line: str, session: Session) -> str | None:
        """Run a whole line (no device side effects between units); responses joined by ``;``."""
        replies = [r for r in (self.execute_unit(u, session) for u in split_units(line)) if r is not None]
        return ";".join(replies) if replies else None

    def push_error(self, error: ScpiError) -> None:
        """Queue ``error`` as SCPI-99 (21.8) says: a FIFO of :data:`QUEUE_DEPTH` entries whose oldest errors
        are kept on overflow, the last entry becoming ``-350,"Queue overflow"``.

        The -350 stands for every error lost from there on: while it is the newest entry (not yet
        read) later errors are dropped, so the queue never fills with -350s; once a client has read
        past it, errors are queued again.
        """
        if self.errors and self.errors[-1].code == OVERFLOW:
            return
        if len(self.errors) >= QUEUE_DEPTH:
            self.errors[-1] = queue_overflow()
            return
        self.errors.append(error)

    def reset(self) -> None:
        for channel in self.channels:
            channel.reset()
        self.selected = 1

    # ------------------------------------------------------------------ channel addressing

    def _targets(self, params: tuple[str, ...], value_count: int) -> tuple[list[int], tuple[str, ...]]:
        """Split Rigol ``CHn,`` prefix or Keysight ``,(@n)`` suffix off ``params``."""
        count = len(self.channels)
        if params:
            named = parse_channel_name(params[0], count)
            if named is not None:
                return [named], params[1:]
            listed = parse_channel_list(params[-1], count)
            if listed is not None:
                return listed, params[:-1]
        return [self.selected], params

    def _values(self, params: tuple[str, ...], count: int) -> tuple[list[int], tuple[str, ...]]:
        channels, values = self._targets(params, count)
        if len(values) < count:
            raise missing_parameter()
        if len(values) > count:
            raise parameter_not_allowed()
        return channels, values

    # ------------------------------------------------------------------ handlers

    def _build_table(self) -> CommandTable:
        t = CommandTable()
        t.add("*IDN", on_query=lambda p: self._no_params(p, f"{MANUFACTURER},{MODEL},{self.serial},{FIRMWARE}"))
        t.add("*RST", on_set=lambda p: self._no_params(p, None, self.reset))
        t.add("*CLS", on_set=lambda p: self._no_params(p, None, self.errors.clear))
        t.add("*OPC", on_set=lambda p: self._no_params(p, None), on_query=lambda p: self._no_params(p, "1"))
        t.add("*WAI", on_set=lambda p: self._no_params(p, None))
        t.add("SYSTem:ERRor[:NEXT]", on_query=lambda p: self._no_params(p, self._next_error()))
        t.add("SYSTem:VERSion", on_query=lambda p: self._no_params(p, "1999.0"))
        t.add("OUTPut[:STATe]", on_set=self._set_output, on_query=self._query_output)
        t.add(
            "[SOURce:]VOLTage[:LEVel][:IMMediate][:AMPLitude]",
            on_set=self._set_voltage,
            on_query=lambda p: self._query_setting(p, "voltage"),
        )
        t.add(
            "[SOURce:]CURRent[:LEVel][:IMMediate][:AMPLitude]",
            on_set=self._set_current,
            on_query=lambda p: self._query_setting(p, "current"),
        )
        t.add("MEASure[:SCALar]:VOLTage[:DC]", on_query=lambda p: self._measure(p, "voltage"))
        t.add("MEASure[:SCALar]:CURRent[:DC]", on_query=lambda p: self._measure(p, "current"))
        t.add("APPLy", on_set=self._apply, on_query=self._query_apply)
        t.add("INSTrument:NSELect", on_set=self._select_number, on_query=lambda p: str(self.selected))
        t.add("INSTrument[:SELect]", on_set=self._select_name, on_query=lambda p: f"CH{self.selected}")
        return t

    @staticmethod
    def _no_params(params: tuple[str, ...], reply: str | None, effect: Callable[[], None] | None = None) -> str | None:
        if params:
            raise parameter_not_allowed()
        if effect is not None:
            effect()
        return reply

    def _next_error(self) -> str:
        if not self.errors:
            return '0,"No error"'
        error = self.errors.popleft()
        return f'{error.code},"{error.message}"'

    def _set_output(self, params: tuple[str, ...]) -> None:
        channels, (value,) = self._values(params, 1)
        state = parse_bool(value)
        for number in channels:
            self.channel(number).output = state

    def _query_output(self, params: tuple[str, ...]) -> str:
        channels, _ = self._values(params, 0)
        rigol = bool(params) and parse_channel_name(params[0], len(self.channels)) is not None
        words = ("ON", "OFF") if rigol else ("1", "0")
        return ",".join(words[0] if self.channel(n).output else words[1] for n in channels)

    def _set_voltage(self, params: tuple[str, ...]) -> None:
        channels, (value,) = self._values(params, 1)
        for number in channels:
            channel = self.channel(number)
            channel.voltage = parse_number(
                value, minimum=0.0, maximum=channel.max_voltage, default=channel.default_voltage
            )

    def _set_current(self, params: tuple[str, ...]) -> None:
        channels, (value,) = self._values(params, 1)
        for number in channels:
            channel = self.channel(number)
            channel.current = parse_number(
                value, minimum=0.0, maximum=channel.max_current, default=channel.default_current
            )

    def _query_setting(self, params: tuple[str, ...], name: str) -> str:
        channels, _ = self._values(params, 0)
        return ",".join(f"{getattr(self.channel(n), name):.3f}" for n in channels)

    def _measure(self, params: tuple[str, ...], name: str) -> str:
        channels, _ = self._values(params, 0)
        readings = []
        for number in channels:
            channel = self.channel(number)
            if not channel.output:
                readings.append(0.0)
            elif name == "voltage":
                readings.append(channel.voltage)
            else:
                readings.append(min(self.draw(number), channel.current))
        return ",".join(f"{value:.4f}" for value in readings)

    def _apply(self, params: tuple[str, ...]) -> None:
        channels, values = self._targets(params, 2)
        if not values:
            raise missing_parameter()
        if len(values) > 2:
            raise parameter_not_allowed()
        for number in channels:
            channel = self.channel(number)
            volts = parse_number(values[0], minimum=0.0, maximum=channel.max_voltage, default=channel.default_voltage)
            amps = channel.current
            if len(values) == 2:
                amps = parse_number(
                    values[1], minimum=0.0, maximum=channel.max_current, default=channel.default_current
                )
            channel.voltage, channel.current = volts, amps

    def _query_apply(self, params: tuple[str, ...]) -> str:
        channels, _ = self._values(params, 0)
        channel = self.channel(channels[0])
        rating = f"CH{channel.number}:{channel.max_voltage:g}V/{channel.max_current:g}A"
        return f"{rating},{channel.voltage:.3f},{channel.current:.4f}"

    def _select_number(self, params: tuple[str, ...]) -> None:
        _, (value,) = self._values(params, 1)
        self.selected = int(parse_number(value, minimum=1, maximum=len(self.channels), default=1))

    def _select_name(self, params: tuple[str, ...]) -> None:
        if len(params) != 1:
            raise missing_parameter() if not params else parameter_not_allowed()
        named = parse_channel_name(params[0], len(self.channels))
        if named is None:
            if params[0].strip().isdigit():
                self.selected = int(parse_number(params[0], minimum=1, maximum=len(self.channels), default=1))
                return
            raise ScpiError(-224, "Illegal parameter value")
        self.selected = named
