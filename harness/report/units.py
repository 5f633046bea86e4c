"""Numbers for people on the report pages: a unit on every value, a precision that fits it.

``duration(2472.0)`` -> ``41 min 12 s``; ``size(31948)`` -> ``31.2 KiB``; ``metric_value("heap.slope", -11388.7)``
-> ``-11,389 B/h``; ``time_axis(420)`` -> ``TimeAxis("min", 60.0)`` (a 7-minute run is drawn in minutes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

MINUS = "\u2212"


def _signed(text: str) -> str:
    return text.replace("-", MINUS)


def duration(seconds: float | None) -> str:
    """``850 ms``, ``4.2 s``, ``7 min 3 s``, ``41 h 12 min``, ``53 days``; ``—`` for None."""
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "—"
    if math.isinf(seconds):
        return "never"
    s = abs(float(seconds))
    sign = MINUS if seconds < 0 else ""
    if s < 1:
        return f"{sign}{s * 1000:.0f} ms"
    if s < 60:
        return f"{sign}{s:.3g} s"
    if s < 3600:
        m, rest = divmod(round(s), 60)
        return f"{sign}{m} min" + (f" {rest} s" if rest else "")
    if s < 2 * 86400:
        h, rest = divmod(round(s / 60), 60)
        return f"{sign}{h} h" + (f" {rest} min" if rest else "")
    days = s / 86400
    return f"{sign}{days:.0f} days" if days >= 10 else f"{sign}{days:.1f} days"


def size(n: float | None) -> str:
    """Bytes: ``512 B``, ``31.2 KiB``, ``1.50 MiB``."""
    if n is None:
        return "—"
    v = float(n)
    if abs(v) < 1024:
        return _signed(f"{v:.0f} B")
    if abs(v) < 1024 * 1024:
        return _signed(f"{v / 1024:.1f} KiB")
    return _signed(f"{v / 1024 / 1024:.2f} MiB")


def rate(value: float | None, unit: str) -> str:
    """A trend slope per hour: ``-11,389 B/h``, ``-5.00 mV/h`` (``unit`` is ``B`` or ``V``)."""
    if value is None:
        return "—"
    if unit == "V":
        return _signed(f"{value * 1000:+,.2f} mV/h")
    return _signed(f"{value:+,.0f} B/h") if abs(value) >= 10 else _signed(f"{value:+.1f} B/h")


def plus_minus(slope: float | None, low: float | None, high: float | None, unit: str) -> str:
    """``-0.3 ± 1.1 B/h``: a slope and the half-width of its interval."""
    if slope is None or low is None or high is None:
        return "—"
    half = (high - low) / 2
    if unit == "V":
        return _signed(f"{slope * 1000:.2f} ± {half * 1000:.2f} mV/h")
    digits = 0 if max(abs(slope), half) >= 10 else 1
    return _signed(f"{slope:,.{digits}f} ± {half:,.{digits}f} B/h")


#: How each report metric is shown, by name (the report layer does not import the scenario layer's table).
_KINDS: tuple[tuple[str, str], ...] = (
    ("boot.time.", "duration"),
    ("telemetry.latency.", "duration"),
    ("ota.duration.", "duration"),
    ("heap.exhaustion", "duration"),
    ("heap.slope", "bytes_per_h"),
    ("battery.slope", "volts_per_h"),
    ("heap.min", "bytes"),
    ("power.current.", "amps"),
    ("power.mean", "watts"),
)


def kind_of(metric: str | None) -> str:
    for prefix, kind in _KINDS:
        if metric and metric.startswith(prefix):
            return kind
    return "plain"


def metric_value(metric: str | None, value: Any) -> str:
    """A metric's value with its unit, as the check tables and the banner show it."""
    if value is None:
        return "no data"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    kind = kind_of(metric)
    if kind == "duration":
        return duration(float(value))
    if kind == "bytes_per_h":
        return rate(float(value), "B")
    if kind == "volts_per_h":
        return rate(float(value), "V")
    if kind == "bytes":
        return size(float(value))
    if kind == "amps":
        return f"{value * 1000:.3g} mA"
    if kind == "watts":
        return f"{value:.3g} W"
    return number(value)


def number(value: Any, digits: int = 3) -> str:
    """``1,234``, ``0.167``, ``12.5``: integers with separators, floats to ``digits`` significant figures."""
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int) or float(value).is_integer():
        return _signed(f"{int(value):,}")
    return _signed(f"{value:,.{digits}g}" if abs(value) < 10**digits else f"{value:,.0f}")


def plural(n: int, one: str, many: str | None = None) -> str:
    """``1 event``, ``3 events``."""
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


@dataclass(frozen=True)
class TimeAxis:
    """The unit a time plot's x axis is drawn in: seconds since the start divided by ``scale``."""

    unit: str  # s | min | h | days
    scale: float

    @property
    def label(self) -> str:
        return f"time since start ({self.unit})"


def time_axis(span: float) -> TimeAxis:
    """The unit a run of ``span`` seconds is read in: up to 3 min in s, 3 h in min, 3 days in h, then days."""
    if span <= 180:
        return TimeAxis("s", 1.0)
    if span <= 3 * 3600:
        return TimeAxis("min", 60.0)
    if span <= 3 * 86400:
        return TimeAxis("h", 3600.0)
    return TimeAxis("days", 86400.0)


def offset(seconds: float) -> str:
    """A moment after the start, ``+41 h 12 min``, ``+7 min 3 s``, ``+12.5 s``."""
    return "+" + duration(max(0.0, seconds)) if seconds >= 1 else f"+{max(0.0, seconds):.1f} s"
