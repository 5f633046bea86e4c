"""SCPI dialects of programmable power supplies, as data: command templates per operation.

Templates are ``str.format`` strings with ``{ch}`` (channel number), ``{v}`` (volts) and ``{a}``
(amps). ``select`` is sent before each operation for dialects that address a channel by selecting
it first (generic SCPI's ``INST:NSEL``); the others name the channel in every command. Sources
for each table are cited in ``docs/drivers.md``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from harness.errors import ConfigError


@dataclass(frozen=True)
class Dialect:
    """How one family of supplies spells the operations the power driver needs."""

    name: str
    title: str
    output_on: str
    output_off: str
    output_query: str
    set_voltage: str
    set_current: str
    measure_voltage: str
    measure_current: str
    select: str | None = None
    apply: str | None = None  # one command setting volts and amps together, if the family has it
    identify: str = "*IDN?"
    error_query: str = "SYST:ERR?"
    #: For supplies whose output query returns a hex status word: channel -> bit that means "on".
    output_status_bits: dict[int, int] = field(default_factory=dict)
    max_channel: int = 3

    def commands(self, template: str, channel: int, **values: float) -> list[str]:
        """The command(s) to send for ``template`` on ``channel``, channel selection first if needed."""
        command = template.format(ch=channel, **{k: _num(v) for k, v in values.items()})
        if self.select is not None:
            return [self.select.format(ch=channel), command]
        return [command]

    def parse_output_state(self, reply: str, channel: int) -> bool:
        """Read the reply of :attr:`output_query` as on (True) / off (False)."""
        text = reply.strip().strip('"').upper()
        if self.output_status_bits:
            word = int(text, 16)  # accepts a 0x prefix
            return bool(word >> self.output_status_bits[channel] & 1)
        if text in ("1", "ON"):
            return True
        if text in ("0", "OFF"):
            return False
        raise ValueError(f"output state reply {reply!r} is neither 1/ON nor 0/OFF")


def _num(value: float) -> str:
    """A number as SCPI expects it: plain decimal, no exponent, no trailing zeros."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


GENERIC = Dialect(
    name="generic",
    title="Generic SCPI-1999 supply (INSTrument:NSELect then plain commands)",
    select="INST:NSEL {ch}",
    output_on="OUTP ON",
    output_off="OUTP OFF",
    output_query="OUTP?",
    set_voltage="VOLT {v}",
    set_current="CURR {a}",
    measure_voltage="MEAS:VOLT?",
    measure_current="MEAS:CURR?",
)

RIGOL_DP800 = Dialect(
    name="rigol-dp800",
    title="Rigol DP800 series (DP811/DP821/DP831/DP832)",
    output_on=":OUTP CH{ch},ON",
    output_off=":OUTP CH{ch},OFF",
    output_query=":OUTP? CH{ch}",
    set_voltage=":SOUR{ch}:VOLT {v}",
    set_current=":SOUR{ch}:CURR {a}",
    apply=":APPL CH{ch},{v},{a}",
    measure_voltage=":MEAS:VOLT? CH{ch}",
    measure_current=":MEAS:CURR? CH{ch}",
    error_query=":SYST:ERR?",
)

KEYSIGHT_E36300 = Dialect(
    name="keysight-e36300",
    title="Keysight E36300 series (E36311A/E36312A/E36313A), channel lists (@n)",
    output_on="OUTP ON,(@{ch})",
    output_off="OUTP OFF,(@{ch})",
    output_query="OUTP? (@{ch})",
    set_voltage="VOLT {v},(@{ch})",
    set_current="CURR {a},(@{ch})",
    measure_voltage="MEAS:VOLT? (@{ch})",
    measure_current="MEAS:CURR? (@{ch})",
)

SIGLENT_SPD3303 = Dialect(
    name="siglent-spd3303",
    title="Siglent SPD3303X/X-E (two programmable channels, status word for output state)",
    output_on="OUTP CH{ch},ON",
    output_off="OUTP CH{ch},OFF",
    output_query="SYST:STAT?",
    output_status_bits={1: 4, 2: 5},
    set_voltage="CH{ch}:VOLT {v}",
    set_current="CH{ch}:CURR {a}",
    measure_voltage="MEAS:VOLT? CH{ch}",
    measure_current="MEAS:CURR? CH{ch}",
    max_channel=2,
)

DIALECTS: dict[str, Dialect] = {d.name: d for d in (GENERIC, RIGOL_DP800, KEYSIGHT_E36300, SIGLENT_SPD3303)}

_ERROR_REPLY = re.compile(r'^\s*([+-]?\d+)\s*[, ]\s*"?(.*?)"?\s*$')


def get_dialect(name: str) -> Dialect:
    """The dialect called ``name``; a :class:`ConfigError` listing the known ones otherwise."""
    try:
        return DIALECTS[name]
    except KeyError:
        known = ", ".join(sorted(DIALECTS))
        raise ConfigError(f"power dialect: expected one of {known} (got {name!r})") from None


def parse_error_reply(reply: str) -> tuple[int, str]:
    """Split a ``SYST:ERR?`` reply (``-113,"Undefined header"`` or ``0  No Error``) into code and text."""
    match = _ERROR_REPLY.match(reply)
    if match is None:
        raise ValueError(f"error queue reply {reply!r} is not '<code>,\"<message>\"'")
    return int(match.group(1)), match.group(2)
