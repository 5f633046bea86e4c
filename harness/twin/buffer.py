"""The store-and-forward buffer: bounded, in sequence order, drops the oldest message when full.

A message enters when it is produced and leaves only when the broker acknowledged it (PUBACK), so
a dropped connection loses nothing; a power cut loses all of it (it is RAM). Overflow drops the
oldest message, in flight or not, and remembers its sequence number: the next message handed to
the MQTT client carries the cumulative ``dropped`` count and the ``dropped_ranges`` since the
previous hand-off. A message's payload is frozen at its first hand-off, so a retransmission after
a reconnect is byte-for-byte the same message.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

Ranges = list[list[int]]
#: Builds the wire payload of a reading: ``(reading, dropped, dropped_ranges) -> bytes``.
Encoder = Callable[[dict[str, object], int, Ranges], bytes]


@dataclass
class Entry:
    """One buffered message: its reading, and once handed off its payload and drop report."""

    seq: int
    reading: dict[str, object]
    payload: bytes | None = None
    ranges: Ranges = field(default_factory=list)  # the drop report frozen into the payload
    ref: int | None = None  # publish reference while in flight on the current connection


def add_seq(ranges: Ranges, seq: int) -> None:
    """Append ``seq`` (ascending) to ``ranges``, extending the last range when contiguous."""
    if ranges and ranges[-1][1] + 1 == seq:
        ranges[-1][1] = seq
    else:
        ranges.append([seq, seq])


def merge(ranges: Ranges) -> Ranges:
    """Sorted, with overlapping or adjacent ranges joined."""
    merged: Ranges = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], last)
        else:
            merged.append([first, last])
    return merged


class StoreAndForward:
    """At most ``capacity`` entries, oldest first."""

    def __init__(self, capacity: int, encode: Encoder) -> None:
        if capacity < 1:
            raise ValueError(f"capacity: expected at least 1 message (got {capacity})")
        self.capacity = capacity
        self.encode = encode
        self.dropped = 0  # cumulative this boot
        self.pending: Ranges = []  # dropped since the last hand-off
        self._entries: deque[Entry] = deque()

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries)

    @property
    def in_flight(self) -> int:
        return sum(1 for e in self._entries if e.ref is not None)

    def add(self, entry: Entry) -> Entry | None:
        """Store a new entry; when full, drop the oldest first and return it."""
        victim = None
        if len(self._entries) >= self.capacity:
            victim = self._entries.popleft()
            self.dropped += 1
            # Its own drop report was never acknowledged: it travels on with the next hand-off.
            self.pending = merge([*self.pending, *victim.ranges, [victim.seq, victim.seq]])
        self._entries.append(entry)
        return victim

    def next_unsent(self) -> Entry | None:
        """The oldest entry not in flight on the current connection."""
        return next((e for e in self._entries if e.ref is None), None)

    def hand_off(self, entry: Entry, ref: int) -> bytes:
        """Mark ``entry`` in flight as ``ref``; return its payload (frozen at the first hand-off)."""
        if entry.payload is None:
            entry.ranges, self.pending = self.pending, []
            entry.payload = self.encode(entry.reading, self.dropped, entry.ranges)
        entry.ref = ref
        return entry.payload

    def acknowledge(self, ref: int) -> Entry | None:
        """Remove the entry published as ``ref``; None if it is gone (dropped while in flight)."""
        for entry in self._entries:
            if entry.ref == ref:
                self._entries.remove(entry)
                return entry
        return None

    def connection_lost(self) -> None:
        """Nothing is in flight any more: every entry is sent again on the next connection."""
        for entry in self._entries:
            entry.ref = None
