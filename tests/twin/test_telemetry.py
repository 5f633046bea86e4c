"""The MQTT session and telemetry loop over the in-memory pump and broker."""

from __future__ import annotations

import json
from dataclasses import fields

import pytest

from harness.twin import NetConnect, NetPublished, factory_flash, heap
from harness.twin.flash import Flash
from harness.twin.records import write_config
from harness.twin.session import INFLIGHT_WINDOW
from harness.twin.settings import KEYS, Settings

from .conftest import small_image
from .pump import SMALL, WALL, MemoryBroker, Pump

FIELDS = ["device", "boot_id", "seq", "uptime", "heap_free", "battery_v", "rssi", "temp_c", "fw", "ts", "dropped"]


def mqtt_pump(flash: bytearray, **config: object) -> Pump:
    """A pump whose device has a broker configured (plus ``config``), booted to its prompt."""
    pump = Pump(flash)
    pump.boot()
    for key, value in {"mqtt.host": "broker", **config}.items():
        assert pump.command(f"config set {key.replace('_', '.', 1)} {value}") == ["OK"], key
    pump.broker = MemoryBroker()
    pump.boot()
    return pump


def state(pump: Pump) -> dict[str, object]:
    return dict(json.loads(pump.command("mqtt")[0]))


def all_seqs_accounted(pump: Pump) -> set[int]:
    """Seqs that arrived or were reported dropped."""
    seen = set(pump.broker.seqs())
    for message in pump.broker.telemetry():
        for first, last in message.get("dropped_ranges", []):
            seen |= set(range(first, last + 1))
    return seen


def test_without_a_broker_there_is_no_mqtt_at_all(pump: Pump) -> None:
    pump.boot()
    pump.run(until=10.0)
    assert pump.broker.attempts == [] and "telemetry" not in pump.timers
    assert state(pump)["state"] == "disabled"


def test_connects_at_start_then_publishes_a_reading_every_interval(flash: bytearray) -> None:
    pump = mqtt_pump(flash)
    start = pump.now
    assert pump.broker.retained["devices/twin-0001/status"]["state"] == "online"
    pump.run(until=start + 5.0)
    messages = pump.broker.telemetry()
    assert [m["seq"] for m in messages] == [1, 2, 3, 4, 5]
    first = messages[0]
    assert list(first) == FIELDS
    assert first["device"] == "twin-0001" and first["fw"] == "1.0.0" and first["dropped"] == 0
    assert first["ts"] == pytest.approx(WALL + start + 1.0, abs=1e-3)
    assert first["uptime"] == pytest.approx(pump.boot_time + 1.0)  # counted from power-on
    status = state(pump)
    assert status["state"] == "online" and status["buffered"] == 0 and status["acked"] == 5


def test_reconnect_back_off_doubles_up_to_the_maximum(flash: bytearray) -> None:
    pump = mqtt_pump(flash, mqtt_backoff_min="0.5", mqtt_backoff_max="4")
    pump.drop_connection()
    pump.broker.up = False
    t0 = pump.now
    pump.run(until=t0 + 30.0)
    gaps = [b - a for a, b in zip(pump.broker.attempts[1:], pump.broker.attempts[2:], strict=False)]
    assert pump.broker.attempts[1] - t0 == pytest.approx(0.45, abs=0.05)  # 0.5 x jitter 0.8-1.0
    for gap, nominal in zip(gaps, [1, 2, 4, 4, 4], strict=False):
        assert 0.8 * nominal <= gap <= nominal, gaps
    assert state(pump)["state"] == "backoff"


def test_a_lost_connection_loses_nothing_and_flushes_in_order(flash: bytearray) -> None:
    pump = mqtt_pump(flash)
    pump.run(until=pump.now + 3.0)
    pump.drop_connection("keepalive timeout")
    assert pump.broker.retained["devices/twin-0001/status"] == {
        "state": "offline",
        "reason": "lwt",
        "boot_id": pump.device.boot_id,  # type: ignore[union-attr]
    }
    pump.broker.up = False
    pump.run(until=pump.now + 10.0)
    assert state(pump)["buffered"] == 10
    pump.broker.up = True
    pump.run(until=pump.now + 6.0)
    seqs = pump.broker.seqs()
    assert seqs == sorted(seqs) and set(seqs) == set(range(1, max(seqs) + 1)) and max(seqs) >= 18
    status = state(pump)
    assert status["buffered"] == 0 and status["connects"] == 2 and status["dropped"] == 0
    assert pump.broker.retained["devices/twin-0001/status"]["connects"] == 2


@pytest.mark.parametrize("outage", [2, 4, 9, 23])
def test_overflow_drops_oldest_and_reports_each_dropped_seq(flash: bytearray, outage: int) -> None:
    pump = mqtt_pump(flash, telemetry_buffer="5")
    pump.run(until=pump.now + 2.5)  # half-way between two readings
    pump.broker.up = False
    pump.drop_connection()
    pump.run(until=pump.now + outage)
    pump.broker.up = True
    pump.run(until=pump.now + 8.0)
    messages = pump.broker.telemetry()
    dropped = messages[-1]["dropped"]
    assert state(pump)["dropped"] == dropped >= outage - 5  # and more while the back-off runs
    reported = [r for m in messages for r in m.get("dropped_ranges", [])]
    assert sum(last - first + 1 for first, last in reported) == dropped
    if dropped:
        assert reported == [[3, 2 + dropped]], "the oldest messages are the ones dropped (1 and 2 went out)"
    assert not set(pump.broker.seqs()) & {s for first, last in reported for s in range(first, last + 1)}
    assert all_seqs_accounted(pump) == set(range(1, max(pump.broker.seqs()) + 1))


def test_in_flight_messages_are_bounded_by_the_window(flash: bytearray) -> None:
    pump = mqtt_pump(flash)
    pump.broker.stalled = True  # publishes vanish, no PUBACK comes back
    pump.run(until=pump.now + 15.0)
    status = state(pump)
    assert status["in_flight"] == INFLIGHT_WINDOW and status["buffered"] == 15


def test_no_connack_times_out_and_retries(flash: bytearray) -> None:
    pump = mqtt_pump(flash, mqtt_keepalive="3")
    pump.drop_connection()
    pump.broker.stalled = True
    pump.run(until=pump.now + 8.0)
    status = state(pump)
    assert status["last_error"] == "no CONNACK within 6s" and status["disconnects"] >= 2


def test_events_of_an_old_connection_are_ignored(flash: bytearray) -> None:
    pump = mqtt_pump(flash)
    pump.run(until=pump.now + 1.5)
    pump.feed(NetPublished(conn=99, ref=1))
    assert state(pump)["stale"] == 1


def test_software_reset_says_goodbye_cleanly(flash: bytearray) -> None:
    pump = mqtt_pump(flash)
    old = pump.device.boot_id  # type: ignore[union-attr]
    pump.type(b"reboot\r")
    statuses = pump.broker.statuses()
    assert statuses[-2] == {"state": "offline", "reason": "clean", "boot_id": old, "ts": pytest.approx(WALL + pump.now)}
    assert statuses[-1]["state"] == "online" and statuses[-1]["boot_id"] != old


def test_a_power_cut_loses_the_ram_buffer_and_the_next_boot_starts_at_seq_1(flash: bytearray) -> None:
    pump = mqtt_pump(flash)
    pump.run(until=pump.now + 2.0)
    pump.broker.stalled = True
    pump.run(until=pump.now + 3.0)
    pump.power_cut()
    assert pump.broker.retained["devices/twin-0001/status"]["reason"] == "lwt"
    pump.broker.stalled = False
    pump.boot()
    pump.run(until=pump.now + 2.0)
    boots = [(m["boot_id"], m["seq"]) for m in pump.broker.telemetry()]
    assert [seq for _, seq in boots] == [1, 2, 1, 2] and boots[0][0] != boots[2][0]


def test_the_settings_table_and_the_settings_class_agree() -> None:
    assert {k.attr for k in KEYS.values()} == {f.name for f in fields(Settings)}
    assert {k.attr: k.default for k in KEYS.values()} == {k.attr: getattr(Settings(), k.attr) for k in KEYS.values()}


def test_settings_are_checked_when_set_and_when_read(flash: bytearray) -> None:
    pump = Pump(flash)
    pump.boot()
    reply = pump.command("config set telemetry.interval 0")
    assert reply == ["ERR telemetry.interval expects a number 0.05..86400 (seconds between readings) (got '0')"]
    assert pump.command("config set mqtt.port http")[0].startswith("ERR mqtt.port expects an integer 1..65535")
    assert pump.command("config set mqtt.host bad/host")[0].startswith("ERR mqtt.host expects a host name")
    assert pump.command("config set telemetry.interval 0.5") == ["OK"]


def test_a_bad_stored_setting_falls_back_to_its_default_with_a_warning() -> None:

    flash = factory_flash(SMALL, small_image())
    mirror = Flash(flash, SMALL)
    write_config(mirror, {"mqtt.host": "broker", "telemetry.interval": "soon"})
    flash[:] = mirror.snapshot()
    pump = Pump(flash)
    text = pump.boot()
    assert "CONFIG telemetry.interval expects a number 0.05..86400" in text and "using the default" in text
    pump.run(until=pump.now + 3.0)
    assert pump.broker.seqs() == [1, 2, 3]


def test_battery_drains_at_the_configured_rate_down_to_its_floor(flash: bytearray) -> None:
    pump = mqtt_pump(flash, sensor_battery_drain="100", sensor_battery_full="4.0", sensor_battery_empty="3.5")
    pump.run(until=pump.now + 30.0)
    volts = [m["battery_v"] for m in pump.broker.telemetry()]
    assert volts[0] == pytest.approx(4.0 - 100 / 3600, abs=0.003)
    assert volts[17] == pytest.approx(4.0 - 100 * 18.05 / 3600, abs=0.003)
    assert volts[-1] == pytest.approx(3.5, abs=0.003)


def test_temperature_and_rssi_follow_their_configured_models(flash: bytearray) -> None:
    pump = mqtt_pump(flash, sensor_temp_mean="40", sensor_temp_noise="0", sensor_rssi_mean="-90", sensor_rssi_noise="0")
    pump.run(until=pump.now + 3.0)
    assert {(m["temp_c"], m["rssi"]) for m in pump.broker.telemetry()} == {(40.0, -90)}


def test_buffered_messages_take_heap(flash: bytearray) -> None:
    pump = mqtt_pump(flash)
    pump.run(until=pump.now + 2.0)
    free = pump.broker.telemetry()[-1]["heap_free"]
    pump.broker.up = False
    pump.drop_connection()
    pump.run(until=pump.now + 60.0)
    pump.broker.up = True
    pump.run(until=pump.now + 10.0)
    fuller = next(m["heap_free"] for m in pump.broker.telemetry() if m["seq"] == 62)
    assert free - fuller > 50 * 320, "about 60 buffered messages of 320 bytes each"


def test_a_leaking_image_loses_heap_with_uptime() -> None:
    flash = factory_flash(SMALL, small_image(variant="leak", variant_param=3_600_000))  # 1000 bytes/s
    pump = mqtt_pump(flash)
    pump.run(until=pump.now + 40.0)
    heap = [m["heap_free"] for m in pump.broker.telemetry()]
    assert heap[0] - heap[-1] == pytest.approx(39_000, abs=1100)


def test_connect_names_broker_client_id_keepalive_and_will(flash: bytearray) -> None:
    pump = mqtt_pump(flash, mqtt_keepalive="7", mqtt_port="1999")
    connect = pump.broker.last_connect
    assert isinstance(connect, NetConnect)
    assert (connect.host, connect.port, connect.client_id, connect.keepalive) == ("broker", 1999, "twin-0001", 7)
    assert connect.will.topic == "devices/twin-0001/status" and connect.will.retain and connect.will.qos == 1
    boot_id = pump.device.boot_id  # type: ignore[union-attr]
    assert json.loads(connect.will.payload) == {"state": "offline", "reason": "lwt", "boot_id": boot_id}


def test_an_exhausted_heap_crashes_the_firmware_and_the_watchdog_resets_it() -> None:
    """The heap model's instant: the leak has eaten all but one message's worth of the free heap."""
    rate = 5000.0  # bytes per second
    flash = factory_flash(SMALL, small_image(variant="leak", variant_param=int(rate * 3600)))
    pump = mqtt_pump(flash)
    device = pump.device
    assert device is not None
    implied = heap.exhaustion_delay(device, pump.now)
    assert implied is not None and 30.0 < implied < 60.0
    crash_at = pump.now + implied
    pump.run(until=crash_at - 1.0)
    assert "FATAL" not in pump.take() and pump.reboots == []
    readings = [m["heap_free"] for m in pump.broker.telemetry()]
    assert readings[-1] < readings[0] and readings[-1] < 10 * 1024
    pump.run(until=crash_at + 0.5)
    out = pump.take()
    assert f"FATAL heap exhausted: malloc({heap.MESSAGE_BYTES}) failed" in out
    assert pump.reboots == ["watchdog"]
    assert "reset_cause=watchdog" in out
    # A crash says no goodbye: the broker lost the connection (it publishes the will), no clean offline.
    offline = [s for s in pump.broker.statuses() if s["state"] == "offline"]
    assert [s["reason"] for s in offline] == ["lwt"]
    # The reset gives the heap back; the leak starts again from the new boot's uptime.
    pump.run(until=pump.now + 15.0)
    after = [m for m in pump.broker.telemetry() if m["boot_id"] == pump.device.boot_id]  # type: ignore[union-attr]
    assert after and after[0]["heap_free"] > 150 * 1024


def test_the_heap_check_looks_again_when_buffering_moved_the_instant() -> None:
    """A check that finds heap left re-arms for the new instant instead of crashing early."""
    flash = factory_flash(SMALL, small_image(variant="leak", variant_param=3600))  # 1 B/s
    pump = mqtt_pump(flash)
    device = pump.device
    assert device is not None
    first = heap.exhaustion_delay(device, pump.now)
    assert first is not None and first > 2 * 24 * 3600
    assert heap.on_timer(device, pump.now, []) is False  # not exhausted: re-armed, no crash
    assert heap.exhaustion_delay(device, pump.now + first + 1.0) == 0.0
