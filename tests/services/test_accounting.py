"""The pure accounting function over hand-built journal records: each attribution rule in a table."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.services.accounting import AccountingConfig, account, percentile
from harness.services.seen import SeenBoots

T0 = 1_700_000_000.0


def tele(
    seq: int,
    *,
    device: str = "d1",
    boot: str = "b1",
    ts: float | None = None,
    latency: float = 0.05,
    dropped: int = 0,
    ranges: list[list[int]] | None = None,
) -> dict[str, Any]:
    """A collector telemetry record for a device producing one message a second from T0."""
    ts = T0 + seq if ts is None else ts
    payload: dict[str, Any] = {
        "device": device,
        "boot_id": boot,
        "seq": seq,
        "uptime": float(seq),
        "heap_free": 1000,
        "battery_v": 3.7,
        "rssi": -60,
        "temp_c": 20.0,
        "fw": "1.0",
        "ts": ts,
        "dropped": dropped,
    }
    if ranges is not None:
        payload["dropped_ranges"] = ranges
    arrival = ts + latency
    return {
        "kind": "telemetry",
        "t": arrival,
        "device": device,
        "topic": f"devices/{device}/telemetry",
        "arrival": arrival,
        "payload": payload,
    }


def inj(action: str, t: float, **params: Any) -> dict[str, Any]:
    return {"kind": "injection", "t": t, "action": action, "params": params}


def seqs(*ranges: tuple[int, int], **kw: Any) -> list[dict[str, Any]]:
    return [tele(s, **kw) for lo, hi in ranges for s in range(lo, hi + 1)]


def gap_table(records: list[dict[str, Any]], **cfg: Any) -> list[tuple[int, int, str]]:
    acc = account(records, AccountingConfig(**cfg))
    return [(g.first_seq, g.last_seq, g.cause) for g in acc.gaps()]


CASES = [
    pytest.param(seqs((1, 10)), [], id="no-loss"),
    pytest.param(seqs((1, 4), (8, 10)), [(5, 7, "unexplained")], id="unexplained-gap"),
    pytest.param(
        [*seqs((1, 4)), tele(8, dropped=3), *seqs((9, 10), dropped=3)],
        [(5, 7, "overflow")],
        id="overflow-by-counter",
    ),
    pytest.param(
        [*seqs((1, 4)), tele(8, dropped=2), *seqs((9, 10), dropped=2)],
        [(5, 6, "overflow"), (7, 7, "unexplained")],
        id="overflow-counter-takes-oldest-first",
    ),
    pytest.param(
        [*seqs((1, 4)), tele(8, dropped=1, ranges=[[6, 6]])],
        [(5, 5, "unexplained"), (6, 6, "overflow"), (7, 7, "unexplained")],
        id="overflow-by-ranges",
    ),
    pytest.param(
        [*seqs((1, 4), (8, 10)), inj("partition", T0 + 5.5), inj("heal", T0 + 6.5)],
        [(5, 7, "network")],
        id="partition-until-heal",
    ),
    pytest.param(
        [*seqs((1, 4), (20, 22)), inj("partition", T0 + 10, duration=2.0)],
        [(5, 8, "unexplained"), (9, 13, "network"), (14, 19, "unexplained")],
        id="partition-with-duration",
    ),
    pytest.param(
        [*seqs((1, 4), (8, 10)), inj("broker-stop", T0 + 6), inj("broker-start", T0 + 6.2)],
        [(5, 7, "network")],
        id="broker-outage",
    ),
    pytest.param(
        [*seqs((1, 4), (8, 10)), inj("apply", T0 + 5, loss=0.3), inj("apply", T0 + 7.5, delay=0.1)],
        [(5, 7, "network")],
        id="lossy-impairment",
    ),
    pytest.param(
        [*seqs((1, 4), (8, 10)), inj("apply", T0 + 5, delay=0.3)],
        [(5, 7, "unexplained")],
        id="lossless-impairment-explains-nothing",
    ),
    pytest.param(seqs((3, 5)), [(1, 2, "unexplained")], id="leading-gap"),
]


@pytest.mark.parametrize(("records", "expected"), CASES)
def test_gap_attribution(records: list[dict[str, Any]], expected: list[tuple[int, int, str]]) -> None:
    assert gap_table(records, network_grace=0.0) == expected


def test_power_cut_tail_is_estimated_from_interval_and_off_time() -> None:
    records = [*seqs((1, 5)), {"kind": "power", "action": "off", "t": T0 + 8.6}, *seqs((1, 3), boot="b2", ts=None)]
    # the second boot starts well after the cut: its messages carry later device times
    for rec in records[6:]:
        rec["payload"]["ts"] += 20
        rec["arrival"] += 20
        rec["t"] += 20
    acc = account(records)
    tail = acc.gaps("power-cut")
    assert [(g.first_seq, g.last_seq, g.estimated) for g in tail] == [(6, 8, True)]
    assert [b.ended_by for b in acc.devices["d1"].boots] == ["power-off", "running"]
    assert acc.lost("unexplained") == 0


def test_power_cut_at_run_end_without_new_boot() -> None:
    records = [*seqs((1, 5)), {"kind": "power", "action": "cycle", "off_for": 1.0, "t": T0 + 7.5}]
    acc = account(records)
    assert [(g.first_seq, g.last_seq, g.cause) for g in acc.gaps()] == [(6, 7, "power-cut")]


def test_reboot_without_power_event_is_not_a_power_cut() -> None:
    second = seqs((1, 2), boot="b2")
    for rec in second:
        rec["payload"]["ts"] += 10
        rec["arrival"] += 10
    acc = account([*seqs((1, 5)), *second])
    assert acc.gaps() == []
    assert [b.ended_by for b in acc.devices["d1"].boots] == ["reboot", "running"]


def test_power_event_for_another_device_explains_nothing() -> None:
    records = [*seqs((1, 5)), {"kind": "power", "action": "off", "t": T0 + 8.6, "device": "other"}]
    assert account(records).gaps() == []


def test_duplicates_and_out_of_order_are_counted_not_lost() -> None:
    records = [tele(1), tele(3), tele(2, latency=1.5), tele(3, latency=0.4), tele(4)]
    dev = account(records).devices["d1"]
    assert (dev.received, dev.unique, dev.duplicates, dev.out_of_order) == (5, 4, 1, 1)
    assert dev.gaps == []


def test_malformed_payload_in_a_telemetry_record_is_counted() -> None:
    bad = tele(2)
    del bad["payload"]["ts"]
    malformed = {"kind": "telemetry.malformed", "topic": "devices/d1/telemetry", "raw": "{", "error": "x"}
    stray = {"kind": "telemetry.malformed", "topic": "elsewhere", "raw": "?", "error": "x"}
    acc = account([tele(1), bad, tele(3), malformed, stray])
    assert acc.devices["d1"].malformed == 2
    assert acc.malformed == 3
    assert [(g.first_seq, g.cause) for g in acc.gaps()] == [(2, "unexplained")]


def test_interval_is_learned_and_can_be_set() -> None:
    records = [tele(s, ts=T0 + 0.5 * s) for s in (1, 2, 3, 6, 7)]
    assert account(records).devices["d1"].interval == pytest.approx(0.5)
    assert account(records, AccountingConfig(interval=2.0)).devices["d1"].interval == 2.0


def test_collector_offline_window_explains_loss() -> None:
    records = [
        *seqs((1, 4), (8, 10)),
        {"kind": "telemetry.collector", "event": "disconnected", "t": T0 + 5},
        {"kind": "telemetry.collector", "event": "connected", "t": T0 + 7.2},
    ]
    assert gap_table(records, network_grace=0.0) == [(5, 7, "network")]


def test_assert_no_unexplained_loss_names_the_seq_ranges() -> None:
    acc = account([*seqs((1, 4), (8, 10), (15, 16)), tele(12, dropped=1), *seqs((13, 14), dropped=1)])
    with pytest.raises(AssertionError) as err:
        acc.assert_no_unexplained_loss()
    text = str(err.value)
    assert "d1 boot b1 seq 5-7 (3 unexplained" in text
    assert "seq 11" not in text.split("(explained")[0]
    assert "overflow 1" in text


def test_assert_latency_lists_slow_ranges() -> None:
    records = [tele(s, latency=0.01) for s in range(1, 101)]
    for rec in records[40:45]:
        rec["arrival"] = rec["payload"]["ts"] + 3.0
    acc = account(records)
    acc.assert_latency(p50=0.1)
    with pytest.raises(AssertionError, match=r"p99 3\.000s > 1s .*d1 boot b1 seq 41-45 \(max 3\.000s\)"):
        acc.assert_latency(p99=1.0)


def test_percentile_interpolates() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == pytest.approx(2.5)
    assert percentile([5.0], 99) == 5.0


def test_bad_config_names_the_field() -> None:
    with pytest.raises(ValueError, match="interval: expected seconds > 0"):
        AccountingConfig(interval=0)


@st.composite
def loss_patterns(draw: st.DrawFn) -> tuple[list[dict[str, Any]], int, int]:
    """Messages 1..n with random gaps; part of each gap (its oldest seqs) reported as dropped."""
    n = draw(st.integers(min_value=2, max_value=60))
    kept = sorted(set(draw(st.lists(st.integers(1, n - 1), max_size=n))) | {n})
    records, dropped, prev, overflow = [], 0, 0, 0
    for seq in kept:
        size = seq - prev - 1
        k = draw(st.integers(0, size)) if size else 0
        dropped += k
        overflow += k
        records.append(tele(seq, dropped=dropped))
        prev = seq
    return records, n - len(kept), overflow


@settings(max_examples=80, deadline=None)
@given(loss_patterns())
def test_every_missing_seq_is_in_exactly_one_gap(pattern: tuple[list[dict[str, Any]], int, int]) -> None:
    records, missing, overflow = pattern
    acc = account(records)
    covered = [s for g in acc.gaps() for s in range(g.first_seq, g.last_seq + 1)]
    assert len(covered) == len(set(covered)) == missing
    assert acc.lost("overflow") == overflow
    assert acc.lost("unexplained") == missing - overflow


def test_device_scoped_partition_explains_only_that_device() -> None:
    records = [*seqs((1, 4), (8, 10)), *seqs((1, 4), (8, 10), device="d2"),
               inj("partition", T0 + 5.5, device="d2"), inj("heal", T0 + 6.5)]  # fmt: skip
    acc = account(records, AccountingConfig(network_grace=0.0))
    assert [(g.device, g.cause) for g in acc.gaps()] == [("d1", "unexplained"), ("d2", "network")]


def test_a_window_that_begins_mid_boot_counts_from_its_first_message():
    """A test's view starts while a boot is running: seqs before the window are not losses, later gaps are."""
    records = seqs((40, 44), (47, 50))  # the boot began at T0; the window at T0 + 39.5
    unscoped = account(records)
    assert unscoped.devices["d1"].lost() == 39 + 2
    scoped = account(records, AccountingConfig(since=T0 + 39.5))
    assert scoped.devices["d1"].lost() == 2
    assert scoped.devices["d1"].lost("unexplained") == 2
    fresh = account(seqs((1, 5)), AccountingConfig(since=T0 - 10))  # a boot that began inside the window
    assert fresh.devices["d1"].lost() == 0
    late_start = account(seqs((3, 5)), AccountingConfig(since=T0 - 10))
    assert late_start.devices["d1"].lost() == 2, "a boot begun in the window still owes its first seqs"


# -- windows: a slice of the journal (one test, one scenario) -------------------------------------
def annotated(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records as the collector journals them: each telemetry record says what came before it."""
    seen = SeenBoots()
    out = []
    for rec in sorted(records, key=lambda r: float(r.get("arrival", r["t"]))):
        rec = dict(rec)
        if rec["kind"] == "telemetry":
            rec.update(seen.annotate(rec["device"], rec["payload"]))
        out.append(rec)
    return out


def window(records: list[dict[str, Any]], start: float, end: float = float("inf")) -> list[dict[str, Any]]:
    return [r for r in records if start <= r["t"] < end]


def test_consecutive_windows_on_one_boot_start_where_the_last_one_stopped() -> None:
    """The issue's case: seqs 1-22 came before the scenario; they are not its losses."""
    run = annotated(seqs((1, 40)))
    second = account(window(run, T0 + 22.5)).devices["d1"]
    assert (second.lost(), second.received, second.unique) == (0, 18, 18)
    assert second.boots[0].accounted_from == 23
    plain = [{k: v for k, v in r.items() if k not in ("seen_max", "duplicate", "prev_boot")} for r in run]
    assert account(window(plain, T0 + 22.5)).lost("unexplained") == 22, "the old journal fields alone"


def test_a_message_lost_at_the_window_edge_is_counted_once() -> None:
    run = annotated(seqs((1, 20), (22, 40)))  # seq 21 lost; the window opens between 20 and 22
    first, second = account(window(run, 0, T0 + 21.5)), account(window(run, T0 + 21.5))
    assert first.gaps() == []
    assert [(g.first_seq, g.last_seq, g.cause) for g in second.gaps()] == [(21, 21, "unexplained")]
    first_seen_only = AccountingConfig(since=T0 + 21.5)  # the old rule lost it: first seen = start
    plain = [{k: v for k, v in r.items() if k != "seen_max"} for r in window(run, T0 + 21.5)]
    assert account(plain, first_seen_only).gaps() == []


def test_redelivery_of_a_seq_from_before_the_window_is_a_duplicate() -> None:
    run = annotated([*seqs((1, 10)), tele(5, ts=T0 + 5, latency=6.0), *seqs((11, 12), latency=0.5)])
    dev = account(window(run, T0 + 10.5)).devices["d1"]
    assert (dev.received, dev.unique, dev.duplicates, dev.lost()) == (3, 2, 1, 0)


def test_power_cut_in_a_window_that_holds_only_the_next_boot() -> None:
    """The old boot's last message came before the window; the cut and the new boot are in it."""
    second = seqs((1, 3), boot="b2")
    for rec in second:
        rec["payload"]["ts"] += 30
        rec["arrival"] += 30
        rec["t"] += 30
    run = annotated([*seqs((1, 20)), {"kind": "power", "action": "off", "t": T0 + 22.6}, *second])
    acc = account(window(run, T0 + 21.0))
    assert [(g.boot_id, g.first_seq, g.last_seq, g.cause) for g in acc.gaps()] == [("b1", 21, 22, "power-cut")]
    assert account(run).lost("power-cut") == 2
    assert account(window(run, 0, T0 + 21.0)).lost() == 0


@st.composite
def sliced_runs(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[float]]:
    n = draw(st.integers(min_value=2, max_value=60))
    kept = sorted(set(draw(st.lists(st.integers(1, n), min_size=1, max_size=n))))
    cuts = sorted(set(draw(st.lists(st.floats(T0, T0 + n + 1), max_size=5))))
    return annotated([tele(s) for s in kept]), cuts


@settings(max_examples=80, deadline=None)
@given(sliced_runs())
def test_windows_add_up_to_the_whole_run(run: tuple[list[dict[str, Any]], list[float]]) -> None:
    records, cuts = run
    bounds = [0.0, *cuts, float("inf")]
    parts = [account(window(records, a, b)) for a, b in itertools.pairwise(bounds)]
    whole = account(records)
    lost = sorted((g.first_seq, g.last_seq) for p in parts for g in p.gaps())
    assert sum(p.lost() for p in parts) == whole.lost()
    whole_seqs = {s for g in whole.gaps() for s in range(g.first_seq, g.last_seq + 1)}
    assert {s for a, b in lost for s in range(a, b + 1)} == whole_seqs
    assert sum(p.received for p in parts) == whole.received


def test_redeliveries_to_the_collectors_session_are_told_apart_from_device_resends() -> None:
    run = annotated([*seqs((1, 3)), tele(2, latency=2.0), tele(3, latency=2.5)])
    run[-1]["redelivered"] = True  # the broker re-sent seq 3 to the collector (MQTT DUP): its PUBACK was lost
    dev = account(run).devices["d1"]
    assert (dev.received, dev.unique, dev.duplicates, dev.redelivered) == (5, 3, 2, 1)
    assert account(run).to_dict()["redelivered"] == 1
