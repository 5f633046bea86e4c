"""Event messages a boot must deliver (OTA status): kept until the broker acknowledges them.

Unlike telemetry (:mod:`harness.twin.buffer`, numbered readings with drop accounting), these are a
few reports whose *latest* state matters most. Each entry stays queued until its PUBACK; a lost
connection makes every unacknowledged entry unsent again, and the next connection sends them first,
in order. A report marked ``coalesce`` (download progress) replaces an older one of the same topic
that has not been handed to the network yet, so an offline device sends its latest progress, not
every step. At most :data:`OUTBOX_LIMIT` entries: past that the oldest is dropped (counted).

The outbox belongs to one boot's session, but a software or watchdog reset does not lose it: the
core saves the entries not yet handed to a connection in noinit RAM (:mod:`harness.twin.noinit`) and
the next boot's outbox starts with them (:meth:`Outbox.restore`), so they go out first, in the order
they were made. Entries in flight on a live connection are waited for before the reset (the core's
``stopping`` state); those acknowledged are gone, those the broker did not acknowledge in time are
carried too (sent again: at least once). A power cut loses everything.
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
        self.carried = 0  # entries this outbox started with, from the boot before

    def restore(self, entries: list[Pending]) -> None:
        """Start with what the previous boot left unsent (noinit RAM): first in line."""
        kept = entries[-self.limit :] if self.limit else []
        self.dropped += len(entries) - len(kept)
        for entry in kept:
            self.entries.append(Pending(entry.topic, entry.payload, entry.retain, entry.coalesce))
        self.carried += len(kept)

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
