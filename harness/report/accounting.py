"""Telemetry accounting for the reports: received, lost by cause, duplicated, late.

When ``harness.services.accounting.account(records)`` is importable (the collector's own loss
attribution, so live numbers and reports agree), its per-device numbers are used: *received* counts
unique messages, *late* its out-of-order arrivals. Otherwise this module counts from the journal
itself, per device
and boot: a missing sequence number is *lost*; it is ``overflow`` when the device reported the
range as dropped, ``network`` when it falls inside a network impairment band, else ``unexplained``.
A sequence number seen twice is a *duplicate*; one that arrives after a higher one is *late*.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from harness.report.events import Band

CAUSES = ("network", "power-cut", "overflow", "unexplained")


@dataclass
class DeviceAccount:
    device: str
    received: int = 0
    duplicates: int = 0
    late: int = 0
    lost_by_cause: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CAUSES, 0))

    @property
    def lost(self) -> int:
        return sum(self.lost_by_cause.values())


@dataclass
class Accounting:
    devices: dict[str, DeviceAccount]
    source: str  # "services.accounting" or "report"

    def total(self, name: str) -> int:
        return sum(int(getattr(d, name)) for d in self.devices.values())

    def lost_by_cause(self) -> dict[str, int]:
        out = dict.fromkeys(CAUSES, 0)
        for d in self.devices.values():
            for cause, n in d.lost_by_cause.items():
                out[cause] = out.get(cause, 0) + int(n)
        return out


def account(records: list[dict[str, Any]], bands: list[Band]) -> Accounting:
    """The collector's accounting when available, else :func:`count_from_journal`."""
    try:
        from harness.services.accounting import account as service_account
    except ImportError:
        return count_from_journal(records, bands)
    return _adapt(service_account(records))


def _adapt(result: Any) -> Accounting:
    """The collector's :class:`harness.services.accounting.Accounting` in this module's terms."""
    devices: dict[str, DeviceAccount] = {}
    for name, dev in (getattr(result, "devices", None) or {}).items():
        lost_fn = getattr(dev, "lost", None)
        if callable(lost_fn):
            lost = {c: int(lost_fn(c)) for c in CAUSES}
        else:
            lost = {str(k): int(v) for k, v in (getattr(dev, "lost_by_cause", None) or {}).items()}
        received = getattr(dev, "unique", None)
        if received is None:
            received = getattr(dev, "received", 0)
        late = getattr(dev, "out_of_order", None)
        if late is None:
            late = getattr(dev, "late", 0)
        devices[str(name)] = DeviceAccount(
            str(name),
            int(received or 0),
            int(getattr(dev, "duplicates", 0) or 0),
            int(late or 0),
            {**dict.fromkeys(CAUSES, 0), **lost},
        )
    return Accounting(devices, "services.accounting")


def _dropped_seqs(payload: dict[str, Any]) -> set[int]:
    out: set[int] = set()
    for rng in payload.get("dropped_ranges") or []:
        if isinstance(rng, list | tuple) and len(rng) == 2 and all(isinstance(x, int) for x in rng):
            out.update(range(int(rng[0]), int(rng[1]) + 1))
    return out


def count_from_journal(records: list[dict[str, Any]], bands: list[Band]) -> Accounting:
    """Count per device and boot from ``telemetry`` records alone (see the module docstring)."""
    network = [(b.start, b.end) for b in bands if b.kind in ("partition", "impairment", "profile", "broker")]
    devices: dict[str, DeviceAccount] = {}
    per_boot: dict[tuple[str, str], list[tuple[int, float]]] = {}
    dropped: dict[tuple[str, str], set[int]] = {}
    seen: dict[tuple[str, str], set[int]] = {}
    highest: dict[tuple[str, str], int] = {}
    for r in records:
        p = r.get("payload")
        if r.get("kind") != "telemetry" or not isinstance(p, dict):
            continue
        device = str(r.get("device") or p.get("device") or "")
        acc = devices.setdefault(device, DeviceAccount(device))
        seq = p.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool):
            acc.received += 1
            continue
        key = (device, str(p.get("boot_id")))
        dropped.setdefault(key, set()).update(_dropped_seqs(p))
        if seq in seen.setdefault(key, set()):
            acc.duplicates += 1
            continue
        acc.received += 1
        seen[key].add(seq)
        if seq < highest.get(key, seq):
            acc.late += 1
        highest[key] = max(seq, highest.get(key, seq))
        per_boot.setdefault(key, []).append((seq, float(r.get("arrival") or r["t"])))
    for key, got in per_boot.items():
        acc = devices[key[0]]
        got.sort()
        for (s0, t0), (s1, t1) in itertools.pairwise(got):
            for s in range(s0 + 1, s1):
                when = t0 + (t1 - t0) * (s - s0) / (s1 - s0)
                if s in dropped.get(key, set()):
                    cause = "overflow"
                elif any(a - 1.0 <= when <= b + 1.0 for a, b in network):
                    cause = "network"
                else:
                    cause = "unexplained"
                acc.lost_by_cause[cause] += 1
    return Accounting(devices, "report")
