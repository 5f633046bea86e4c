"""The collector's transport-free core on a deterministic clock: messages fed at scheduled instants,
waits that advance the clock instead of sleeping, the same journal records and errors as on a broker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.run.journal import Journal, read_journal
from harness.run.manual_clock import DEFAULT_EPOCH, ManualClock
from harness.services.collector_core import CollectorCore, TelemetryTimeout

TOPIC = "devices/dev-1/telemetry"


def payload(seq: int, *, boot: str = "b1", ts: float = DEFAULT_EPOCH) -> bytes:
    return json.dumps({"device": "dev-1", "boot_id": boot, "seq": seq, "uptime": float(seq), "heap_free": 40000,
                       "battery_v": 3.7, "rssi": -60, "temp_c": 24.5, "fw": "1.0.0", "ts": ts,
                       "dropped": 0}).encode()  # fmt: skip


def core(clock: ManualClock, journal: Journal | None = None) -> CollectorCore:
    return CollectorCore("sim://broker", journal, client_id="collector-test", clock=clock)


def every(clock: ManualClock, col: CollectorCore, period: float, seqs: range, **kw: Any) -> None:
    """The device publishes seq n at n * period seconds (arriving at once)."""
    for n in seqs:
        clock.call_at(n * period, lambda n=n: col.receive(TOPIC, payload(n, ts=clock.wall(), **kw)))


def test_a_count_wait_advances_the_clock_to_the_arrival_that_satisfies_it() -> None:
    clock = ManualClock()
    col = core(clock)
    every(clock, col, 10.0, range(1, 100))
    got = col.wait_for(5, timeout=3600)
    assert [m.seq for m in got] == [1, 2, 3, 4, 5]
    assert clock.now() == 50.0  # not a second more: the fifth message arrived at t=50
    assert got[-1].arrival == DEFAULT_EPOCH + 50.0


def test_a_count_wait_times_out_at_its_instant_saying_what_it_got() -> None:
    clock = ManualClock()
    col = core(clock)
    every(clock, col, 10.0, range(1, 4))
    with pytest.raises(TelemetryTimeout) as err:
        col.wait_for(5, timeout=90)
    assert clock.now() == 90.0
    assert str(err.value).startswith("timed out after 90s waiting for 5 new telemetry messages on sim://broker; "
                                     "got 3 new")  # fmt: skip
    assert "seq 3" in str(err.value)


def test_redeliveries_do_not_count_as_new_and_are_journalled_as_duplicates(tmp_path: Path) -> None:
    clock = ManualClock()
    journal = Journal(tmp_path / "journal.jsonl", clock=clock)
    col = core(clock, journal)
    for n in (1, 2, 2, 3):
        clock.call_at(float(n), lambda n=n: col.receive(TOPIC, payload(n), redelivered=True))
    got = col.wait_for(3, timeout=10)
    assert [m.seq for m in got] == [1, 2, 3]
    assert col.counts()["received"] == 4 and col.counts()["duplicates"] == 1
    journal.flush()
    tele = [r for r in read_journal(journal.path) if r["kind"] == "telemetry"]
    assert [r.get("duplicate", False) for r in tele] == [False, False, True, False]
    assert tele[2]["redelivered"] is True
    assert tele[0]["t"] == DEFAULT_EPOCH + 1.0  # stamped on the run's clock, not the machine's
    summary = col.summary()
    assert (summary.received, summary.unique) == (4, 3)
    journal.close()


def test_a_predicate_wait_sees_every_arrival() -> None:
    clock = ManualClock()
    col = core(clock)
    every(clock, col, 1.0, range(1, 20))
    assert col.wait_for(lambda m: m.seq == 7, timeout=60).seq == 7
    assert clock.now() == 7.0


def test_status_waits_and_malformed_messages_never_stop_the_collector() -> None:
    clock = ManualClock()
    col = core(clock)
    clock.call_at(1.0, lambda: col.receive("devices/dev-1/telemetry", b"{not json"))
    clock.call_at(2.0, lambda: col.receive("devices/dev-1/status", b'{"state": "online"}', retained=True))
    clock.call_at(3.0, lambda: col.receive(TOPIC, payload(1)))
    assert col.wait_for_status("dev-1", "online", timeout=10)["state"] == "online"
    assert col.wait_for(1, timeout=10)[0].seq == 1
    assert col.counts()["malformed"] == 1
    with pytest.raises(TelemetryTimeout, match=r"waiting for dev-1 status 'offline' on sim://broker; last status: "):
        col.wait_for_status("dev-1", "offline", timeout=5)
    assert clock.now() == 8.0


def test_wait_quiet_ends_the_instant_the_stream_has_been_silent_long_enough() -> None:
    clock = ManualClock()
    col = core(clock)
    col.wait_quiet(quiet=3.0, timeout=60)  # nothing arrived yet: quiet already
    assert clock.now() == 0.0
    every(clock, col, 1.0, range(1, 11))  # the last arrives at t=10
    col.wait_for(1, timeout=5)
    col.wait_quiet(quiet=3.0, timeout=60)
    assert clock.now() == 13.0
    every(clock, col, 1.0, range(14, 200))  # never quiet for 3 s again
    col.wait_for(11, timeout=5)
    with pytest.raises(TelemetryTimeout, match=r"timed out after 20s waiting for 3s without telemetry"):
        col.wait_quiet(quiet=3.0, timeout=20)
    assert clock.now() == 34.0
