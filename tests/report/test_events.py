"""Bands, markers, reboot causes, OTA attempts and the journal-only telemetry accounting."""

from __future__ import annotations

from typing import Any

import pytest

from harness.report import events as ev


def rec(kind: str, t: float, **fields: Any) -> dict[str, Any]:
    return {"kind": kind, "t": t, "mono": t, **fields}


def tel(t: float, seq: int, boot: str = "b1", **extra: Any) -> dict[str, Any]:
    return rec(
        "telemetry", t, device="d", arrival=t, payload={"device": "d", "boot_id": boot, "seq": seq, **extra}
    )


def test_partition_ends_at_heal_and_profile_at_the_next_change() -> None:
    records = [
        rec("injection", 10, action="partition", params={}),
        rec("injection", 20, action="heal", params={}),
        rec("injection", 30, action="profile", params={"profile": "3g"}),
        rec("injection", 50, action="apply", params={"loss": 0.1}),
        rec("injection", 60, action="broker-restart", params={"duration": 5}),
        rec("injection", 70, action="partition", params={"duration": 3}),
    ]
    bands = ev.bands(records, end=100)
    assert [(b.kind, b.start, b.end, b.label) for b in bands] == [
        ("partition", 10, 20, "partition"),
        ("profile", 30, 50, "profile 3g"),
        ("impairment", 50, 70, "loss=0.1"),
        ("broker", 60, 65, "broker down"),
        ("partition", 70, 73, "partition"),
    ]


def test_reboots_are_expected_only_with_a_harness_cause() -> None:
    records = [
        rec("power", 0, action="on"),
        rec("boot", 1.5, device="d", reason="power-on", seconds=1.5),
        rec("injection", 100, action="reboot", params={}),
        rec("boot", 101.2, device="d", reason="reboot", seconds=1.0),
        rec("boot", 500, device="d", reason="reboot", seconds=1.0),  # nobody asked
        rec("boot", 900, device="d", reason="watchdog", seconds=1.0),
        tel(1000, 5, "b1"),
        tel(1100, 1, "b2", uptime=30.0),  # a boot only telemetry saw
    ]
    got = [(b.reason, b.expected) for b in ev.reboots(records)]
    assert got == [
        ("power-on", True),
        ("reboot", True),
        ("reboot", False),
        ("watchdog", False),
        ("unseen", False),
    ]
    unseen = ev.reboots(records)[-1]
    assert unseen.t == pytest.approx(1070.0)  # arrival minus uptime
    markers = ev.markers(records, ev.reboots(records), [])
    assert [m.label for m in markers if m.bad] == [
        "reboot (software reboot)",
        "reboot (watchdog)",
        "reboot (unknown)",
    ]
    assert [b.cause for b in ev.reboots(records)] == [
        "power on", "software reboot", "software reboot", "watchdog", "unknown",
    ]  # fmt: skip


def test_ota_attempts_with_durations_and_outcomes() -> None:
    records = [
        rec("ota", 0, device="d", phase="job", version="2.0"),
        rec("ota", 5, device="d", phase="downloading", version="2.0"),
        rec("ota", 30, device="d", phase="committed", version="2.0", timings={"download_s": 20}),
        rec("ota", 100, device="d", phase="job", version="2.1"),
        rec("ota", 112, device="d", phase="rolled_back", version="2.1", reason="trial boot failed"),
        rec("ota", 200, device="d", phase="job", version="2.2"),
    ]
    got = ev.ota_attempts(records)
    assert [(o.version, o.outcome, o.duration) for o in got] == [
        ("2.0", "committed", 30),
        ("2.1", "rolled_back", 12),
        ("2.2", "unfinished", None),
    ]
    assert got[0].timings == {"download_s": 20} and got[1].reason == "trial boot failed"


def test_power_summary_integrates_energy() -> None:
    records = [rec("power", 3600.0 * i, action="measure", volts=5.0, amps=0.1) for i in range(3)]
    records.append(rec("power", 1.0, action="off"))
    summary = ev.power_summary(records)
    assert summary["actions"] == {"off": 1}
    assert summary["current_mean_a"] == pytest.approx(0.1)
    assert summary["energy_wh"] == pytest.approx(1.0)  # 0.5 W for 2 h
