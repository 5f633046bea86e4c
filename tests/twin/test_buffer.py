"""The store-and-forward buffer on its own: drop order, drop reports, frozen payloads."""

from __future__ import annotations

import json

import pytest

from harness.twin.buffer import Entry, StoreAndForward, merge
from harness.twin.telemetry import encode_telemetry


def buffer(capacity: int) -> StoreAndForward:
    return StoreAndForward(capacity, encode_telemetry)


def fill(buf: StoreAndForward, seqs: range) -> None:
    for seq in seqs:
        buf.add(Entry(seq, {"seq": seq}))


@pytest.mark.parametrize(
    ("ranges", "merged"),
    [
        ([], []),
        ([[5, 5], [1, 2], [3, 3]], [[1, 3], [5, 5]]),
        ([[1, 4], [2, 3], [6, 9], [10, 10]], [[1, 4], [6, 10]]),
    ],
)
def test_merge(ranges: list[list[int]], merged: list[list[int]]) -> None:
    assert merge(ranges) == merged


def test_full_buffer_drops_the_oldest_and_the_next_hand_off_reports_it() -> None:
    buf = buffer(3)
    fill(buf, range(1, 7))
    assert [e.seq for e in buf] == [4, 5, 6] and buf.dropped == 3
    entry = buf.next_unsent()
    assert entry is not None
    body = json.loads(buf.hand_off(entry, ref=1))
    assert body == {"seq": 4, "dropped": 3, "dropped_ranges": [[1, 3]]}
    second = buf.next_unsent()
    assert second is not None and json.loads(buf.hand_off(second, ref=2)) == {"seq": 5, "dropped": 3}


def test_a_retransmission_is_the_same_payload() -> None:
    buf = buffer(4)
    fill(buf, range(1, 3))
    entry = buf.next_unsent()
    assert entry is not None
    first = buf.hand_off(entry, ref=1)
    buf.connection_lost()
    assert buf.in_flight == 0 and buf.next_unsent() is entry
    assert buf.hand_off(entry, ref=7) == first
    assert buf.acknowledge(1) is None and buf.acknowledge(7) is entry and len(buf) == 1


def test_dropping_an_in_flight_message_passes_its_drop_report_on() -> None:
    buf = buffer(2)
    fill(buf, range(1, 4))  # 1 dropped
    entry = buf.next_unsent()
    assert entry is not None and entry.seq == 2
    buf.hand_off(entry, ref=1)  # carries [[1, 1]], never acknowledged
    fill(buf, range(4, 5))  # drops 2, in flight
    assert buf.acknowledge(1) is None
    nxt = buf.next_unsent()
    assert nxt is not None and json.loads(buf.hand_off(nxt, ref=2))["dropped_ranges"] == [[1, 2]]


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="capacity: expected at least 1"):
        buffer(0)
