"""Figures as people read them: every metric value with its unit and a sensible precision.

``format_metric("heap.min", 31948.8)`` is ``31.2 KiB``, ``format_metric("heap.exhaustion", 7.78e6)`` is
``90 days``, ``format_metric("boot.time.p95", 0.0612)`` is ``61.2 ms``, a count is ``1,204``. The soak
page, summary.md and the scenario checks all print values through here, so one number reads the same
everywhere. ``plural(1, "event")`` is ``1 event``.
"""

from __future__ import annotations

import math
from typing import Any

from harness.units import format_bytes, format_seconds

MINUS = "\u2212"

#: The kind of every metric the reports and checks know (the rest print as given).
KINDS: dict[str, str] = {
    "boot.time.p50": "duration",
    "boot.time.p95": "duration",
    "boot.time.max": "duration",
    "telemetry.latency.p50": "duration",
    "telemetry.latency.p95": "duration",
    "telemetry.latency.p99": "duration",
    "ota.duration.max": "duration",
    "ota.duration.mean": "duration",
    "heap.exhaustion": "horizon",
    "heap.min": "bytes",
    "heap.slope": "slope_bytes",
    "battery.slope": "slope_volts",
    "power.current.mean": "amps",
    "power.current.max": "amps",
    "power.mean": "watts",
}
_COUNT_PREFIXES = ("reboots.", "telemetry.loss.", "boots.")
_COUNTS = {
    "telemetry.received", "telemetry.unique", "telemetry.duplicates", "telemetry.late", "telemetry.malformed",
    "ota.attempts", "ota.committed", "ota.failed", "checks.failed", "steps.failed", "power_cuts",
    "telemetry.samples", "power.readings",
}  # fmt: skip


def kind_of(name: str) -> str:
    """``duration``, ``horizon``, ``bytes``, ``slope_bytes``, ``slope_volts``, ``amps``, ``watts``, ``count``
    or ``value`` (outcomes and anything unknown)."""
    if name in KINDS:
        return KINDS[name]
    if name in _COUNTS or name.startswith(_COUNT_PREFIXES):
        return "count"
    return "value"


def format_metric(name: str, value: Any) -> str:
    """One metric's value for people: unit, precision, ``no data`` when absent."""
    return format_kind(kind_of(name), value)


def format_kind(kind: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "no data"
    if kind == "horizon" and (value == "never" or (isinstance(value, float) and math.isinf(value))):
        return "never"
    if kind in ("duration", "horizon"):
        return format_seconds(float(value))
    if kind == "bytes":
        return format_bytes(float(value))
    if kind == "slope_bytes":
        return rate_bytes(float(value))
    if kind == "slope_volts":
        return _signed(f"{float(value) * 1000:+.2f} mV/h")
    if kind == "amps":
        v = float(value)
        return f"{_sig(v * 1000)} mA" if abs(v) < 1 else f"{_sig(v)} A"
    if kind == "watts":
        v = float(value)
        return f"{_sig(v * 1000)} mW" if abs(v) < 1 else f"{_sig(v)} W"
    if kind == "count":
        return f"{int(value):,}"
    return str(value)


def rate_bytes(per_hour: float) -> str:
    """``-11,386 B/h``, ``+3 B/h``, ``-4.1 MiB/h`` (with a typographic minus)."""
    if abs(per_hour) >= 1024 * 1024:
        return _signed(f"{per_hour / 1024 / 1024:+.1f} MiB/h")
    return _signed(f"{per_hour:+,.0f} B/h")


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 event``, ``2 events``, ``0 boots``; ``many`` for irregular plurals."""
    return f"{n:,} {word}" if n == 1 else f"{n:,} {many or word + 's'}"


def _signed(text: str) -> str:
    return text.replace("-", MINUS)


def _sig(value: float) -> str:
    a = abs(value)
    if a >= 100:
        return f"{value:,.0f}"
    text = f"{value:.1f}" if a >= 10 else f"{value:.2f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


_CAUSE_PLURALS = {
    "power on": ("power-on", "power-ons"),
    "power cut": ("power cut", "power cuts"),
    "supply cycle": ("supply cycle", "supply cycles"),
    "software reboot": ("software reboot", "software reboots"),
    "OTA reboot": ("OTA reboot", "OTA reboots"),
    "trial revert": ("trial revert", "trial reverts"),
    "watchdog": ("watchdog reset", "watchdog resets"),
    "crash": ("crash", "crashes"),
    "power loss": ("power loss", "power losses"),
    "unknown": ("of unknown cause", "of unknown cause"),
}


def boots_by_cause(counts: dict[str, int]) -> str:
    """``10 power cuts, 3 OTA reboots, 1 power-on`` (a boot cause dict, in its order)."""
    parts = []
    for cause, n in counts.items():
        one, many = _CAUSE_PLURALS.get(cause, (cause, cause))
        parts.append(f"{n:,} {one if n == 1 else many}")
    return ", ".join(parts)
