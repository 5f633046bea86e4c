"""What the point actually produced, per direction: delay, jitter, loss, bursts, bytes.

The proxies feed these counters as data passes; :meth:`DirectionStats.snapshot` turns them into a
JSON-ready dict that sits next to the configured values in the journal and in ``statistics()``,
so a report can say "configured 2% loss, produced 1.97%".
"""

from __future__ import annotations

import math
import random
from collections import Counter
from typing import Any

from harness.netmodel.params import LinkParams

RESERVOIR = 20_000


class RunningStats:
    """Mean, standard deviation, min and max (Welford), plus a bounded uniform sample reservoir."""

    __slots__ = ("_m2", "_rng", "count", "maximum", "mean", "minimum", "samples")

    def __init__(self) -> None:
        self.count = 0
        self.mean = 0.0
        self._m2 = 0.0
        self.minimum = math.inf
        self.maximum = -math.inf
        self.samples: list[float] = []
        self._rng = random.Random(0)  # its own stream: never disturbs the impairment sequence

    def add(self, value: float) -> None:
        self.count += 1
        delta = value - self.mean
        self.mean += delta / self.count
        self._m2 += delta * (value - self.mean)
        self.minimum = min(self.minimum, value)
        self.maximum = max(self.maximum, value)
        if len(self.samples) < RESERVOIR:
            self.samples.append(value)
        else:
            slot = self._rng.randrange(self.count)
            if slot < RESERVOIR:
                self.samples[slot] = value

    @property
    def std(self) -> float:
        return math.sqrt(self._m2 / (self.count - 1)) if self.count > 1 else 0.0

    def summary(self, scale: float = 1.0) -> dict[str, float | int | None]:
        if not self.count:
            return {"n": 0, "mean": None, "std": None, "min": None, "max": None}
        return {
            "n": self.count,
            "mean": self.mean * scale,
            "std": self.std * scale,
            "min": self.minimum * scale,
            "max": self.maximum * scale,
        }


class BurstCounter:
    """Lengths of runs of consecutive losses (the "burst lengths" of Gilbert-Elliott)."""

    __slots__ = ("_run", "lengths")

    def __init__(self) -> None:
        self._run = 0
        self.lengths: Counter[int] = Counter()

    def outcome(self, lost: bool) -> None:
        if lost:
            self._run += 1
        elif self._run:
            self.lengths[self._run] += 1
            self._run = 0

    def closed_lengths(self) -> Counter[int]:
        """Completed bursts plus the one in progress, if any."""
        out = Counter(self.lengths)
        if self._run:
            out[self._run] += 1
        return out

    def summary(self) -> dict[str, Any]:
        lengths = self.closed_lengths()
        bursts = sum(lengths.values())
        total = sum(k * v for k, v in lengths.items())
        return {
            "count": bursts,
            "mean": total / bursts if bursts else None,
            "max": max(lengths) if lengths else 0,
            "histogram": {str(k): lengths[k] for k in sorted(lengths)[:32]},
        }


class DirectionStats:
    """Counters of one direction of one service (TCP or UDP)."""

    def __init__(self) -> None:
        self.offered_packets = 0
        self.offered_bytes = 0
        self.delivered_packets = 0
        self.delivered_bytes = 0
        self.lost = 0
        self.duplicated = 0
        self.corrupted = 0
        self.reordered = 0
        self.partition_dropped = 0
        self.held_bytes = 0
        self.delay = RunningStats()
        self.bursts = BurstCounter()
        self.first_delivery: float | None = None
        self.last_delivery: float | None = None
        self._highest_seq = -1

    def offered(self, size: int) -> None:
        self.offered_packets += 1
        self.offered_bytes += size

    def loss_outcome(self, lost: bool) -> None:
        if lost:
            self.lost += 1
        self.bursts.outcome(lost)

    def delivered(self, size: int, delay: float, now: float, seq: int | None = None) -> None:
        self.delivered_packets += 1
        self.delivered_bytes += size
        self.delay.add(delay)
        if self.first_delivery is None:
            self.first_delivery = now
        self.last_delivery = now
        if seq is not None:
            if seq < self._highest_seq:
                self.reordered += 1
            else:
                self._highest_seq = seq

    def snapshot(self, configured: LinkParams) -> dict[str, Any]:
        """Configured next to produced, JSON-ready (delays in milliseconds)."""
        judged = self.offered_packets - self.partition_dropped
        span = None
        if self.first_delivery is not None and self.last_delivery is not None:
            span = self.last_delivery - self.first_delivery
        produced: dict[str, Any] = {
            "offered_packets": self.offered_packets,
            "offered_bytes": self.offered_bytes,
            "delivered_packets": self.delivered_packets,
            "delivered_bytes": self.delivered_bytes,
            "delay_ms": self.delay.summary(1000.0),
            "loss_pct": 100.0 * self.lost / judged if judged else None,
            "lost": self.lost,
            "loss_bursts": self.bursts.summary(),
            "duplicated": self.duplicated,
            "corrupted": self.corrupted,
            "reordered": self.reordered,
            "partition_dropped": self.partition_dropped,
            "held_bytes": self.held_bytes,
            "delivery_span_s": span,
        }
        config = configured.describe()
        expected = {
            "delay_ms": configured.delay * 1000.0,
            "jitter_ms": configured.jitter * 1000.0,
            "loss_pct": configured.expected_loss * 100.0,
        }
        if configured.gemodel is not None:
            expected["mean_burst"] = configured.gemodel.mean_bad_run
        return {"configured": config, "expected": expected, "produced": produced}
