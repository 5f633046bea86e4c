"""Telemetry accounting: a pure function from journal records to per-device message accounts.

:func:`account` is used live by the collector and later by reports built from the journal only,
so both always agree. For each device and boot it counts received messages, duplicates and
out-of-order arrivals, finds sequence gaps, and says why each missing message was lost:

``overflow``
    covered by the device's ``dropped_ranges``, or by the rise of its ``dropped`` counter between
    the two messages around the gap (the buffer drops oldest first, so the oldest missing seqs);
``network``
    produced (by the estimate below) while a partition, a lossy impairment, a broker outage or a
    collector disconnection was in force, give or take ``network_grace`` plus one interval;
``power-cut``
    missing at the tail of a boot that ended with a power-off: estimated from the last received
    message's device time, the message interval and the power-off time (RAM buffer gone);
``unexplained``
    anything else.

The production time of a missing seq is interpolated between the device timestamps of the
received messages around the gap. The message interval is ``AccountingConfig.interval`` or,
when unset, learned per device as the median ts-step per seq-step of consecutive messages.
Device clocks are assumed synchronised with the harness (NTP, or the twin on the same machine).
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from harness.services.accounts import (
    CAUSES,
    Accounting,
    BootAccount,
    DeviceAccount,
    Gap,
    latency_percentiles,
    percentile,
)
from harness.services.events import PowerOff, Window, network_windows, power_offs
from harness.services.telemetry_schema import MalformedMessage, device_of, validate_telemetry

__all__ = [
    "CAUSES",
    "Accounting",
    "AccountingConfig",
    "BootAccount",
    "DeviceAccount",
    "Gap",
    "account",
    "latency_percentiles",
    "percentile",
]


@dataclass(frozen=True)
class AccountingConfig:
    """Knobs of the attribution rules (see the module docstring)."""

    interval: float | None = None  # seconds between produced messages; None: learned from the data
    default_interval: float = 1.0  # when it cannot be learned (fewer than two messages in a boot)
    network_grace: float = 2.0  # seconds either side of a network-down window still blamed on it
    tail_tolerance: float = 0.25  # fraction of an interval: a message due at power-off is not counted
    # Unix time a window of interest began (a test's start): a boot already running then is accounted
    # from its first message received in the window, not from seq 1 (those came before the window).
    since: float | None = None

    def __post_init__(self) -> None:
        if self.interval is not None and not self.interval > 0:
            raise ValueError(f"interval: expected seconds > 0, got {self.interval!r}")
        if not self.default_interval > 0:
            raise ValueError(f"default_interval: expected seconds > 0, got {self.default_interval!r}")
        if self.network_grace < 0:
            raise ValueError(f"network_grace: expected seconds >= 0, got {self.network_grace!r}")


@dataclass(frozen=True)
class Arrival:
    """One valid telemetry message as it arrived (first arrivals and duplicates alike)."""

    seq: int
    ts: float
    arrival: float
    uptime: float
    dropped: int
    dropped_ranges: tuple[tuple[int, int], ...] = ()


# -- the pure function ------------------------------------------------------------------------------
def account(records: Iterable[Mapping[str, Any]], config: AccountingConfig | None = None) -> Accounting:
    """Account for every telemetry message in ``records`` (journal records, any order)."""
    cfg = config or AccountingConfig()
    recs = list(records)
    run_end = max((float(r.get("t", 0.0)) for r in recs), default=0.0)
    windows = network_windows(recs, run_end)
    offs = power_offs(recs)
    boots: dict[str, dict[str, list[Arrival]]] = {}
    malformed: dict[str, int] = {}
    malformed_unknown = 0
    statuses: dict[str, list[dict[str, Any]]] = {}
    for rec in sorted(recs, key=lambda r: float(r.get("arrival", r.get("t", 0.0)))):
        kind = rec.get("kind")
        if kind == "telemetry":
            arrival = _arrival(rec)
            if arrival is None:
                malformed_unknown += 1
                continue
            device, boot_id, item = arrival
            if item is None:
                malformed[device] = malformed.get(device, 0) + 1
                continue
            boots.setdefault(device, {}).setdefault(boot_id, []).append(item)
        elif kind == "telemetry.malformed":
            named = device_of(str(rec.get("topic", "")))
            if named is None:
                malformed_unknown += 1
            else:
                malformed[named] = malformed.get(named, 0) + 1
        elif kind == "telemetry.status" and isinstance(rec.get("device"), str):
            statuses.setdefault(rec["device"], []).append(dict(rec.get("payload") or {}))
    devices: dict[str, DeviceAccount] = {}
    for device in sorted(set(boots) | set(malformed) | set(statuses)):
        dev_boots = boots.get(device, {})
        interval = cfg.interval or _learn_interval(dev_boots, cfg.default_interval)
        dev = DeviceAccount(device=device, interval=interval, malformed=malformed.get(device, 0))
        _account_device(
            dev,
            dev_boots,
            cfg,
            [w for w in windows if w.applies_to(device)],
            [p for p in offs if p.applies_to(device)],
            run_end,
        )
        for status in statuses.get(device, []):
            dev.status = status
            if status.get("state") == "offline":
                if status.get("reason") == "lwt":
                    dev.offline_lwt += 1
                elif status.get("reason") == "clean":
                    dev.offline_clean += 1
        devices[device] = dev
    return Accounting(devices=devices, windows=windows, power_offs=offs, malformed_unknown=malformed_unknown)


def _arrival(rec: Mapping[str, Any]) -> tuple[str, str, Arrival | None] | None:
    """(device, boot_id, arrival) of a telemetry record; arrival None if its payload is invalid."""
    device = rec.get("device") or device_of(str(rec.get("topic", "")))
    if not isinstance(device, str):
        return None
    payload = rec.get("payload")
    try:
        msg = validate_telemetry(payload, device)
    except MalformedMessage:
        return device, "", None
    ranges = tuple((int(a), int(b)) for a, b in msg.get("dropped_ranges", ()))
    arrived = float(rec.get("arrival", rec.get("t", 0.0)))
    return (
        device,
        msg["boot_id"],
        Arrival(msg["seq"], float(msg["ts"]), arrived, float(msg["uptime"]), msg["dropped"], ranges),
    )


def _learn_interval(boots: Mapping[str, list[Arrival]], default: float) -> float:
    steps = []
    for arrivals in boots.values():
        unique = sorted({a.seq: a for a in arrivals}.values(), key=lambda a: a.seq)
        for p, n in itertools.pairwise(unique):
            if n.ts > p.ts:
                steps.append((n.ts - p.ts) / (n.seq - p.seq))
    return statistics.median(steps) if steps else default


def _account_device(
    dev: DeviceAccount,
    boots: Mapping[str, list[Arrival]],
    cfg: AccountingConfig,
    windows: list[Window],
    offs: list[PowerOff],
    run_end: float,
) -> None:
    ordered = sorted(boots.items(), key=lambda kv: kv[1][0].arrival)
    for index, (boot_id, arrivals) in enumerate(ordered):
        boot = BootAccount(device=dev.device, boot_id=boot_id, first_arrival=arrivals[0].arrival)
        first: dict[int, Arrival] = {}
        max_seq = 0
        for a in arrivals:
            boot.received += 1
            if a.seq in first:
                boot.duplicates += 1
                continue
            if a.seq < max_seq:
                boot.out_of_order += 1
            first[a.seq] = a
            max_seq = max(max_seq, a.seq)
            dev.latencies.append((boot_id, a.seq, a.arrival - a.ts))
        unique = sorted(first.values(), key=lambda a: a.seq)
        boot.unique = len(unique)
        boot.first_seq, boot.last_seq = unique[0].seq, unique[-1].seq
        boot.dropped_reported = max(a.dropped for a in unique)
        dev.gaps.extend(_inner_gaps(dev, boot_id, unique, cfg, windows))
        next_start = None
        if index + 1 < len(ordered):
            nxt = min(ordered[index + 1][1], key=lambda a: a.seq)
            next_start = nxt.ts - nxt.uptime
        tail = _tail_gap(dev, boot_id, unique[-1], next_start, offs, cfg, run_end)
        if tail is not None:
            boot.ended_by = "power-off"
            if tail.count > 0:
                dev.gaps.append(tail)
        elif next_start is not None:
            boot.ended_by = "reboot"
        dev.boots.append(boot)


def _inner_gaps(
    dev: DeviceAccount, boot_id: str, unique: list[Arrival], cfg: AccountingConfig, windows: list[Window]
) -> list[Gap]:
    explicit = {s for a in unique for lo, hi in a.dropped_ranges for s in range(lo, hi + 1)}
    interval = dev.interval
    first = unique[0]
    began_before_window = cfg.since is not None and first.ts - first.uptime < cfg.since
    start = Arrival(seq=0, ts=first.ts - first.seq * interval, arrival=first.arrival, uptime=0.0, dropped=0)
    gaps: list[Gap] = []
    for p, n in itertools.pairwise(unique if began_before_window else [start, *unique]):
        if n.seq <= p.seq + 1:
            continue
        missing = range(p.seq + 1, n.seq)
        causes: dict[int, tuple[str, str]] = {}
        for s in missing:
            if s in explicit:
                causes[s] = ("overflow", "dropped_ranges")
        budget = n.dropped - p.dropped - len(causes)
        for s in missing:  # the buffer drops oldest first
            if budget <= 0:
                break
            if s not in causes:
                causes[s] = ("overflow", "dropped counter")
                budget -= 1
        step = (n.ts - p.ts) / (n.seq - p.seq)
        for s in missing:
            if s in causes:
                continue
            t = p.ts + (s - p.seq) * step
            hit = next((w for w in windows if w.overlaps(t, t, cfg.network_grace + interval)), None)
            causes[s] = ("network", hit.cause) if hit else ("unexplained", "")
        gaps.extend(_group(dev.device, boot_id, missing, causes, p, step))
    return gaps


def _group(
    device: str, boot_id: str, missing: range, causes: Mapping[int, tuple[str, str]], p: Arrival, step: float
) -> list[Gap]:
    out: list[Gap] = []
    run: list[int] = []
    for s in [*missing, -1]:
        if run and (s == -1 or causes[s] != causes[run[0]]):
            cause, detail = causes[run[0]]
            produced = (p.ts + (run[0] - p.seq) * step, p.ts + (run[-1] - p.seq) * step)
            out.append(Gap(device, boot_id, run[0], run[-1], cause, produced=produced, detail=detail))
            run = []
        if s != -1:
            run.append(s)
    return out


def _tail_gap(
    dev: DeviceAccount,
    boot_id: str,
    last: Arrival,
    next_start: float | None,
    offs: list[PowerOff],
    cfg: AccountingConfig,
    run_end: float,
) -> Gap | None:
    """The messages lost when power went off after the boot's last received message, if it did."""
    interval = dev.interval
    latest = (next_start if next_start is not None else run_end) + cfg.network_grace
    off = next((p for p in offs if last.ts - interval * cfg.tail_tolerance <= p.t <= latest), None)
    if off is None:
        return None
    count = max(0, math.floor((off.t - last.ts) / interval - cfg.tail_tolerance))
    return Gap(
        dev.device,
        boot_id,
        last.seq + 1,
        last.seq + count,
        "power-cut",
        estimated=True,
        produced=(last.ts + interval, last.ts + count * interval),
        detail=f"power {off.action}",
    )
