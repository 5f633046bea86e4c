"""What telemetry accounting finds: per-boot and per-device accounts, gaps, latency, assertions.

Produced by :func:`harness.services.accounting.account`; kept apart from the algorithm so reports
can read results without the rules. Assertion helpers fail with the offending seq ranges.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from harness.services.events import PowerOff, Window

CAUSES = ("overflow", "network", "power-cut", "unexplained")


@dataclass(frozen=True)
class Gap:
    """A run of consecutive missing seqs in one boot, all lost for the same reason."""

    device: str
    boot_id: str
    first_seq: int
    last_seq: int
    cause: str
    estimated: bool = False  # count inferred from time (a power-cut tail), not from seq numbers
    produced: tuple[float, float] | None = None  # estimated device time of first and last seq
    detail: str = ""

    @property
    def count(self) -> int:
        return self.last_seq - self.first_seq + 1

    def describe(self) -> str:
        seqs = f"seq {self.first_seq}" if self.count == 1 else f"seq {self.first_seq}-{self.last_seq}"
        text = f"{self.device} boot {self.boot_id} {seqs} ({self.count} {self.cause}"
        if self.estimated:
            text += ", estimated"
        if self.detail:
            text += f", {self.detail}"
        return text + ")"


@dataclass
class BootAccount:
    """Accounting of one boot of one device."""

    device: str
    boot_id: str
    first_arrival: float
    received: int = 0
    unique: int = 0
    duplicates: int = 0
    # of the duplicates, those the broker re-sent to the collector's own session (MQTT DUP: its
    # acknowledgement was lost, e.g. at a broker restart); duplicates - redelivered were published
    # twice (a device resend) and reach every subscriber alike
    redelivered: int = 0
    out_of_order: int = 0
    first_seq: int = 0
    last_seq: int = 0
    dropped_reported: int = 0
    ended_by: str = "running"  # running, power-off, reboot
    # the first seq these records account for: 1, or one after the last seq of this boot the
    # collector had received before the records begin (a test's or scenario's window)
    accounted_from: int = 1

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class DeviceAccount:
    """Accounting of one device over the run."""

    device: str
    interval: float
    boots: list[BootAccount] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    latencies: list[tuple[str, int, float]] = field(default_factory=list)  # (boot_id, seq, seconds)
    malformed: int = 0
    status: dict[str, Any] | None = None
    offline_lwt: int = 0
    offline_clean: int = 0

    @property
    def received(self) -> int:
        return sum(b.received for b in self.boots)

    @property
    def unique(self) -> int:
        return sum(b.unique for b in self.boots)

    @property
    def duplicates(self) -> int:
        return sum(b.duplicates for b in self.boots)

    @property
    def redelivered(self) -> int:
        return sum(b.redelivered for b in self.boots)

    @property
    def out_of_order(self) -> int:
        return sum(b.out_of_order for b in self.boots)

    def lost(self, cause: str | None = None) -> int:
        return sum(g.count for g in self.gaps if cause is None or g.cause == cause)

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "interval": self.interval,
            "received": self.received,
            "unique": self.unique,
            "duplicates": self.duplicates,
            "redelivered": self.redelivered,
            "out_of_order": self.out_of_order,
            "malformed": self.malformed,
            "lost": {c: self.lost(c) for c in CAUSES},
            "boots": [b.to_dict() for b in self.boots],
            "gaps": [g.__dict__ | {"count": g.count} for g in self.gaps],
            "latency": latency_percentiles([lat for _, _, lat in self.latencies]),
            "status": self.status,
            "offline_lwt": self.offline_lwt,
            "offline_clean": self.offline_clean,
        }


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def latency_percentiles(values: list[float]) -> dict[str, float]:
    return {
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": max(values) if values else math.nan,
        "count": float(len(values)),
    }


@dataclass
class Accounting:
    """The result of :func:`account`: per-device accounts plus the fault windows used."""

    devices: dict[str, DeviceAccount]
    windows: list[Window]
    power_offs: list[PowerOff]
    malformed_unknown: int = 0  # malformed messages whose topic names no device

    @property
    def received(self) -> int:
        return sum(d.received for d in self.devices.values())

    @property
    def unique(self) -> int:
        return sum(d.unique for d in self.devices.values())

    @property
    def duplicates(self) -> int:
        return sum(d.duplicates for d in self.devices.values())

    @property
    def redelivered(self) -> int:
        return sum(d.redelivered for d in self.devices.values())

    @property
    def out_of_order(self) -> int:
        return sum(d.out_of_order for d in self.devices.values())

    @property
    def malformed(self) -> int:
        return self.malformed_unknown + sum(d.malformed for d in self.devices.values())

    def gaps(self, cause: str | None = None, device: str | None = None) -> list[Gap]:
        return [
            g
            for d in self.devices.values()
            if device is None or d.device == device
            for g in d.gaps
            if cause is None or g.cause == cause
        ]

    def lost(self, cause: str | None = None, device: str | None = None) -> int:
        return sum(g.count for g in self.gaps(cause, device))

    def latencies(self, device: str | None = None) -> list[float]:
        return [lat for d in self.devices.values() if device is None or d.device == device for _, _, lat in d.latencies]

    def latency(self, device: str | None = None) -> dict[str, float]:
        """p50/p90/p99/max of device-timestamp-to-arrival latency, seconds."""
        return latency_percentiles(self.latencies(device))

    def to_dict(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "unique": self.unique,
            "duplicates": self.duplicates,
            "redelivered": self.redelivered,
            "out_of_order": self.out_of_order,
            "malformed": self.malformed,
            "lost": {c: self.lost(c) for c in CAUSES},
            "latency": self.latency(),
            "devices": {name: d.to_dict() for name, d in sorted(self.devices.items())},
        }

    def __str__(self) -> str:
        lines = [
            f"{'device':<16} {'recv':>7} {'uniq':>7} {'dup':>5} {'ooo':>5} {'bad':>4} "
            + " ".join(f"{c:>11}" for c in CAUSES)
            + f" {'p99 lat':>8}"
        ]
        for name, d in sorted(self.devices.items()):
            p99 = percentile([lat for _, _, lat in d.latencies], 99)
            lines.append(
                f"{name:<16} {d.received:>7} {d.unique:>7} {d.duplicates:>5} {d.out_of_order:>5} {d.malformed:>4} "
                + " ".join(f"{d.lost(c):>11}" for c in CAUSES)
                + f" {p99:>7.3f}s"
            )
        return "\n".join(lines)

    # -- assertions with messages that show the offending seq ranges -------------------------------
    def assert_no_unexplained_loss(self, device: str | None = None) -> None:
        bad = self.gaps("unexplained", device)
        if bad:
            explained = ", ".join(f"{c} {self.lost(c, device)}" for c in CAUSES[:-1])
            raise AssertionError(
                f"{sum(g.count for g in bad)} telemetry message(s) lost without explanation: "
                + "; ".join(g.describe() for g in bad[:20])
                + (f"; ... {len(bad) - 20} more gaps" if len(bad) > 20 else "")
                + f" (explained losses: {explained})"
            )

    def assert_no_loss(self, device: str | None = None) -> None:
        gaps = self.gaps(None, device)
        if gaps:
            raise AssertionError(
                f"{sum(g.count for g in gaps)} telemetry message(s) lost: " + "; ".join(g.describe() for g in gaps[:20])
            )

    def assert_latency(
        self,
        *,
        p50: float | None = None,
        p90: float | None = None,
        p99: float | None = None,
        max: float | None = None,
        device: str | None = None,
    ) -> None:
        """Fail if a latency percentile is above its bound; the message lists slow seq ranges."""
        stats = self.latency(device)
        if not stats["count"]:
            raise AssertionError(f"no telemetry received{f' from {device}' if device else ''}: no latency")
        failed = [
            (name, bound, stats[name])
            for name, bound in (("p50", p50), ("p90", p90), ("p99", p99), ("max", max))
            if bound is not None and stats[name] > bound
        ]
        if not failed:
            return
        bound = min(b for _, b, _ in failed)
        slow = _slow_ranges(self, bound, device)
        raise AssertionError(
            "telemetry latency too high: "
            + ", ".join(f"{name} {got:.3f}s > {b:g}s" for name, b, got in failed)
            + f" over {int(stats['count'])} messages; slower than {bound:g}s: "
            + "; ".join(slow[:20])
            + (f"; ... {len(slow) - 20} more ranges" if len(slow) > 20 else "")
        )


def _slow_ranges(acc: Accounting, bound: float, device: str | None) -> list[str]:
    out = []
    for name, dev in sorted(acc.devices.items()):
        if device is not None and name != device:
            continue
        slow = sorted((b, s, lat) for b, s, lat in dev.latencies if lat > bound)
        run: list[tuple[str, int, float]] = []
        for item in [*slow, ("", -1, 0.0)]:
            if run and (item[0] != run[-1][0] or item[1] != run[-1][1] + 1):
                first, last = run[0][1], run[-1][1]
                seqs = f"seq {first}" if first == last else f"seq {first}-{last}"
                out.append(f"{name} boot {run[0][0]} {seqs} (max {max(x[2] for x in run):.3f}s)")
                run = []
            run.append(item)
    return out
