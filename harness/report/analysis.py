"""One run, analysed: the frames, events, accounting and trends every report draws from, and the flat
``metrics`` dict (the names scenario checks use: ``boot.time.p95``, ``heap.slope`` ...) stored in
results.json and compared between runs.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from harness.report import events as ev
from harness.report.accounting import Accounting, account
from harness.report.boots import CAUSES, Patterns
from harness.report.figures import plural
from harness.report.frames import pick_window, telemetry_frame, windowed
from harness.report.rundata import RunData
from harness.report.stats import percentile
from harness.report.trends import Trend, battery_trend, heap_trend


@dataclass(frozen=True)
class VersionRun:
    """One image on one device: the boots that ran it, from the first to the last."""

    device: str
    version: str
    first: float
    last: float
    boots: int


@dataclass(frozen=True)
class Transition:
    """One OTA attempt as a version change: ``from_version`` -> ``to_version`` and how it ended."""

    device: str
    t: float
    from_version: str | None
    to_version: str
    outcome: str  # committed | rolled_back | rejected | unfinished
    count: int = 1  # identical attempts (same device, from, to and outcome) are listed once


@dataclass(frozen=True)
class Claim:
    """One line of the verdict: ``status`` is ``ok``, ``attention`` or ``not claimed`` (the data cannot
    carry the claim; ``text`` says why)."""

    name: str  # heap | battery | reboots | telemetry | checks
    status: str
    text: str


@dataclass
class Analysis:
    """Every figure the reports show, computed once: the soak page, summary.md, results.json and the
    scenario checks read these fields (and :attr:`figures`, the flat metrics) and compute nothing of
    their own. A figure that cannot be computed is None, with the reason in :attr:`unmeasurable`."""

    run: RunData
    telemetry: pd.DataFrame
    windows: pd.DataFrame
    window: float
    bands: list[ev.Band]
    reboots: list[ev.Reboot]  # every boot (the first included), with cause: harness.report.boots
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
    versions: list[VersionRun] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)  # metrics(self), computed once
    unmeasurable: dict[str, str] = field(default_factory=dict)  # metric -> why it has no value here
    trend_samples: int = 0  # telemetry rows the trends were fitted on (a soak's, or the whole run's)

    @property
    def span(self) -> float:
        return max(0.0, self.end - self.start)

    @property
    def boots_by_cause(self) -> dict[str, int]:
        """``{"power cut": 13, "OTA reboot": 3, ...}`` in the order of :data:`harness.report.boots.CAUSES`."""
        counts = Counter(b.cause for b in self.reboots)
        return {c: counts[c] for c in CAUSES if counts[c]}

    @property
    def counts(self) -> dict[str, int]:
        """The counts the banner and tables show, from the same data as everything else."""
        acc = self.accounting
        return {
            "boots": len(self.reboots),
            "boots.unexpected": sum(1 for b in self.reboots if not b.expected),
            "telemetry.samples": len(self.telemetry),
            "telemetry.trend_samples": self.trend_samples,
            "telemetry.received": acc.total("received") if acc.devices else len(self.telemetry),
            "telemetry.duplicates": acc.total("duplicates"),
            "power.readings": int(self.power.get("readings", 0)),
            "power.actions": sum(int(n) for n in self.power.get("actions", {}).values()),
            "ota.attempts": len(self.ota),
            "checks": len(self.checks),
            "checks.failed": sum(1 for c in self.checks if c.get("passed") is False),
            "checks.skipped": sum(1 for c in self.checks if c.get("skipped")),
            "steps": len(self.steps),
            "steps.failed": sum(1 for st in self.steps if st.get("status") == "failed"),
        }


    @property
    def claims(self) -> list[Claim]:
        """What the banner says, one claim per subject, each from the figures beside it."""
        out = []
        for trend, bad in ((self.heap, "leak"), (self.battery, "drain")):
            if trend.verdict == "unknown":
                out.append(Claim(trend.name, "not claimed", trend.text))
            else:
                out.append(Claim(trend.name, "attention" if trend.verdict == bad else "ok", trend.text))
        c, f = self.counts, self.figures
        if c["boots"]:
            text = f"{plural(c['boots'], 'boot')}, {c['boots.unexpected']} unexpected"
            out.append(Claim("reboots", "attention" if c["boots.unexpected"] else "ok", text))
        else:
            out.append(Claim("reboots", "not claimed", "no boot seen (no boot record, banner or boot_id change)"))
        if c["telemetry.received"]:
            lost = int(f.get("telemetry.loss.unexplained") or 0)
            text = f"{plural(c['telemetry.received'], 'message')} received, {lost} lost unexplained"
            out.append(Claim("telemetry", "attention" if lost else "ok", text))
        else:
            out.append(Claim("telemetry", "not claimed", "no telemetry received"))
        if c["checks"]:
            text = f"{plural(c['checks'], 'check')}: {c['checks.failed']} failed, {c['checks.skipped']} not judged"
            out.append(Claim("checks", "attention" if c["checks.failed"] else "ok", text))
        return out


def analyze(
    run: RunData, *, battery_cutoff_v: float = 3.3, boot_patterns: dict[str, Patterns] | None = None
) -> Analysis:
    """Everything the reports show about ``run``, from its records alone.

    ``boot_patterns`` (device -> the profile's boot banner and marker) find boots in console lines;
    by default they come from the ``device`` records the Dut journals."""
    records = run.records
    start = run.started if run.started is not None else 0.0
    end = float(records[-1]["t"]) if records else (run.finished or start)
    end = max(end, run.finished or end) if run.complete else end
    telemetry = telemetry_frame(records)
    window = pick_window(end - start)
    bands = ev.bands(records, end)
    reboots = ev.reboots(records, boot_patterns)
    ota = ev.ota_attempts(records)
    fitted = soak_telemetry(telemetry, records, end)
    a = Analysis(
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
        heap=heap_trend(fitted),
        battery=battery_trend(fitted, cutoff_v=battery_cutoff_v),
        checks=[_check(r) for r in run.of("check")],
        steps=run.of("step"),
        start=start,
        end=end,
        trend_samples=len(fitted),
    )
    a.versions = version_runs(a)
    a.transitions = transitions(a)
    a.unmeasurable = unmeasurable(a)
    a.figures = metrics(a)
    return a


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
    return {k: r.get(k) for k in ("scenario", "name", "metric", "op", "expected", "observed", "passed", "skipped")}


def metrics(a: Analysis) -> dict[str, Any]:
    """The run's key metrics, flat and JSON-ready; absent data gives None, never a made-up number."""
    out: dict[str, Any] = {}
    boot_times = [b.seconds for b in a.reboots if b.seconds is not None]
    out["boot.time.p50"] = percentile(boot_times, 0.5)
    out["boot.time.p95"] = percentile(boot_times, 0.95)
    out["boot.time.max"] = max(boot_times) if boot_times else None
    slowest = max((b for b in a.reboots if b.seconds is not None), key=lambda b: b.seconds or 0.0, default=None)
    out["boot.time.max.at"] = None if slowest is None else slowest.t - a.start
    out["reboots.total"] = len(a.reboots)
    out["reboots.unexpected"] = sum(1 for b in a.reboots if not b.expected)
    by_cause = Counter(b.cause for b in a.reboots)
    for cause in CAUSES:
        out[f"boots.{cause_key(cause)}"] = by_cause[cause]
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
    out["telemetry.samples"] = len(tel)
    out["heap.slope"] = a.heap.slope_per_hour
    out["heap.slope.low"] = None if a.heap.fit is None else a.heap.fit.low * 3600.0
    out["heap.slope.high"] = None if a.heap.fit is None else a.heap.fit.high * 3600.0
    out["heap.trend"] = a.heap.verdict
    # Seconds until the heap runs out at the fitted rate: only for a leak (a flat trend never runs out;
    # the scenario checks read that as "never").
    out["heap.exhaustion"] = a.heap.exhaustion_s if a.heap.verdict == "leak" else None
    has_heap = bool(tel["heap_free"].notna().any())
    out["heap.min"] = float(tel["heap_free"].min()) if has_heap else None
    # When it happened, in seconds from the start of these records: "31.2 KiB at 41 h 12 min".
    out["heap.min.at"] = float(tel.loc[tel["heap_free"].idxmin(), "t"]) - a.start if has_heap else None
    out["battery.slope"] = a.battery.slope_per_hour
    out["battery.slope.low"] = None if a.battery.fit is None else a.battery.fit.low * 3600.0
    out["battery.slope.high"] = None if a.battery.fit is None else a.battery.fit.high * 3600.0
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
    out["power.readings"] = int(a.power.get("readings", 0))
    out["checks.failed"] = sum(1 for c in a.checks if c.get("passed") is False)
    out["steps.failed"] = sum(1 for s in a.steps if s.get("status") == "failed")
    return out


def cause_key(cause: str) -> str:
    """``power cut`` -> ``power_cut`` (the metric ``boots.power_cut``)."""
    return cause.lower().replace(" ", "_")


def unmeasurable(a: Analysis) -> dict[str, str]:
    """Metrics this run has data for but cannot give a value (or a meaningful one), and why: a trend on
    boots too short to fit, power figures on a rig whose supply was never sampled. A check on one of
    them is not judged (it says why) rather than failed; with no data at all it fails ("no data")."""
    out: dict[str, str] = {}
    for trend, prefix in ((a.heap, "heap"), (a.battery, "battery")):
        if trend.verdict == "unknown" and not trend.text.endswith("no samples"):
            for name in (f"{prefix}.slope", f"{prefix}.trend") + (("heap.exhaustion",) if prefix == "heap" else ()):
                out[name] = trend.text
    if not a.power.get("readings") and a.power.get("actions"):
        why = ("no power readings: the run switched the supply but never measured its current "
               "(power.measure() or a scenario on a rig with a supply samples it)")  # fmt: skip
        for name in ("power.current.mean", "power.current.max", "power.mean"):
            out[name] = why
    return out


def version_runs(a: Analysis) -> list[VersionRun]:
    """The image each boot ran, per device, runs of equal versions merged: ``1.0.0`` for boots 1-3,
    ``26.0.1`` for 4-6 ... From the boot banners; a boot without one takes the telemetry ``fw`` of its
    time, or the version the previous boot ran."""
    out: list[VersionRun] = []
    fw = a.telemetry.dropna(subset=["fw"]) if not a.telemetry.empty else a.telemetry
    current: dict[str, VersionRun] = {}
    for b in a.reboots:
        version = b.version
        if version is None and not fw.empty:
            mine = fw[fw["device"] == b.device] if b.device else fw
            after = mine[mine["t"] >= b.t]
            version = str(after["fw"].iloc[0]) if not after.empty else None
        prev = current.get(b.device)
        if version is None:
            version = prev.version if prev is not None else None
        if version is None:
            continue
        if prev is not None and prev.version == version:
            current[b.device] = VersionRun(b.device, version, prev.first, b.t, prev.boots + 1)
            out[out.index(prev)] = current[b.device]
        else:
            current[b.device] = VersionRun(b.device, version, b.t, b.t, 1)
            out.append(current[b.device])
    return out


def transitions(a: Analysis) -> list[Transition]:
    """Every OTA attempt as from -> to with its outcome; ``from`` is the version the device ran when the
    job began (its last boot's image before the job)."""
    out: dict[tuple[str, str | None, str, str], Transition] = {}
    for o in a.ota:
        before = [v for v in a.versions if v.device in (o.device, "") and v.first <= o.start]
        key = (o.device, before[-1].version if before else None, o.version, o.outcome)
        seen = out.get(key)
        out[key] = Transition(o.device, o.start, *key[1:]) if seen is None else replace(seen, count=seen.count + 1)
    return list(out.values())


def firmware_versions(a: Analysis) -> dict[str, list[str]]:
    """Firmware versions seen per device, each once, in the order first seen (boot banners, telemetry
    ``fw``, committed OTA versions)."""
    out: dict[str, list[str]] = {}
    events: list[tuple[float, str, str]] = [(v.first, v.device, v.version) for v in a.versions]
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
