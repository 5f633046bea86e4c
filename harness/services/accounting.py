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

**Windows.** The records may be a slice of the journal (one test, one scenario). Each boot is then
accounted for the seqs after the last one the collector had received before the slice began (the
``seen_max`` the collector writes on every telemetry record), not from seq 1: what came before is
another window's. A seq lost right at the window's start is still counted here, because the start
is where the collector stood, not the first message the window happens to hold. A boot the slice
only knows from the next boot's first message (``prev_boot``) is accounted for its lost tail if the
power went off inside the slice. Journals without these fields fall back to ``since``.

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
    # Unix time a window of interest began (a test's start), for journals without the collector's
    # seen_max field: a boot already running then is accounted from its first message received in
    # the window. With seen_max (every journal written now) the window starts where the collector stood.
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
    """One valid telemetry message as it arrived (first arrivals and duplicates alike).

    ``seen_max`` and ``duplicate`` are what the collector had received of the boot before this
    arrival (journal fields of the same names; ``seen_max`` None in journals older than them).
    """

    seq: int
    ts: float
    arrival: float
    uptime: float
    dropped: int
    dropped_ranges: tuple[tuple[int, int], ...] = ()
    seen_max: int | None = None
    seen_dropped: int = 0  # the device's dropped counter on that seen_max message
    duplicate: bool = False
    redelivered: bool = False  # the broker re-sent it to the collector's session (MQTT DUP flag)


@dataclass(frozen=True)
class PrevBoot:
    """A device's previous boot as the collector last saw it, named by the first message of a new boot."""

    boot_id: str
    last_seq: int
    last_ts: float
    last_dropped: int
    first_arrival: float  # of the new boot's message that named it


# -- the pure function ------------------------------------------------------------------------------
def account(records: Iterable[Mapping[str, Any]], config: AccountingConfig | None = None) -> Accounting:
    """Account for every telemetry message in ``records`` (journal records, any order)."""
    cfg = config or AccountingConfig()
    recs = list(records)
    run_end = max((float(r.get("t", 0.0)) for r in recs), default=0.0)
    windows = network_windows(recs, run_end)
    offs = power_offs(recs)
    boots: dict[str, dict[str, list[Arrival]]] = {}
    prev_boots: dict[str, dict[str, PrevBoot]] = {}
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
            prev = _prev_boot(rec, item.arrival)
            if prev is not None:
                prev_boots.setdefault(device, {}).setdefault(prev.boot_id, prev)
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
            {b: p for b, p in prev_boots.get(device, {}).items() if b not in dev_boots},
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
    seen_max, seen_dropped = rec.get("seen_max"), rec.get("seen_dropped", 0)
    return (
        device,
        msg["boot_id"],
        Arrival(
            msg["seq"],
            float(msg["ts"]),
            arrived,
            float(msg["uptime"]),
            msg["dropped"],
            ranges,
            seen_max=seen_max if isinstance(seen_max, int) and not isinstance(seen_max, bool) else None,
            seen_dropped=seen_dropped if isinstance(seen_dropped, int) else 0,
            duplicate=rec.get("duplicate") is True,
            redelivered=rec.get("redelivered") is True,
        ),
    )


def _prev_boot(rec: Mapping[str, Any], arrival: float) -> PrevBoot | None:
    prev = rec.get("prev_boot")
    if not isinstance(prev, Mapping):
        return None
    boot_id, last_seq, last_ts = prev.get("boot_id"), prev.get("last_seq"), prev.get("last_ts")
    if not (isinstance(boot_id, str) and isinstance(last_seq, int) and isinstance(last_ts, int | float)):
        return None
    dropped = prev.get("last_dropped", 0)
    return PrevBoot(boot_id, last_seq, float(last_ts), dropped if isinstance(dropped, int) else 0, arrival)


def _learn_interval(boots: Mapping[str, list[Arrival]], default: float) -> float:
    steps = []
    for arrivals in boots.values():
        unique = sorted({a.seq: a for a in arrivals}.values(), key=lambda a: a.seq)
        for p, n in itertools.pairwise(unique):
            if n.ts > p.ts:
                steps.append((n.ts - p.ts) / (n.seq - p.seq))
    return statistics.median(steps) if steps else default


def _baseline(arrivals: list[Arrival], cfg: AccountingConfig) -> int:
    """The last seq of the boot received before these records begin: the window accounts for the seqs
    after it. The collector's ``seen_max`` on the window's first arrival says it exactly (0: the
    collector had seen nothing of this boot, so it is accounted from seq 1). Without it (an older
    journal), a boot already running at ``since`` is accounted from its first message seen."""
    first = arrivals[0]
    if first.seen_max is not None:
        return first.seen_max
    lowest = min(arrivals, key=lambda a: a.seq)
    if cfg.since is not None and lowest.ts - lowest.uptime < cfg.since:
        return lowest.seq - 1
    return 0


def _account_device(
    dev: DeviceAccount,
    boots: Mapping[str, list[Arrival]],
    prev_boots: Mapping[str, PrevBoot],
    cfg: AccountingConfig,
    windows: list[Window],
    offs: list[PowerOff],
    run_end: float,
) -> None:
    # (first arrival, boot id, arrivals, what a later boot said of it): boots these records only know
    # from the next boot's first message go just before it (their tail may have been cut here)
    entries = [(arr[0].arrival, b, arr, None) for b, arr in boots.items()]
    entries += [(p.first_arrival, b, [], p) for b, p in prev_boots.items()]
    ordered = sorted(entries, key=lambda e: (e[0], bool(e[2])))
    for index, (first_arrival, boot_id, arrivals, prev) in enumerate(ordered):
        boot = BootAccount(device=dev.device, boot_id=boot_id, first_arrival=first_arrival)
        base = prev.last_seq if prev is not None else _baseline(arrivals, cfg)
        boot.accounted_from = base + 1
        first: dict[int, Arrival] = {}
        max_seq = base
        for a in arrivals:
            boot.received += 1
            if a.duplicate or a.seq in first:
                boot.duplicates += 1
                boot.redelivered += a.redelivered
                continue
            if a.seq < max_seq:
                boot.out_of_order += 1
            first[a.seq] = a
            max_seq = max(max_seq, a.seq)
            dev.latencies.append((boot_id, a.seq, a.arrival - a.ts))
        unique = sorted(first.values(), key=lambda a: a.seq)
        boot.unique = len(unique)
        if unique:
            boot.first_seq, boot.last_seq = unique[0].seq, unique[-1].seq
            boot.dropped_reported = max(a.dropped for a in unique)
        # the seqs this window accounts for: those after the last one received before it
        chain = [a for a in unique if a.seq > base]
        start = _start(base, prev, chain, arrivals, dev.interval)
        dev.gaps.extend(_inner_gaps(dev, boot_id, [start, *chain], cfg, windows))
        next_start = None
        if index + 1 < len(ordered):
            nxt = ordered[index + 1][2]
            if nxt:
                lowest = min(nxt, key=lambda a: a.seq)
                next_start = lowest.ts - lowest.uptime
        last = chain[-1] if chain else start
        tail = _tail_gap(dev, boot_id, last, next_start, offs, cfg, run_end) if last.seq > 0 else None
        if tail is not None:
            boot.ended_by = "power-off"
            if tail.count > 0:
                dev.gaps.append(tail)
        elif next_start is not None:
            boot.ended_by = "reboot"
        if arrivals or (tail is not None and tail.count > 0):
            dev.boots.append(boot)


def _start(base: int, prev: PrevBoot | None, chain: list[Arrival], arrivals: list[Arrival], interval: float) -> Arrival:
    """A stand-in for the last message before the window (seq ``base``; seq 0 for a boot's start)."""
    if prev is not None:
        ts = prev.last_ts
    elif chain:
        ts = chain[0].ts - (chain[0].seq - base) * interval
    else:  # only redeliveries of older seqs arrived: place it after the newest of them
        ts = max(a.ts + (base - a.seq) * interval for a in arrivals)
    arrival = chain[0].arrival if chain else (prev.first_arrival if prev is not None else arrivals[0].arrival)
    dropped = prev.last_dropped if prev is not None else (arrivals[0].seen_dropped if arrivals else 0)
    return Arrival(seq=base, ts=ts, arrival=arrival, uptime=0.0, dropped=dropped)


def _inner_gaps(
    dev: DeviceAccount, boot_id: str, chain: list[Arrival], cfg: AccountingConfig, windows: list[Window]
) -> list[Gap]:
    """Gaps between consecutive new seqs of ``chain`` (its first element: the stand-in for the start)."""
    explicit = {s for a in chain for lo, hi in a.dropped_ranges for s in range(lo, hi + 1)}
    interval = dev.interval
    gaps: list[Gap] = []
    for p, n in itertools.pairwise(chain):
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
