"""Event messages a boot must deliver (OTA status): kept until the broker acknowledges them.

Unlike telemetry (:mod:`harness.twin.buffer`, numbered readings with drop accounting), these are a
few reports whose *latest* state matters most. Each entry stays queued until its PUBACK; a lost
connection makes every unacknowledged entry unsent again, and the next connection sends them first,
in order. A report marked ``coalesce`` (download progress) replaces an older one of the same topic
that has not been handed to the network yet, so an offline device sends its latest progress, not
every step. At most :data:`OUTBOX_LIMIT` entries: past that the oldest is dropped (counted).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

OUTBOX_LIMIT = 32


@dataclass
class Pending:
    topic: str
    payload: bytes
    retain: bool
    coalesce: bool
    ref: int | None = None  # the publish in flight, None while unsent


class Outbox:
    def __init__(self, limit: int = OUTBOX_LIMIT) -> None:
        self.limit = limit
        self.entries: deque[Pending] = deque()
        self.dropped = 0
        self.replaced = 0

    def add(self, topic: str, payload: bytes, *, retain: bool, coalesce: bool) -> None:
        if coalesce:
            for entry in self.entries:
                if entry.coalesce and entry.ref is None and entry.topic == topic:
                    entry.payload, entry.retain = payload, retain
                    self.replaced += 1
                    self.entries.remove(entry)  # keep the order of reports: it moves to the end
                    self.entries.append(entry)
                    return
        if len(self.entries) >= self.limit:
            self.entries.popleft()
            self.dropped += 1
        self.entries.append(Pending(topic, payload, retain, coalesce))

    def unsent(self) -> list[Pending]:
        return [entry for entry in self.entries if entry.ref is None]

    def acknowledge(self, ref: int) -> bool:
        """Forget the entry published as ``ref``; False when ``ref`` is not one of ours."""
        for entry in self.entries:
            if entry.ref == ref:
                self.entries.remove(entry)
                return True
        return False

    def owns(self, ref: int) -> bool:
        return any(entry.ref == ref for entry in self.entries)

    def connection_lost(self) -> None:
        for entry in self.entries:
            entry.ref = None

    def __len__(self) -> int:
        return len(self.entries)
