"""How much worse a metric may get before a comparison calls it a regression, per metric.

A change is a regression when it goes in the metric's *worse* direction by more than its allowance,
``max(absolute, relative x |baseline|)``; for a fitted trend with a confidence interval in the run's
metrics (``heap.slope.low``/``.high``), when the two intervals part by more than it (harness.report.compare).
Defaults cover the metrics the nightly soak gates on; a
tolerance file overrides them, in YAML (or JSON)::

    tolerances:
      boot.time.p95: {relative: 10%, absolute: 150ms}
      ota.duration.max: 25%                # relative only
      heap.slope: {absolute: 100B/h}
      power.current.mean: {absolute: 5mA}
      my.metric: {worse: higher, relative: 10%}   # any numeric metric in results.json
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from typing import Any

from harness.errors import ConfigError, Location, UnitError
from harness.units import parse_duration, parse_quantity
from harness.yamlfile import load_yaml

_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"


@dataclass(frozen=True)
class Tolerance:
    metric: str
    worse: str  # "higher" or "lower"
    kind: str  # duration | bytes_per_h | volts_per_h | amps | watts | count | number
    relative: float | None = None  # fraction of |baseline|
    absolute: float | None = None  # in the metric's base unit (s, B/h, V/h, A, W, count)

    def allowance(self, baseline: float) -> float:
        return max(self.absolute or 0.0, (self.relative or 0.0) * abs(baseline))

    def describe(self) -> str:
        parts = []
        if self.absolute is not None:
            parts.append(show(self.absolute, self.kind))
        if self.relative is not None:
            parts.append(f"{self.relative * 100:g}%")
        return f"{self.worse} is worse, by more than {' or '.join(parts) or '0'}"


KINDS = ("duration", "bytes_per_h", "volts_per_h", "amps", "watts", "count", "number")

DEFAULTS: dict[str, Tolerance] = {
    t.metric: t
    for t in (
        Tolerance("boot.time.p50", "higher", "duration", 0.20, 0.1),
        Tolerance("boot.time.p95", "higher", "duration", 0.25, 0.2),
        Tolerance("ota.duration.max", "higher", "duration", 0.20, 5.0),
        Tolerance("telemetry.latency.p50", "higher", "duration", 0.25, 0.05),
        Tolerance("telemetry.latency.p99", "higher", "duration", 0.50, 0.25),
        Tolerance("heap.slope", "lower", "bytes_per_h", None, 50.0),
        Tolerance("battery.slope", "lower", "volts_per_h", None, 0.001),
        Tolerance("power.current.mean", "higher", "amps", 0.10, 0.002),
        Tolerance("power.current.max", "higher", "amps", 0.20, 0.010),
        Tolerance("telemetry.loss.unexplained", "higher", "count", None, 0.0),
        Tolerance("reboots.unexpected", "higher", "count", None, 0.0),
    )
}


def show(value: float, kind: str) -> str:
    """A value of ``kind`` for people: ``1.5 s``, ``-200 B/h``, ``12 mA``."""
    if kind == "duration":
        return f"{value * 1000:.0f} ms" if abs(value) < 1 else f"{value:.3g} s"
    if kind == "bytes_per_h":
        return f"{value:.0f} B/h"
    if kind == "volts_per_h":
        return f"{value * 1000:.3g} mV/h"
    if kind == "amps":
        return f"{value * 1000:.3g} mA"
    if kind == "watts":
        return f"{value:.3g} W"
    return f"{value:g}"


def parse_value(value: Any, kind: str) -> float:
    """An absolute tolerance in the kind's base unit: ``150ms``, ``100B/h``, ``2mV/h``, ``5mA``, ``3``."""
    if isinstance(value, bool):
        raise UnitError(f"expected a {kind} value, got {value!r}")
    if kind == "duration":
        return parse_duration(value)
    if kind in ("bytes_per_h", "volts_per_h"):
        unit = "B/h" if kind == "bytes_per_h" else "V/h"
        if isinstance(value, int | float):
            return abs(float(value))
        pattern = r"\s*(" + _NUMBER + r")\s*(m|k)?" + re.escape(unit) + r"?\s*"
        m = re.fullmatch(pattern, str(value))
        if not m:
            raise UnitError(
                f"expected a rate such as '100{unit}'"
                + (" or '2mV/h'" if unit == "V/h" else "")
                + f", got {value!r}"
            )
        scale = {"m": 1e-3, "k": 1e3, None: 1.0}[m.group(2)]
        return abs(float(m.group(1)) * scale)
    if kind in ("amps", "watts"):
        return abs(parse_quantity(value, "A" if kind == "amps" else "W"))
    if isinstance(value, int | float):
        return abs(float(value))
    raise UnitError(f"expected a number, got {value!r}")


def parse_relative(value: Any) -> float:
    """``"20%"`` or ``0.2``; 0 or more (more than 100% is allowed)."""
    if isinstance(value, bool):
        raise UnitError(f"expected a percentage such as '20%', got {value!r}")
    if isinstance(value, int | float):
        frac = float(value)
    else:
        m = re.fullmatch(r"\s*(" + _NUMBER + r")\s*%\s*", str(value))
        if not m:
            raise UnitError(f"expected a percentage such as '20%', got {value!r}")
        frac = float(m.group(1)) / 100.0
    if frac < 0:
        raise UnitError(f"expected a percentage of 0% or more, got {value!r}")
    return frac


def _entry(metric: str, raw: Any, base: Tolerance | None) -> Tolerance:
    if isinstance(raw, str | int | float) and not isinstance(raw, bool):
        raw = {"relative": raw} if isinstance(raw, str) and raw.strip().endswith("%") else {"absolute": raw}
    if not isinstance(raw, dict):
        raise UnitError(
            f"expected a mapping {{relative: 20%, absolute: ...}} or a single value, got {type(raw).__name__}"
        )
    unknown = set(raw) - {"relative", "absolute", "worse", "kind"}
    if unknown:
        raise UnitError(f"unknown key {sorted(unknown)[0]!r}; expected relative, absolute, worse, kind")
    worse = raw.get("worse", base.worse if base else None)
    if worse not in ("higher", "lower"):
        raise UnitError(
            "expected worse: higher or worse: lower (no default for a metric the harness "
            f"does not know; known: {', '.join(DEFAULTS)}), got {worse!r}"
        )
    kind = raw.get("kind", base.kind if base else "number")
    if kind not in KINDS:
        raise UnitError(f"kind: expected one of {', '.join(KINDS)}, got {kind!r}")
    if "relative" not in raw and "absolute" not in raw:
        raise UnitError("expected at least one of relative or absolute")
    tol = base or Tolerance(metric, worse, kind)
    return replace(
        tol,
        worse=worse,
        kind=kind,
        relative=parse_relative(raw["relative"]) if "relative" in raw else None,
        absolute=parse_value(raw["absolute"], kind) if "absolute" in raw else None,
    )


def load_tolerances(path: str | os.PathLike[str] | None) -> dict[str, Tolerance]:
    """The defaults, overridden by the file at ``path`` if given; ConfigError with file:line on bad input."""
    table = dict(DEFAULTS)
    if path is None:
        return table
    if not os.path.isfile(path):
        raise ConfigError(
            f"tolerance file {str(path)!r} not found; expected a YAML file with a tolerances: map"
        )
    doc = load_yaml(path)
    data = doc.data
    prefix: tuple[str, ...] = ()
    if isinstance(data, dict) and "tolerances" in data:
        data, prefix = data["tolerances"], ("tolerances",)
    if not isinstance(data, dict):
        raise ConfigError(
            "expected a map of metric name to tolerance (under tolerances:)",
            doc.locate(prefix) if prefix else Location(str(path)),
        )
    for metric, raw in data.items():
        try:
            table[str(metric)] = _entry(str(metric), raw, DEFAULTS.get(str(metric)))
        except UnitError as exc:
            loc = doc.locate((*prefix, metric))
            raise ConfigError(exc.detail, Location(loc.file, loc.line, loc.column, str(metric))) from None
    return table
