"""One run, analysed: the frames, events, accounting and trends every report draws from, and the flat
``metrics`` dict (the names scenario checks use: ``boot.time.p95``, ``heap.slope`` ...) stored in
results.json and compared between runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from harness.report import events as ev
from harness.report.accounting import Accounting, account
from harness.report.frames import pick_window, telemetry_frame, windowed
from harness.report.rundata import RunData
from harness.report.stats import percentile
from harness.report.trends import Trend, battery_trend, heap_trend


@dataclass
class Analysis:
    run: RunData
    telemetry: pd.DataFrame
    windows: pd.DataFrame
    window: float
    bands: list[ev.Band]
    reboots: list[ev.Reboot]
    ota: list[ev.OtaAttempt]
    markers: list[ev.Marker]
    power: dict[str, Any]
    accounting: Accounting
    heap: Trend
    battery: Trend
    checks: list[dict[str, Any]]
    steps: list[dict[str, Any]]
    start: float
    end: float

    @property
    def span(self) -> float:
        return max(0.0, self.end - self.start)


def analyze(run: RunData, *, battery_cutoff_v: float = 3.3) -> Analysis:
    """Everything the reports show about ``run``, from its records alone."""
    records = run.records
    start = run.started if run.started is not None else 0.0
    end = float(records[-1]["t"]) if records else (run.finished or start)
    end = max(end, run.finished or end) if run.complete else end
    telemetry = telemetry_frame(records)
    window = pick_window(end - start)
    bands = ev.bands(records, end)
    reboots = ev.reboots(records)
    ota = ev.ota_attempts(records)
    return Analysis(
        run=run,
        telemetry=telemetry,
        windows=windowed(telemetry, window),
        window=window,
        bands=bands,
        reboots=reboots,
        ota=ota,
        markers=ev.markers(records, reboots, ota),
        power=ev.power_summary(records),
        accounting=account(records),
        heap=heap_trend(soak_telemetry(telemetry, records, end)),
        battery=battery_trend(soak_telemetry(telemetry, records, end), cutoff_v=battery_cutoff_v),
        checks=[_check(r) for r in run.of("check")],
        steps=run.of("step"),
        start=start,
        end=end,
    )


def soak_windows(records: list[dict[str, Any]], end: float) -> list[tuple[float, float]]:
    """(start, end) of every scenario run with a ``duration`` (a soak), from its start and end records;
    a soak with no end record (the run died) lasts its duration, or to the end of the run."""
    windows = []
    for i, r in enumerate(records):
        if r.get("kind") != "scenario" or r.get("action") != "start" or r.get("duration") is None:
            continue
        t0 = float(r.get("t", 0.0))
        stop = next((float(e.get("t", t0)) for e in records[i + 1:] if e.get("kind") == "scenario"
                     and e.get("action") == "end" and e.get("scenario") == r.get("scenario")), None)  # fmt: skip
        windows.append((t0, stop if stop is not None else min(end, t0 + float(r["duration"]))))
    return windows


def soak_telemetry(telemetry: pd.DataFrame, records: list[dict[str, Any]], end: float) -> pd.DataFrame:
    """The telemetry leak and drain trends are fitted on: inside soak scenarios when the run has any.

    A run of the device suite exercises the device (a dump holds 8 KiB of heap, settings grow the config,
    an outage fills the message buffer), so heap falls within a boot for reasons that are not leaks; a
    trend over the whole run would call that a leak. Without a soak, the whole run is used (a scenario's
    own checks see only that scenario's records)."""
    windows = soak_windows(records, end)
    if not windows or telemetry.empty:
        return telemetry
    inside = pd.Series(False, index=telemetry.index)
    for t0, t1 in windows:
        inside |= (telemetry["t"] >= t0) & (telemetry["t"] <= t1)
    return telemetry[inside]


def _check(r: dict[str, Any]) -> dict[str, Any]:
    return {k: r.get(k) for k in ("scenario", "name", "metric", "op", "expected", "observed", "passed")}


def metrics(a: Analysis) -> dict[str, Any]:
    """The run's key metrics, flat and JSON-ready; absent data gives None, never a made-up number."""
    out: dict[str, Any] = {}
    boot_times = [b.seconds for b in a.reboots if b.seconds is not None]
    out["boot.time.p50"] = percentile(boot_times, 0.5)
    out["boot.time.p95"] = percentile(boot_times, 0.95)
    out["boot.time.max"] = max(boot_times) if boot_times else None
    out["reboots.total"] = len(a.reboots)
    out["reboots.unexpected"] = sum(1 for b in a.reboots if not b.expected)
    tel = a.telemetry
    acc = a.accounting
    out["telemetry.received"] = acc.total("received") if acc.devices else len(tel)  # every valid arrival
    out["telemetry.unique"] = acc.total("unique") if acc.devices else None  # distinct seqs among them
    lost = acc.lost_by_cause()
    out["telemetry.loss.total"] = sum(lost.values())
    for cause, n in lost.items():
        out[f"telemetry.loss.{cause.replace('-', '_')}"] = n
    out["telemetry.duplicates"] = acc.total("duplicates")
    out["telemetry.late"] = acc.total("late")
    out["telemetry.malformed"] = len(a.run.of("telemetry.malformed"))
    lat = tel["latency"].dropna().tolist() if not tel.empty else []
    for q, name in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
        out[f"telemetry.latency.{name}"] = percentile(lat, q)
    out["heap.slope"] = a.heap.slope_per_hour
    out["heap.trend"] = a.heap.verdict
    # Seconds until the heap runs out at the fitted rate: only for a leak (a flat trend never runs out;
    # the scenario checks read that as "never").
    out["heap.exhaustion"] = a.heap.exhaustion_s if a.heap.verdict == "leak" else None
    out["heap.min"] = float(tel["heap_free"].min()) if tel["heap_free"].notna().any() else None
    out["battery.slope"] = a.battery.slope_per_hour
    out["battery.trend"] = a.battery.verdict
    done = [o for o in a.ota if o.duration is not None]
    out["ota.attempts"] = len(a.ota)
    out["ota.committed"] = sum(1 for o in a.ota if o.outcome == "committed")
    out["ota.outcome"] = a.ota[-1].outcome if a.ota else "none"
    out["ota.duration.max"] = max(o.duration for o in done if o.duration is not None) if done else None
    out["ota.duration.mean"] = sum(o.duration or 0.0 for o in done) / len(done) if done else None
    out["power.current.mean"] = a.power.get("current_mean_a")
    out["power.current.max"] = a.power.get("current_max_a")
    out["power.mean"] = a.power.get("power_mean_w")
    out["checks.failed"] = sum(1 for c in a.checks if c.get("passed") is False)
    out["steps.failed"] = sum(1 for s in a.steps if s.get("status") == "failed")
    return out


def firmware_versions(a: Analysis) -> dict[str, list[str]]:
    """Firmware versions seen per device (telemetry ``fw``, committed OTA versions), in order."""
    out: dict[str, list[str]] = {}
    events: list[tuple[float, str, str]] = []
    if not a.telemetry.empty:
        events += [
            (float(t), str(d), str(f))
            for t, d, f in a.telemetry[["t", "device", "fw"]].dropna().itertuples(index=False)
        ]
    events += [
        (o.end or o.start, o.device, o.version) for o in a.ota if o.outcome == "committed" and o.version
    ]
    for _, device, fw in sorted(events):
        seen = out.setdefault(device, [])
        if fw not in seen:
            seen.append(fw)
    return out
