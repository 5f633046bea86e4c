"""Telemetry journal records as a pandas DataFrame, one row per valid arrival (reports use it too)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd  # type: ignore[import-untyped,unused-ignore]

FIELDS = ("seq", "ts", "uptime", "heap_free", "battery_v", "rssi", "temp_c", "fw", "dropped")
COLUMNS = ("device", "boot_id", *FIELDS, "arrival", "latency", "duplicate", "topic")


def telemetry_frame(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Rows of every ``telemetry`` record in arrival order; ``duplicate`` marks repeats of a seq."""
    rows = []
    seen: set[tuple[str, str, int]] = set()
    for rec in records:
        if rec.get("kind") != "telemetry" or not isinstance(rec.get("payload"), Mapping):
            continue
        payload = rec["payload"]
        key = (str(rec.get("device")), str(payload.get("boot_id")), int(payload.get("seq") or 0))
        arrival = float(rec.get("arrival", rec.get("t", 0.0)))
        ts = payload.get("ts")
        row = {"device": rec.get("device"), "boot_id": payload.get("boot_id")}
        row.update({name: payload.get(name) for name in FIELDS})
        row.update(
            arrival=arrival,
            latency=arrival - ts if isinstance(ts, int | float) else None,
            duplicate=key in seen or rec.get("duplicate") is True,  # seen before this slice too
            topic=rec.get("topic"),
        )
        seen.add(key)
        rows.append(row)
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    if not frame.empty:
        frame["arrival_time"] = pd.to_datetime(frame["arrival"], unit="s", utc=True)
    else:
        frame["arrival_time"] = pd.Series(dtype="datetime64[ns, UTC]")
    return frame
