"""The keep alive rule a broker enforces (MQTT 3.1.1 §3.1.2.10), on the pure tracker, in fake seconds."""

from __future__ import annotations

import pytest

from harness.services.keepalive import KeepaliveTracker


@pytest.mark.parametrize(
    ("keep_alive", "packets_at", "checked_at", "expired"),
    [
        (10, [], 14.9, False),  # under 1.5 x 10 s of silence
        (10, [], 15.0, True),  # exactly 1.5 x keep alive
        (10, [9.0], 20.0, False),  # a packet at 9 s moves the deadline to 24 s
        (10, [9.0], 24.0, True),
        (0, [], 1e9, False),  # keep alive 0 turns the check off
    ],
)
def test_a_client_expires_after_one_and_a_half_keepalives_of_silence(
    keep_alive: int, packets_at: list[float], checked_at: float, expired: bool
) -> None:
    tracker = KeepaliveTracker()
    tracker.connected("dev", keep_alive, now=0.0)
    for t in packets_at:
        tracker.received("dev", t)
    assert [cid for cid, _ in tracker.expired(checked_at)] == (["dev"] if expired else [])


def test_expired_clients_are_forgotten_and_a_reconnect_starts_afresh() -> None:
    tracker = KeepaliveTracker()
    tracker.connected("a", 2, now=0.0)
    tracker.connected("b", 4, now=0.0)
    assert tracker.next_deadline() == 3.0
    assert tracker.expired(3.5) == [("a", 3.5)]
    assert tracker.expired(3.6) == [] and len(tracker) == 1 and tracker.next_deadline() == 6.0
    tracker.connected("a", 2, now=10.0)  # the same client id, a new connection
    assert tracker.next_deadline() == 6.0
    assert sorted(cid for cid, _ in tracker.expired(13.0)) == ["a", "b"]
    assert tracker.next_deadline() is None


def test_packets_from_unknown_or_forgotten_clients_change_nothing() -> None:
    tracker = KeepaliveTracker()
    tracker.received("ghost", 1.0)
    tracker.connected("dev", 1, now=0.0)
    tracker.forget("dev")
    tracker.received("dev", 5.0)
    assert len(tracker) == 0 and tracker.expired(100.0) == []
