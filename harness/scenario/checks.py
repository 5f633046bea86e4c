"""Checks: ``metric op value`` with units, parsed without eval.

``telemetry.loss.unexplained == 0``, ``telemetry.latency.p99 < 5s``, ``heap.slope > -100B/h``,
``ota.outcome == committed``, ``heap.trend != leak``, ``heap.exhaustion > 90d``. Each metric has a
kind that decides which values it accepts; a check prints observed against expected.
"""

from __future__ import annotations

import difflib
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.errors import UnitError
from harness.report.boots import CAUSES
from harness.report.figures import format_kind
from harness.units import parse_duration, parse_fraction, parse_size


@dataclass(frozen=True)
class Metric:
    name: str
    kind: str  # count | duration | horizon | fraction | bytes | slope_bytes | slope_volts | outcome
    description: str
    needs: tuple[str, ...] = ()
    values: tuple[str, ...] = ()  # an outcome's possible values
    # How the value can move while a run goes on: "up" (a maximum; counts by default), "down" (a minimum),
    # "either" (percentiles, trends, outcomes, and losses: a message counted lost may still arrive late).
    # Only a monotone metric can be judged early.
    monotone: str = ""


_OUTCOMES = ("committed", "rolled_back", "rejected", "none")
_HEAP_TRENDS = ("leak", "flat", "rising", "unknown")
_BATTERY_TRENDS = ("drain", "flat", "rising", "unknown")

METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("steps.failed", "count", "steps that failed"),
        Metric("telemetry.received", "count", "telemetry messages received, duplicates included", ("telemetry",)),
        Metric("telemetry.unique", "count", "distinct telemetry messages received", ("telemetry",)),
        Metric("telemetry.loss.total", "count", "messages lost, whatever the cause", ("telemetry",),
               monotone="either"),
        Metric("telemetry.loss.unexplained", "count", "messages lost with no injection to explain it",
               ("telemetry",), monotone="either"),
        Metric("telemetry.loss.network", "count", "messages lost while the network was down", ("telemetry",),
               monotone="either"),
        Metric("telemetry.loss.power_cut", "count", "messages lost in RAM at a power cut", ("telemetry",),
               monotone="either"),
        Metric("telemetry.loss.overflow", "count", "messages dropped by buffer overflow", ("telemetry",),
               monotone="either"),
        Metric("telemetry.duplicates", "count", "duplicate messages", ("telemetry",)),
        Metric("telemetry.malformed", "count", "malformed messages", ("telemetry",)),
        Metric("telemetry.latency.p50", "duration", "device-to-collector latency, median", ("telemetry",)),
        Metric("telemetry.latency.p95", "duration", "device-to-collector latency, 95th percentile",
               ("telemetry",)),
        Metric("telemetry.latency.p99", "duration", "device-to-collector latency, 99th percentile",
               ("telemetry",)),
        Metric("reboots.total", "count", "boots observed (every power-on, reset and reboot)", ("console",)),
        Metric("reboots.unexpected", "count", "boots no injection or step explains", ("console",)),
        Metric("power_cuts", "count", "power cuts injected", ("power",)),
        *(Metric(f"boots.{cause.replace(' ', '_').lower()}", "count", f"boots caused by: {cause}", ("console",))
          for cause in CAUSES),
        Metric("boot.time.p50", "duration", "power/reset to prompt, median", ("console",)),
        Metric("boot.time.p95", "duration", "power/reset to prompt, 95th percentile", ("console",)),
        Metric("boot.time.max", "duration", "power/reset to prompt, slowest", ("console",), monotone="up"),
        Metric("ota.outcome", "outcome", "outcome of the last OTA update", ("ota",), _OUTCOMES),
        Metric("ota.failed", "count", "OTA updates whose outcome was not the expected one", ("ota",)),
        Metric("ota.duration.max", "duration", "slowest OTA update, job to outcome", ("ota",), monotone="up"),
        Metric("heap.slope", "slope_bytes", "fitted trend of free heap", ("telemetry",)),
        Metric("heap.trend", "outcome", "verdict on free heap: leak only when the 99.9% interval excludes zero",
               ("telemetry",), _HEAP_TRENDS),
        Metric("heap.exhaustion", "horizon", "time until free heap runs out at the fitted leak; never without one",
               ("telemetry",)),
        Metric("heap.min", "bytes", "lowest free heap reported", ("telemetry",), monotone="down"),
        Metric("battery.slope", "slope_volts", "fitted trend of battery voltage", ("telemetry",)),
        Metric("battery.trend", "outcome", "verdict on battery voltage: drain, flat, rising or unknown",
               ("telemetry",), _BATTERY_TRENDS),
    )
}

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}

_EXPR = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(==|!=|<=|>=|<|>|=)\s*(\S.*?)\s*$")
_SLOPE = re.compile(r"^([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*(B|KiB|kB|mV|V)\s*/\s*(h|d|min)$")
_PER = {"h": 1.0, "d": 1 / 24.0, "min": 60.0}
_SCALE = {"B": 1.0, "kB": 1000.0, "KiB": 1024.0, "V": 1.0, "mV": 1e-3}


@dataclass(frozen=True)
class CheckSpec:
    text: str
    metric: Metric
    op: str
    expected: Any

    def early_judgement(self) -> str | None:
        """None when this check can be judged while the run goes on (``continuous: true``): once it fails
        it stays failed, whatever comes later. Otherwise why not, in one phrase."""
        monotone = self.metric.monotone or ("up" if self.metric.kind == "count" else "either")
        if monotone == "up" and (self.op in ("<", "<=") or (self.op == "==" and self.expected == 0)):
            return None
        if monotone == "down" and self.op in (">", ">="):
            return None
        if monotone == "up":
            return f"{self.metric.name} only grows, so only '<', '<=' or '== 0' can fail before the end"
        if monotone == "down":
            return f"{self.metric.name} only falls, so only '>' or '>=' can fail before the end"
        return (f"{self.metric.name} can move either way until the end; continuous checks take counts of "
                "boots, cuts, steps and messages, boot.time.max, ota.duration.max and heap.min")  # fmt: skip

    def evaluate(self, observed: Any) -> bool:
        if observed is None:
            return False
        if self.metric.kind == "outcome":
            return bool(_OPS[self.op](str(observed), self.expected))
        return bool(_OPS[self.op](float(observed), float(self.expected)))

    def show(self, value: Any) -> str:
        return format_value(self.metric.kind, value)


def undecided(spec: CheckSpec, metrics: dict[str, Any]) -> str | None:
    """Why this run cannot judge ``spec``, or None: the metric has data but no meaningful value here
    (``metrics["unmeasurable"]``), or a slope check's limit lies inside the slope's confidence interval
    (the data cannot tell which side the true slope is on: a longer run narrows the interval)."""
    name = spec.metric.name
    why = (metrics.get("unmeasurable") or {}).get(name)
    if why:
        return str(why)
    if spec.metric.kind in ("slope_bytes", "slope_volts") and spec.op in ("<", "<=", ">", ">="):
        low, high = metrics.get(f"{name}.low"), metrics.get(f"{name}.high")
        if isinstance(low, int | float) and isinstance(high, int | float) and low < float(spec.expected) < high:
            return (f"the limit {spec.show(spec.expected)} lies inside the slope's 99.9% confidence interval "
                    f"({spec.show(low)} … {spec.show(high)}): too little time within boots to tell")  # fmt: skip
    return None


def parse_check(text: str) -> CheckSpec:
    """Parse ``metric op value``; raises ValueError naming what is wrong (pydantic turns it into a field error)."""
    m = _EXPR.match(text)
    if not m:
        raise ValueError(f"expected 'metric op value' such as 'telemetry.latency.p99 < 5s', got {text!r}")
    name, op, raw = m.groups()
    if op == "=":
        raise ValueError(f"expected a comparison ==, !=, <, <=, >, >=; got '=' in {text!r} (did you mean '=='?)")
    metric = METRICS.get(name)
    if metric is None:
        hint = difflib.get_close_matches(name, METRICS, n=1, cutoff=0.6)
        more = f"; did you mean {hint[0]!r}?" if hint else f"; known metrics: {', '.join(METRICS)}"
        raise ValueError(f"unknown metric {name!r}{more}")
    expected = _parse_value(metric, raw)
    if metric.kind == "outcome" and op not in ("==", "!="):
        raise ValueError(f"{name} is an outcome: compare it with == or !=, not {op}")
    return CheckSpec(text.strip(), metric, op, expected)


def _parse_value(metric: Metric, raw: str) -> Any:
    kind = metric.kind
    try:
        if kind == "count":
            if not re.fullmatch(r"\d+", raw):
                raise ValueError(f"{metric.name} is a count: expected a whole number, got {raw!r}")
            return int(raw)
        if kind in ("duration", "horizon"):
            return parse_duration(raw)
        if kind == "fraction":
            return parse_fraction(raw)
        if kind == "bytes":
            return parse_size(raw)
        if kind == "outcome":
            if raw not in metric.values:
                hint = difflib.get_close_matches(raw, metric.values, n=1, cutoff=0.6)
                more = f" (did you mean {hint[0]!r}?)" if hint else ""
                raise ValueError(f"{metric.name}: expected one of {', '.join(metric.values)}, got {raw!r}{more}")
            return raw
        if kind in ("slope_bytes", "slope_volts"):
            unit = "B/h" if kind == "slope_bytes" else "V/h"
            sm = _SLOPE.match(raw)
            if not sm or (kind == "slope_bytes") != (sm.group(2) in ("B", "KiB", "kB")):
                raise ValueError(f"{metric.name} is a trend: expected a value such as '-100{unit}', got {raw!r}")
            return float(sm.group(1)) * _SCALE[sm.group(2)] * _PER[sm.group(3)]
    except UnitError as exc:
        raise ValueError(f"{metric.name}: {exc}") from None
    raise ValueError(f"{metric.name}: cannot compare values of kind {kind}")


def format_value(kind: str, value: Any) -> str:
    """A check's value with unit and sensible precision (the reports' own formatting: one number reads
    the same in a check, the soak page and summary.md)."""
    return format_kind(kind, value)
