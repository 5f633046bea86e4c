"""Device telemetry over a real MQTT broker: steady stream, broker outage, power cut, buffer overflow.

Every test reads what the collector received since it began (the ``telemetry`` fixture) and asks
the accounting to explain every missing message.
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import threading
import time
from typing import Any

import pytest

from tests.device.mqtt_helpers import mqtt_state, produced_after

pytestmark = pytest.mark.requires("telemetry")

FIELDS = {"device", "boot_id", "seq", "uptime", "heap_free", "battery_v", "rssi", "temp_c", "fw", "ts", "dropped"}
OUTAGE = 30.0  # the broker outage
SMALL_BUFFER = 5
CATCH_UP = 30.0  # reconnect back-off (at most 5 s) plus the buffered backlog


def hold(seconds: float) -> None:
    """Keep an injected condition in force: the duration is the condition, nothing to wait for."""
    threading.Event().wait(seconds)


def seqs_of(messages: list[Any], boot_id: str) -> list[int]:
    return sorted({m.seq for m in messages if m.boot_id == boot_id})


def assert_contiguous(seqs: list[int], what: str) -> None:
    missing = sorted(set(range(seqs[0], seqs[-1] + 1)) - set(seqs))
    assert not missing, f"{what}: seqs {missing} missing between {seqs[0]} and {seqs[-1]}"








def test_steady_stream_is_complete_and_well_formed(fresh_boot, telemetry):
    messages = telemetry.wait_for(10, timeout=30)
    first = messages[0].payload
    assert set(first) >= FIELDS, f"missing fields: {FIELDS - set(first)}"
    boot = messages[-1].boot_id
    assert_contiguous(seqs_of(messages, boot), f"boot {boot}")
    for m in messages:
        p = m.payload
        assert p["dropped"] == 0 and "dropped_ranges" not in p, p
        assert 3.0 <= p["battery_v"] <= 4.2 and -120 <= p["rssi"] <= -20 and 0 < p["heap_free"] < 262144, p
        assert abs(p["ts"] - m.arrival) < 60, f"device clock far from the harness clock: {m}"
    steps = [b.ts - a.ts for a, b in itertools.pairwise(messages) if b.seq == a.seq + 1 and a.boot_id == b.boot_id]
    assert steps and 0.5 < sorted(steps)[len(steps) // 2] < 1.5, f"median interval of {steps} is not about 1 s"
    summary = telemetry.assert_no_unexplained_loss()
    assert summary.lost() == 0, str(summary)


def test_broker_outage_buffers_and_delivers_in_order(fresh_boot, telemetry, broker, dut):
    before = telemetry.wait_for(3, timeout=30)[-1]
    with broker.outage(duration=OUTAGE):
        stopped = time.time()
        hold(OUTAGE)
    restarted = time.time()
    telemetry.wait_for_status("online", timeout=CATCH_UP)
    telemetry.wait_for(produced_after(restarted + 1), timeout=CATCH_UP)
    state = mqtt_state(dut)
    assert state["connects"] >= 2 and state["disconnects"] >= 1 and state["dropped"] == 0, state
    summary = telemetry.assert_no_unexplained_loss()
    seqs = seqs_of(telemetry.messages(), before.boot_id)
    during = [m for m in telemetry.messages() if stopped + 1 < m.ts < restarted - 1]
    assert len(during) >= OUTAGE - 4, f"only {len(during)} messages produced during the outage arrived"
    if broker.kind == "mosquitto":  # amqtt forgets the collector's session on restart (docs/telemetry.md)
        assert_contiguous(seqs, "across the outage")
        assert summary.lost() == 0, str(summary)


def test_power_cut_loses_only_the_ram_buffer(fresh_boot, telemetry, broker, dut):
    first = telemetry.wait_for(3, timeout=30)[-1]
    with broker.outage():  # the device keeps producing into its RAM buffer meanwhile
        hold(4.0)
        dut.power_cycle()
    second = telemetry.wait_for(lambda m: m.boot_id != first.boot_id and m.seq >= 3, timeout=CATCH_UP)
    summary = telemetry.assert_no_unexplained_loss()
    cut = summary.gaps("power-cut")
    assert [g.boot_id for g in cut] == [first.boot_id], str(summary)
    assert cut[0].count >= 2, f"a 4 s outage before the cut should leave messages in RAM: {summary}"
    assert_contiguous(seqs_of(telemetry.messages(), first.boot_id), "before the cut")
    assert seqs_of(telemetry.messages(), second.boot_id)[0] == 1, "the new boot starts again at seq 1"


@pytest.fixture
def small_buffer(dut):
    dut.set_config("telemetry.buffer", str(SMALL_BUFFER))
    dut.reboot()
    yield SMALL_BUFFER
    dut.command("config del telemetry.buffer")
    dut.reboot()


def test_buffer_overflow_is_counted_and_attributed(small_buffer, telemetry, broker, dut):
    boot = telemetry.wait_for(2, timeout=30)[-1].boot_id
    with broker.outage(duration=small_buffer + 8):
        hold(small_buffer + 8)
    restarted = time.time()
    last = telemetry.wait_for(produced_after(restarted + 1), timeout=CATCH_UP)
    assert last.boot_id == boot
    dropped = mqtt_state(dut)["dropped"]
    assert dropped >= 3, f"a {small_buffer + 8} s outage with room for {small_buffer} should overflow"
    assert last.payload["dropped"] == dropped
    summary = telemetry.assert_no_unexplained_loss()
    ranges = [r for m in telemetry.messages() for r in m.payload.get("dropped_ranges", [])]
    assert sum(hi - lo + 1 for lo, hi in ranges) == dropped, ranges
    assert summary.lost("overflow") == dropped, str(summary)
    if broker.kind == "mosquitto":
        assert summary.lost() == dropped, str(summary)


@pytest.mark.skipif(shutil.which("mosquitto_sub") is None, reason="mosquitto_sub is not installed")
def test_an_independent_subscriber_sees_the_same_messages(telemetry, broker):
    device = telemetry.wait_for(1, timeout=30)[-1].device
    sub = subprocess.Popen(
        ["mosquitto_sub", "-h", broker.host, "-p", str(broker.port), "-q", "1", "-C", "5", "-W", "30",
         "-t", f"devices/{device}/telemetry"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        out, _ = sub.communicate(timeout=40)
    finally:
        if sub.poll() is None:
            sub.kill()
            sub.wait()
    theirs = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert len(theirs) == 5, f"mosquitto_sub got {len(theirs)} messages: {out!r}"
    last = theirs[-1]
    ours = telemetry.wait_for(lambda m: m.boot_id == last["boot_id"] and m.seq == last["seq"], timeout=10)
    assert ours.payload == last
