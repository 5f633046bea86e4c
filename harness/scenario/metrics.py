"""The metrics checks compare: computed from journal records only, so they can be recomputed later.

Reboots are counted from the console (lines matching the device profile's boot-done marker)
against the boots the harness caused (power steps, power-cut and reboot injections), so a crash
or watchdog reset shows up as unexpected whatever the firmware prints about it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def slope_per_hour(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (t seconds, value) in value per hour; None with fewer than 3 points."""
    if len(points) < 3:
        return None
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    sxx = sum((t - mt) ** 2 for t, _ in points)
    if sxx == 0:
        return None
    sxy = sum((t - mt) * (v - mv) for t, v in points)
    return sxy / sxx * 3600.0


def compute_metrics(
    records: Iterable[dict[str, Any]],
    *,
    boot_done: str | None = None,
    expected_boots: int | None = None,
    steps_failed: int = 0,
) -> dict[str, Any]:
    recs = list(records)
    out: dict[str, Any] = {"steps.failed": steps_failed}

    boots = [r for r in recs if r.get("kind") == "boot"]
    times = [float(r["seconds"]) for r in boots if "seconds" in r]
    out["boot.time.p50"] = _percentile(times, 0.5)
    out["boot.time.p95"] = _percentile(times, 0.95)
    out["boot.time.max"] = max(times) if times else None

    injections = [r for r in recs if r.get("kind") == "injection"]
    cuts = sum(1 for r in injections if r.get("action") == "power-cut")
    out["power_cuts"] = cuts
    if boot_done:
        marker = re.compile(boot_done)
        seen = sum(1 for r in recs if r.get("kind") == "console" and marker.search(str(r.get("line", ""))))
        out["reboots.total"] = seen
        caused = expected_boots if expected_boots is not None else len(boots)
        out["reboots.unexpected"] = max(0, seen - caused)

    telemetry = [r for r in recs if r.get("kind") == "telemetry"]
    malformed = sum(1 for r in recs if r.get("kind") == "telemetry.malformed")
    if telemetry or malformed:
        out.update(_telemetry_metrics(recs, telemetry))
        out["telemetry.malformed"] = malformed

    ota = [r for r in recs if r.get("kind") == "ota" and r.get("phase") in ("committed", "rolled_back", "rejected")]
    out["ota.outcome"] = ota[-1]["phase"] if ota else "none"
    results = [r for r in recs if r.get("kind") == "ota.result"]
    out["ota.failed"] = sum(1 for r in results if not r.get("as_expected", True))
    durations = [float(r["duration"]) for r in results if r.get("duration") is not None]
    out["ota.duration.max"] = max(durations) if durations else None
    return out


def _telemetry_metrics(recs: list[dict[str, Any]], telemetry: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"telemetry.received": len(telemetry)}
    latencies = []
    heap: list[tuple[float, float]] = []
    battery: list[tuple[float, float]] = []
    for r in telemetry:
        p = r.get("payload") or {}
        ts, arrival = p.get("ts"), r.get("arrival", r.get("t"))
        if isinstance(ts, int | float) and isinstance(arrival, int | float):
            latencies.append(max(0.0, float(arrival) - float(ts)))
        if isinstance(ts, int | float) and isinstance(p.get("heap_free"), int | float):
            heap.append((float(ts), float(p["heap_free"])))
        if isinstance(ts, int | float) and isinstance(p.get("battery_v"), int | float):
            battery.append((float(ts), float(p["battery_v"])))
    for q, name in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
        out[f"telemetry.latency.{name}"] = _percentile(latencies, q)
    out["heap.slope"] = slope_per_hour(heap)
    out["heap.min"] = min(v for _, v in heap) if heap else None
    out["battery.slope"] = slope_per_hour(battery)
    try:
        from harness.services.accounting import account
    except ImportError:
        return out
    acc = account(recs)
    out.update(_loss_metrics(acc))
    return out


def _loss_metrics(acc: Any) -> dict[str, Any]:
    """Flatten the accounting's per-device loss causes into the check metrics."""
    totals = {"network": 0, "power-cut": 0, "overflow": 0, "unexplained": 0}
    duplicates = 0
    devices = getattr(acc, "devices", {}) or {}
    for dev in devices.values():
        lost = getattr(dev, "lost_by_cause", None) or {}
        for cause, n in lost.items():
            totals[cause] = totals.get(cause, 0) + int(n)
        duplicates += int(getattr(dev, "duplicates", 0))
    return {
        "telemetry.loss.total": sum(totals.values()),
        "telemetry.loss.network": totals.get("network", 0),
        "telemetry.loss.power_cut": totals.get("power-cut", 0),
        "telemetry.loss.overflow": totals.get("overflow", 0),
        "telemetry.loss.unexplained": totals.get("unexplained", 0),
        "telemetry.duplicates": duplicates,
    }
