"""The control state one service's proxy reads: parameters, models' random streams, measurements.

A :class:`LinkState` belongs to one named service (``mqtt``, ``ota``...) and is only touched on
the point's event-loop thread. Configuration changes replace both directions in one step and
close the measurement *epoch*: statistics are kept per epoch, so what was produced is always
compared with what was configured at the time.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from harness.netmodel.model import TokenBucket, bucket_for, derive_rng
from harness.netmodel.params import CLEAR, DIRECTIONS, LinkParams
from harness.netmodel.stats import DirectionStats

Address = tuple[str, int]

# Parameters that act on datagrams only; a TCP service reports them as not applied.
PACKET_ONLY = ("loss", "gemodel", "duplicate", "corrupt", "reorder")


@dataclass
class CloseAfter:
    """``close_after``: close a connection once ``nbytes`` have passed in the counted directions."""

    nbytes: int
    directions: tuple[str, ...]


@dataclass
class LinkState:
    """Everything one service's proxy needs to decide what to do with the next byte or datagram."""

    name: str
    kind: str  # "tcp" | "udp"
    upstream: Address
    seed: int | str | None
    params: dict[str, LinkParams] = field(default_factory=lambda: dict.fromkeys(DIRECTIONS, CLEAR))
    stalled: bool = False
    refusing: bool = False
    close_after: CloseAfter | None = None
    epoch: int = 0
    listen: Address | None = None
    fast: bool = True

    def __post_init__(self) -> None:
        self.rngs: dict[str, random.Random] = {d: derive_rng(self.seed, self.name, d) for d in DIRECTIONS}
        self.stats: dict[str, DirectionStats] = {d: DirectionStats() for d in DIRECTIONS}
        self._buckets: dict[str, TokenBucket | None] = dict.fromkeys(DIRECTIONS)

    def refresh(self) -> None:
        """Recompute :attr:`fast`: nothing impaired, held or counted, so data may go straight through."""
        self.fast = (
            not self.stalled
            and self.close_after is None
            and self.params["up"].is_clear
            and self.params["down"].is_clear
        )

    def bucket(self, direction: str) -> TokenBucket | None:
        """The token bucket every connection of ``direction`` shares (kept while rate and burst hold)."""
        wanted = bucket_for(self.params[direction])
        current = self._buckets[direction]
        if wanted is None or current is None or (current.rate, current.burst) != (wanted.rate, wanted.burst):
            self._buckets[direction] = current = wanted
        return current

    def snapshot(self, direction: str) -> dict[str, Any]:
        """Configured next to produced for ``direction`` in the current epoch."""
        params = self.params[direction]
        snap = self.stats[direction].snapshot(params)
        snap.update(service=self.name, proto=self.kind, direction=direction, epoch=self.epoch)
        if self.kind == "tcp":  # a stream cannot lose, duplicate, corrupt or reorder bytes
            snap["not_applied"] = [name for name in PACKET_ONLY if name in snap["configured"]]
            snap["expected"]["loss_pct"] = None
            snap["produced"]["loss_pct"] = None
        return snap

    def new_epoch(self, params: dict[str, LinkParams]) -> list[dict[str, Any]]:
        """Swap in ``params`` (both directions at once); return the closing epoch's snapshots."""
        closing = [self.snapshot(d) for d in DIRECTIONS]
        self.params = dict(params)
        self.stats = {d: DirectionStats() for d in DIRECTIONS}
        self.epoch += 1
        self.refresh()
        return closing
