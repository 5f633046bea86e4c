"""Device telemetry through the impairment point: a slow link, a long partition, reset connections."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from tests.device.mqtt_helpers import mqtt_state, produced_after

pytestmark = pytest.mark.requires("telemetry", "network")

PARTITION = 60.0  # the partition
WILL_TIMEOUT = 30.0  # keepalive 5 s: the broker's will fires about 7.5 s after the last packet
RECOVERY = 45.0  # reconnect back-off (at most 5 s) plus a minute of backlog over the link
RECONNECT_MESSAGES = 20  # at 1 Hz: how long a reconnect after a reset may take, in messages








def missing_seqs(messages: list[Any], boot_id: str) -> list[int]:
    seqs = {m.seq for m in messages if m.boot_id == boot_id}
    return sorted(set(range(1, max(seqs) + 1)) - seqs)


def test_3g_link_keeps_telemetry_flowing(fresh_boot, telemetry, network):
    network.profile("3g")
    applied = time.time()
    messages = telemetry.wait_for(8, timeout=30)
    assert any(m.ts > applied for m in messages)
    boot = messages[-1].boot_id
    assert missing_seqs(telemetry.messages(), boot) == []
    summary = telemetry.assert_no_unexplained_loss()
    assert summary.lost() == 0, str(summary)
    latency = summary.latency()
    assert latency["p50"] >= 0.15, f"3g adds 150 ms one way, yet the median latency is {latency}"


def test_partition_sends_last_will_then_delivers_the_buffer(fresh_boot, telemetry, network, dut):
    boot = telemetry.wait_for(3, timeout=30)[-1].boot_id
    network.partition(PARTITION)  # heals by itself
    started = time.time()
    offline = telemetry.wait_for_status("offline", timeout=WILL_TIMEOUT)
    assert offline.get("reason") == "lwt", offline
    threading.Event().wait(max(0.0, started + PARTITION - time.time()))  # the partition is the condition
    online = telemetry.wait_for_status("online", timeout=RECOVERY)
    assert online["boot_id"] == boot, "the same boot came back online (no reboot)"
    telemetry.wait_for(produced_after(started + PARTITION + 1), timeout=RECOVERY)
    assert missing_seqs(telemetry.messages(), boot) == [], "the buffered minute arrived whole"
    state = mqtt_state(dut)
    assert state["dropped"] == 0 and state["disconnects"] >= 1, state
    telemetry.assert_no_unexplained_loss()


def test_reset_forces_a_reconnect_of_the_same_boot(fresh_boot, telemetry, network, dut):
    first = telemetry.wait_for(2, timeout=30)[-1]
    before = telemetry.wait_for_status("online", timeout=10)
    counters = mqtt_state(dut)
    assert network.reset() >= 1, "the device had no connection through the impairment point"
    status: dict[str, Any] | None = None
    for n in range(3, 3 + RECONNECT_MESSAGES):
        telemetry.wait_for(n, timeout=10)
        status = telemetry.status()
        if status and status["state"] == "online" and status["connects"] > before["connects"]:
            break
    else:
        pytest.fail(f"no new online status within {RECONNECT_MESSAGES} messages after the reset; last: {status}")
    assert status["boot_id"] == first.boot_id
    after = mqtt_state(dut)
    assert after["connects"] == counters["connects"] + 1 and after["disconnects"] == counters["disconnects"] + 1
    assert "lost" in after["last_error"], after
    assert missing_seqs(telemetry.messages(), first.boot_id) == []
    telemetry.assert_no_unexplained_loss()
