"""Quantities with units, as humans write them in rig and scenario files.

``300ms``, ``1h30m``, ``2%``, ``384kbit``, ``4KiB``, ``3.3V``. Rates follow ``tc``: ``kbit`` is
1000 bit/s and ``kbps`` is 1000 *bytes*/s. Every parser raises :class:`UnitError` naming what it
accepts, so a caller can attach a file location.
"""

from __future__ import annotations

import math
import re

from harness.errors import UnitError

_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"

_DURATION_UNITS = {
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "sec": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}
_DURATION_PART = re.compile(rf"\s*({_NUMBER})\s*(us|µs|ms|sec|min|s|m|h|d)")

_RATE_UNITS = {  # bits per second, as tc(8) spells them
    "bit": 1.0,
    "kbit": 1e3,
    "mbit": 1e6,
    "gbit": 1e9,
    "bps": 8.0,
    "kbps": 8e3,
    "mbps": 8e6,
    "gbps": 8e9,
}

_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}


def parse_duration(value: str | float | int, *, allow_negative: bool = False) -> float:
    """Seconds from ``"300ms"``, ``"1h30m"``, ``"2.5s"`` or a bare number of seconds."""
    if isinstance(value, bool):
        raise UnitError(f"expected a duration such as '300ms' or '1h30m', got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = value.strip()
        if re.fullmatch(_NUMBER, text):
            seconds = float(text)
        else:
            pos, seconds, matched = 0, 0.0, False
            while pos < len(text):
                m = _DURATION_PART.match(text, pos)
                if not m:
                    raise UnitError(
                        f"expected a duration such as '300ms', '2s' or '1h30m' "
                        f"(units us, ms, s, m, h, d), got {value!r}"
                    )
                seconds += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
                pos, matched = m.end(), True
            if not matched:
                raise UnitError(f"expected a duration such as '300ms', got {value!r}")
    if seconds < 0 and not allow_negative:
        raise UnitError(f"expected a duration of zero or more, got {value!r}")
    return seconds


def parse_fraction(value: str | float | int) -> float:
    """A fraction 0..1 from ``"2%"``, ``"0.5%"`` or a bare number 0..1 (``0.02``)."""
    if isinstance(value, bool):
        raise UnitError(f"expected a percentage such as '2%', got {value!r}")
    if isinstance(value, int | float):
        frac = float(value)
    else:
        text = value.strip()
        m = re.fullmatch(rf"({_NUMBER})\s*%", text)
        if m:
            frac = float(m.group(1)) / 100.0
        elif re.fullmatch(_NUMBER, text):
            frac = float(text)
        else:
            raise UnitError(f"expected a percentage such as '2%' or a fraction 0..1, got {value!r}")
    if not 0.0 <= frac <= 1.0:
        raise UnitError(f"expected a percentage from 0% to 100%, got {value!r}")
    return frac


def parse_rate(value: str | float | int) -> float:
    """Bits per second from ``"384kbit"``, ``"1mbit"``, ``"10kbps"`` (kilobytes/s, as tc)."""
    if isinstance(value, bool):
        raise UnitError(f"expected a rate such as '384kbit', got {value!r}")
    if isinstance(value, int | float):
        rate = float(value)
    else:
        m = re.fullmatch(rf"\s*({_NUMBER})\s*([a-zA-Z]+(?:/s)?)?\s*", value)
        unit = (m.group(2) or "bit").lower().removesuffix("/s") if m else ""
        if unit == "bit/s":
            unit = "bit"
        if not m or unit not in _RATE_UNITS:
            raise UnitError(
                f"expected a rate such as '384kbit' or '1mbit' "
                f"(units {', '.join(_RATE_UNITS)}), got {value!r}"
            )
        rate = float(m.group(1)) * _RATE_UNITS[unit]
    if rate <= 0:
        raise UnitError(f"expected a rate above zero, got {value!r}")
    return rate


def parse_size(value: str | int) -> int:
    """Bytes from ``"4KiB"``, ``"1MB"``, ``"512"``."""
    if isinstance(value, bool):
        raise UnitError(f"expected a size such as '4KiB', got {value!r}")
    if isinstance(value, int):
        size = value
    else:
        m = re.fullmatch(rf"\s*({_NUMBER})\s*([a-zA-Z]+)?\s*", str(value))
        unit = (m.group(2) or "b").lower() if m else ""
        if not m or unit not in _SIZE_UNITS:
            raise UnitError(
                f"expected a size such as '4KiB' or '1MB' (units B, kB, MB, GB, KiB, MiB, GiB), "
                f"got {value!r}"
            )
        size = int(float(m.group(1)) * _SIZE_UNITS[unit])
    if size < 0:
        raise UnitError(f"expected a size of zero or more, got {value!r}")
    return size


_PER_HOUR = {"s": 3600.0, "min": 60.0, "h": 1.0, "d": 1 / 24.0}


def parse_size_per_hour(value: str) -> float:
    """Bytes per hour from ``"200B/h"``, ``"2MiB/h"``, ``"1KiB/min"``, ``"50B/s"`` or ``"4kB/d"``."""
    size, slash, per = str(value).partition("/") if isinstance(value, str) else ("", "", "")
    if not slash or per.strip() not in _PER_HOUR:
        raise UnitError(f"expected a size per time such as '200B/h' or '2MiB/h' (per s, min, h, d), got {value!r}")
    try:
        return parse_size(size.strip()) * _PER_HOUR[per.strip()]
    except UnitError as exc:
        raise UnitError(f"{exc} in {value!r}") from None


def parse_quantity(value: str | float | int, unit: str) -> float:
    """A plain quantity in a fixed SI unit: ``parse_quantity("3.3V", "V")``, ``"500mA"`` as "A"."""
    if isinstance(value, bool):
        raise UnitError(f"expected a value in {unit}, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    m = re.fullmatch(rf"\s*({_NUMBER})\s*(m|u|µ|k)?{re.escape(unit)}?\s*", value)
    if not m:
        raise UnitError(f"expected a value in {unit} such as '3.3{unit}' or '500m{unit}', got {value!r}")
    scale = {"m": 1e-3, "u": 1e-6, "µ": 1e-6, "k": 1e3, None: 1.0}[m.group(2)]
    return float(m.group(1)) * scale


def format_duration(seconds: float) -> str:
    """Short human form: ``1h30m``, ``2.5s``, ``300ms``."""
    if seconds < 1:
        return f"{_trim(seconds * 1000, 1)}ms"
    if seconds < 60:
        return f"{_trim(seconds, 3)}s"
    parts = []
    rest = round(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts)


def _trim(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}".rstrip("0").rstrip(".")


def format_seconds(seconds: float | None) -> str:
    """For people, with units and sensible precision: ``350 ms``, ``2.5 s``, ``10 s``, ``12 min 5 s``,
    ``41 h 12 min``, ``3.5 days``, ``53 days``; ``never`` for an infinite horizon, ``no data`` for None."""
    if seconds is None:
        return "no data"
    if math.isinf(seconds):
        return "never" if seconds > 0 else "-never"
    sign, s = ("-", -seconds) if seconds < 0 else ("", seconds)
    if s < 1:
        text = f"{_sig(s * 1000)} ms"
    elif s < 10:
        text = f"{_trim(s, 1)} s"
    elif s < 60:
        text = f"{round(s)} s"
    elif s < 3600:
        m, rest = divmod(round(s), 60)
        text = f"{m} min {rest} s" if rest else f"{m} min"
    elif s < 2 * 86400:
        h, rest = divmod(round(s / 60), 60)
        text = f"{h} h {rest} min" if rest else f"{h} h"
    else:
        days = s / 86400
        text = f"{_trim(days, 1)} days" if days < 10 else f"{round(days):,} days"
    return sign + text


def format_bytes(value: float | None) -> str:
    """``512 B``, ``31.2 KiB``, ``4.00 MiB`` (binary units, as the heap is counted)."""
    if value is None:
        return "no data"
    v, sign = abs(float(value)), "-" if value < 0 else ""
    if v < 1024:
        return f"{sign}{round(v)} B"
    for unit, size in (("KiB", 1024.0), ("MiB", 1024.0**2), ("GiB", 1024.0**3)):
        if v < size * 1024 or unit == "GiB":
            return f"{sign}{_sig(v / size)} {unit}"
    raise AssertionError("unreachable")


def _sig(value: float) -> str:
    """Three significant digits at most, no trailing zeros: ``4.2``, ``31.2``, ``350``."""
    if value >= 100:
        return f"{round(value):,}"
    return _trim(value, 1 if value >= 10 else 2)
