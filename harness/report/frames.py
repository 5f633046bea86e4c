"""Journal records → pandas DataFrames, one per kind of data, for the reports and for export.

Times are Unix seconds (``t``): telemetry uses the collector's ``arrival`` time so it shares a clock
with injections, power and boots; the device's own ``ts`` only serves the latency.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import pandas as pd

TELEMETRY_FIELDS = (
    "boot_id",
    "seq",
    "uptime",
    "heap_free",
    "battery_v",
    "rssi",
    "temp_c",
    "fw",
    "ts",
    "dropped",
)
TELEMETRY_COLUMNS = ("t", "device", "topic", *TELEMETRY_FIELDS, "latency")


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def telemetry_frame(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per telemetry message: t, device, topic, the payload fields, and latency (s)."""
    rows = []
    for r in records:
        if r.get("kind") != "telemetry":
            continue
        raw = r.get("payload")
        p: dict[str, Any] = raw if isinstance(raw, dict) else {}
        arrival = _num(r.get("arrival"))
        t = arrival if arrival is not None else float(r["t"])
        row: dict[str, Any] = {
            "t": t,
            "device": str(r.get("device") or p.get("device") or ""),
            "topic": str(r.get("topic") or ""),
        }
        for key in TELEMETRY_FIELDS:
            value = p.get(key)
            row[key] = value if key in ("boot_id", "fw") else _num(value)
        row["boot_id"] = None if row["boot_id"] is None else str(row["boot_id"])
        row["fw"] = None if row["fw"] is None else str(row["fw"])
        ts = row["ts"]
        row["latency"] = max(0.0, t - ts) if ts is not None and abs(t - ts) < 86400 else None
        rows.append(row)
    frame = pd.DataFrame(rows, columns=list(TELEMETRY_COLUMNS))
    for col in ("t", "seq", "uptime", "heap_free", "battery_v", "rssi", "temp_c", "ts", "dropped", "latency"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    return frame.sort_values("t", kind="stable").reset_index(drop=True)


def windowed(telemetry: pd.DataFrame, window: float) -> pd.DataFrame:
    """Per window of ``window`` seconds: start t, messages, rate (msg/min), latency p50 and p99 (s)."""
    columns = ["t", "messages", "rate_per_min", "latency_p50", "latency_p99"]
    if telemetry.empty or window <= 0:
        return pd.DataFrame(columns=columns)
    t0 = float(telemetry["t"].min())
    bins = ((telemetry["t"] - t0) // window).astype(int)
    groups = telemetry.groupby(bins)
    out = pd.DataFrame(
        {
            "t": t0 + groups.size().index.to_numpy() * window + window / 2,
            "messages": groups.size().to_numpy(),
            "latency_p50": groups["latency"].quantile(0.5).to_numpy(),
            "latency_p99": groups["latency"].quantile(0.99).to_numpy(),
        }
    )
    out["rate_per_min"] = out["messages"] / (window / 60.0)
    return out[columns]


def pick_window(span: float) -> float:
    """A window that gives roughly 50 to 150 points over ``span`` seconds, in round numbers."""
    for w in (10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 21600, 43200, 86400):
        if span / w <= 150:
            return float(w)
    return 86400.0


def records_frame(records: Iterable[dict[str, Any]], kinds: Iterable[str] | None = None) -> pd.DataFrame:
    """Records as rows (nested values as JSON text), for export; optionally only some kinds."""
    wanted = set(kinds) if kinds is not None else None
    rows = []
    for r in records:
        if wanted is not None and r.get("kind") not in wanted:
            continue
        rows.append(
            {k: (json.dumps(v, sort_keys=True) if isinstance(v, dict | list) else v) for k, v in r.items()}
        )
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    for col in frame.columns:
        if frame[col].dtype == object:
            values = frame[col].dropna()
            if not values.map(lambda x: isinstance(x, int | float) and not isinstance(x, bool)).all():
                frame[col] = frame[col].map(lambda x: None if x is None else str(x))
    return frame


def power_frame(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Power readings (``power`` records with action measure): t, channel, volts, amps, watts."""
    rows = [
        {
            "t": float(r["t"]),
            "channel": r.get("channel"),
            "volts": _num(r.get("volts")),
            "amps": _num(r.get("amps")),
        }
        for r in records
        if r.get("kind") == "power" and r.get("action") == "measure"
    ]
    frame = pd.DataFrame(rows, columns=["t", "channel", "volts", "amps"])
    frame["volts"] = pd.to_numeric(frame["volts"], errors="coerce")
    frame["amps"] = pd.to_numeric(frame["amps"], errors="coerce")
    frame["watts"] = frame["volts"] * frame["amps"]
    return frame
