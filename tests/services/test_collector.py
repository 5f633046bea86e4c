"""The collector on a real broker of each kind, fed by real paho publishers."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from harness.run.journal import Journal, read_journal
from harness.services.accounting import account
from harness.services.broker import Broker
from harness.services.collector import TelemetryCollector, TelemetryTimeout
from tests.services.publisher import DevicePublisher

Publisher = Callable[..., DevicePublisher]


@pytest.fixture
def collector(broker: Broker, journal: Journal) -> Iterator[TelemetryCollector]:
    col = TelemetryCollector(broker, journal).start()
    yield col
    col.close()


def test_collects_journals_and_accounts(
    collector: TelemetryCollector, make_publisher: Publisher, journal: Journal
) -> None:
    pubs = [make_publisher(f"dev-{i}") for i in range(3)]
    for _ in range(10):
        for pub in pubs:
            pub.publish()
    got = collector.wait_for(30, timeout=20)
    assert len(got) == 30
    summary = collector.summary()
    assert sorted(summary.devices) == ["dev-0", "dev-1", "dev-2"]
    assert (summary.received, summary.unique, summary.lost()) == (30, 30, 0)
    collector.assert_no_unexplained_loss()
    collector.assert_latency(p99=10.0)
    journal.flush()
    tele = [r for r in read_journal(journal.path) if r["kind"] == "telemetry"]
    assert len(tele) == 30
    assert {"device", "topic", "arrival", "payload"} <= set(tele[0])
    assert tele[0]["arrival"] >= tele[0]["payload"]["ts"] - 1.0


def test_report_from_journal_alone_matches_live_accounting(
    collector: TelemetryCollector, make_publisher: Publisher, journal: Journal
) -> None:
    pub = make_publisher("dev-1")
    for _ in range(4):
        pub.publish()
    pub.skip(2)
    pub.overflow(3)
    pub.publish()
    collector.wait_for(lambda m: m.seq == 10, timeout=20)
    live = collector.summary().to_dict()
    journal.flush()
    rebuilt = account(read_journal(journal.path)).to_dict()
    assert rebuilt == live
    causes = [(g["first_seq"], g["last_seq"], g["cause"]) for g in live["devices"]["dev-1"]["gaps"]]
    assert causes == [(5, 7, "overflow"), (8, 9, "unexplained")]
    with pytest.raises(AssertionError, match=r"dev-1 boot \w+ seq 8-9 \(2 unexplained"):
        collector.assert_no_unexplained_loss()


def test_dropped_ranges_from_the_device_win(collector: TelemetryCollector, make_publisher: Publisher) -> None:
    pub = make_publisher("dev-1")
    pub.publish()
    pub.skip(1)
    first, last = pub.overflow(2)
    pub.publish(dropped_ranges=[[first, last]])
    collector.wait_for(2, timeout=20)
    gaps = [(g.first_seq, g.last_seq, g.cause) for g in collector.summary().gaps()]
    assert gaps == [(2, 2, "unexplained"), (3, 4, "overflow")]


GARBAGE = [
    (b"\xff\xfe not utf-8", "payload: expected UTF-8 JSON"),
    (b"{not json", "payload: expected a JSON object, got invalid JSON"),
    (b"[1, 2]", "payload: expected a JSON object, got list"),
]


def test_malformed_messages_are_kept_raw_and_never_stop_the_collector(
    collector: TelemetryCollector, make_publisher: Publisher, journal: Journal
) -> None:
    pub = make_publisher("dev-1")
    for raw, _ in GARBAGE:
        pub.publish_payload(raw)
    bad = pub.message(seq="seven")
    pub.publish_payload(json.dumps(bad))
    missing = pub.message()
    del missing["battery_v"]
    pub.publish_payload(json.dumps(missing))
    pub.publish_payload(json.dumps(pub.message(device="someone-else")))
    pub.publish_payload(b"{}", topic="devices/dev-1/status")
    pub.seq = 0
    pub.publish()
    collector.wait_for(1, timeout=20)
    assert collector.statistics()["malformed"] == 7
    journal.flush()
    malformed = [r for r in read_journal(journal.path) if r["kind"] == "telemetry.malformed"]
    errors = [r["error"] for r in malformed]
    for (_, expected), error in zip(GARBAGE, errors, strict=False):
        assert error.startswith(expected)
    assert "seq: expected an integer >= 1, got 'seven'" in errors
    assert "battery_v: expected volts, a number, but the field is missing" in errors
    assert "device: expected 'dev-1' (the topic's device id), got 'someone-else'" in errors
    assert any(e.startswith("state: expected one of online, offline") for e in errors)
    assert malformed[1]["raw"] == "{not json"
    assert collector.summary().devices["dev-1"].malformed == 7


def test_status_online_clean_offline_and_last_will(collector: TelemetryCollector, make_publisher: Publisher) -> None:
    clean = make_publisher("dev-clean")
    crash = make_publisher("dev-crash")
    assert collector.wait_for_status("dev-clean", "online", timeout=20)["boot_id"] == clean.boot_id
    collector.wait_for_status("dev-crash", "online", timeout=20)
    clean.close(clean=True)
    crash.close(clean=False)
    assert collector.wait_for_status("dev-clean", "offline", timeout=20)["reason"] == "clean"
    assert collector.wait_for_status("dev-crash", "offline", timeout=30)["reason"] == "lwt"
    summary = collector.summary()
    assert (summary.devices["dev-crash"].offline_lwt, summary.devices["dev-clean"].offline_clean) == (1, 1)


def test_broker_outage_is_survived_and_explains_the_loss(
    broker: Broker, collector: TelemetryCollector, make_publisher: Publisher, journal: Journal
) -> None:
    pub = make_publisher("dev-1")
    for _ in range(3):
        pub.publish()
    collector.wait_for(3, timeout=20)
    with broker.outage():
        pub.skip(2)  # produced while the broker was down, then lost by the device
    pub.wait_connected(timeout=30)
    collector.wait_connected(timeout=30)
    pub.publish()
    collector.wait_for(lambda m: m.seq == 6, timeout=20)
    gaps = [(g.first_seq, g.last_seq, g.cause, g.detail) for g in collector.summary().gaps()]
    assert gaps == [(4, 5, "network", "broker-stop")]
    collector.assert_no_unexplained_loss()
    journal.flush()
    events = [
        (r["kind"], r.get("action") or r.get("event"))
        for r in read_journal(journal.path)
        if r["kind"] in ("injection", "telemetry.collector")
    ]
    assert ("injection", "broker-stop") in events
    assert ("injection", "broker-start") in events
    assert events.count(("telemetry.collector", "connected")) >= 2


def test_frame_has_one_row_per_arrival(collector: TelemetryCollector, make_publisher: Publisher) -> None:
    pub = make_publisher("dev-1")
    msgs = [pub.publish() for _ in range(5)]
    pub.publish_payload(json.dumps(msgs[2]))  # a duplicate delivery
    collector.wait_for(lambda m: m.duplicate, timeout=20)
    frame = collector.frame()
    assert len(frame) == 6
    assert frame["seq"].tolist() == [1, 2, 3, 4, 5, 3]
    assert frame["duplicate"].tolist() == [False] * 5 + [True]
    assert {"device", "boot_id", "latency", "battery_v", "arrival_time"} <= set(frame.columns)
    assert collector.summary().devices["dev-1"].duplicates == 1


def test_wait_timeout_says_what_how_long_and_last_seen(
    collector: TelemetryCollector, make_publisher: Publisher
) -> None:
    pub = make_publisher("dev-1")
    pub.publish()
    collector.wait_for(1, timeout=20)
    started = time.monotonic()
    with pytest.raises(TelemetryTimeout) as err:
        collector.wait_for(5, timeout=0.3, device="dev-1")
    assert time.monotonic() - started >= 0.3
    text = str(err.value)
    assert "timed out after 0.3s waiting for 5 new telemetry messages from dev-1" in text
    assert "got 1" in text and "devices/dev-1/telemetry boot" in text and "seq 1" in text
    with pytest.raises(TelemetryTimeout, match=r"waiting for dev-1 status 'offline'.*last status: .*online"):
        collector.wait_for_status("dev-1", "offline", timeout=0.2)
    with pytest.raises(TypeError, match="expected a message count or a predicate"):
        collector.wait_for("ten", timeout=0.1)  # type: ignore[call-overload]


def test_waits_on_one_device_among_many(collector: TelemetryCollector, make_publisher: Publisher) -> None:
    noisy, quiet = make_publisher("dev-noisy"), make_publisher("dev-quiet")
    results: dict[str, object] = {}

    def wait() -> None:
        try:
            results["quiet"] = collector.wait_for(3, timeout=30, device="dev-quiet")
            results["seq5"] = collector.wait_for(lambda m: m.seq == 5, timeout=30, device="dev-noisy")
        except Exception as exc:  # reported to the test thread below
            results["error"] = exc

    waiter = threading.Thread(target=wait)
    waiter.start()
    try:
        for n in range(6):
            noisy.publish()
            if n % 2:
                quiet.publish()
    finally:
        waiter.join(timeout=60)
    assert "error" not in results, results.get("error")
    assert [m.seq for m in results["quiet"]] == [1, 2, 3]  # type: ignore[attr-defined]
    assert results["seq5"].device == "dev-noisy"  # type: ignore[attr-defined]
    assert len(collector.wait_for(9, timeout=30)) == 9


def test_power_cut_recorded_by_another_part_explains_the_tail(
    collector: TelemetryCollector, make_publisher: Publisher, journal: Journal
) -> None:
    pub = make_publisher("dev-1")
    base = time.time() - 30  # a device producing once a second, 30 s ago
    for k in range(1, 6):
        pub.publish(ts=base + k)
    journal.record("power", action="off", t=base + 8.6)  # as the power driver writes it
    journal.record("power", action="on", t=base + 10.0)
    pub.new_boot()
    for k in range(1, 3):
        pub.publish(ts=base + 12 + k, uptime=float(k))
    collector.wait_for(7, timeout=20)
    summary = collector.summary()
    assert [(g.first_seq, g.last_seq, g.cause, g.estimated) for g in summary.gaps()] == [(6, 8, "power-cut", True)]
    assert [b.ended_by for b in summary.devices["dev-1"].boots] == ["power-off", "running"]
    collector.assert_no_unexplained_loss()


def test_closed_collector_leaves_no_session_queueing_messages(broker: Broker, make_publisher: Publisher) -> None:
    first = TelemetryCollector(broker, client_id="collector-reused").start()
    first.close()
    pub = make_publisher("dev-1")
    for _ in range(3):
        pub.publish()  # nobody is subscribed: a leftover session would queue these
    with TelemetryCollector(broker, client_id="collector-reused") as again:
        pub.publish()
        again.wait_for(lambda m: m.seq == 4, timeout=20)
        assert [m.seq for m in again.messages()] == [4]


def test_two_collectors_on_one_journal_count_only_their_own(
    broker: Broker, collector: TelemetryCollector, make_publisher: Publisher, journal: Journal
) -> None:
    with TelemetryCollector(broker, journal) as second:
        pub = make_publisher("dev-1")
        for _ in range(3):
            pub.publish()
        collector.wait_for(3, timeout=20)
        second.wait_for(3, timeout=20)
        assert (collector.summary().received, collector.summary().duplicates) == (3, 0)
        assert second.summary().received == 3


def test_count_waits_count_new_messages_not_redeliveries(
    collector: TelemetryCollector, make_publisher: Publisher
) -> None:
    pub = make_publisher("dev-1")
    msgs = [pub.publish() for _ in range(3)]
    collector.wait_for(3, timeout=20)
    for msg in msgs:  # a device resending what the broker already has: arrivals, not new telemetry
        pub.publish_payload(json.dumps(msg))
    collector.wait_for(lambda m: m.duplicate and m.seq == 3, timeout=20)
    with pytest.raises(TelemetryTimeout, match="4 new telemetry messages"):
        collector.wait_for(4, timeout=0.3)
    pub.publish()
    assert [m.seq for m in collector.wait_for(4, timeout=20)] == [1, 2, 3, 4]
    stats = collector.statistics()
    assert (stats["received"], stats["unique"], stats["duplicates"]) == (7, 4, 3)
    summary = collector.summary().devices["dev-1"]
    assert (summary.received, summary.unique, summary.duplicates) == (7, 4, 3)


def test_journal_records_say_what_the_collector_had_seen(
    collector: TelemetryCollector, make_publisher: Publisher, journal: Journal
) -> None:
    pub = make_publisher("dev-1")
    first = [pub.publish() for _ in range(2)]
    old_boot = pub.boot_id
    pub.publish_payload(json.dumps(first[0]))
    pub.new_boot()
    pub.publish()
    collector.wait_for(lambda m: m.boot_id == pub.boot_id, timeout=20)
    journal.flush()
    tele = [r for r in read_journal(journal.path) if r["kind"] == "telemetry"]
    assert [(r["payload"]["seq"], r["seen_max"], r.get("duplicate", False)) for r in tele] == [
        (1, 0, False), (2, 1, False), (1, 2, True), (1, 0, False)
    ]
    assert tele[-1]["prev_boot"] == {
        "boot_id": old_boot, "last_seq": 2, "last_ts": first[1]["ts"], "last_dropped": 0
    }


def test_a_tests_view_waits_for_new_telemetry_not_redeliveries(
    collector: TelemetryCollector, make_publisher: Publisher
) -> None:
    """The scenario step 'telemetry: {messages: 5}' after a broker restart: redeliveries are not flow."""
    from harness.rig.services import TelemetryView

    pub = make_publisher("dev-1")
    old = [pub.publish() for _ in range(5)]
    collector.wait_for(5, timeout=20)
    view = TelemetryView(collector, "dev-1")
    for msg in old:
        pub.publish_payload(json.dumps(msg))
    collector.wait_for(lambda m: m.duplicate and m.seq == 5, timeout=20)
    assert (len(view.messages()), view.count()) == (5, 0)
    with pytest.raises(TelemetryTimeout):
        view.wait_for(view.count() + 1, timeout=0.3)
    pub.publish()
    assert [m.seq for m in view.wait_for(1, timeout=20)] == [6]
    summary = view.summary().devices["dev-1"]
    assert (summary.received, summary.unique, summary.duplicates, summary.lost()) == (6, 1, 5, 0)
