"""A software reset first waits (at most RESET_DRAIN) for the PUBACKs of the reports in flight.

Firmware flushes its MQTT client before it restarts: the ``rebooting`` report handed to a
connection that dies unnoticed at that instant (or to a broker that has not read it yet) must not be
lost with it. Acknowledged in time: sent once. Not acknowledged in time: carried in noinit RAM and
sent again from the next boot (at least once, never lost).
"""

from __future__ import annotations

from harness.ota import KeyPair, build_signed_image
from harness.twin import ConsoleInput
from harness.twin.device import RESET_DRAIN
from harness.twin.states import STOPPING

from .ota_pump import LAYOUT, PAYLOAD, URL, OtaPump, provisioned_flash

KEYS = KeyPair.ephemeral()
BROKER = {"mqtt.host": "broker.test", "mqtt.port": "1883"}


def made(pump: OtaPump) -> list[str]:
    """The phases of every report the device made (its OtaStatus actions), in order."""
    return [status.phase for status in pump.ota]


def online_pump(delay: float = 0.0) -> tuple[OtaPump, bytes]:
    """A pump online with the broker, and a console job for an image whose hash it names wrongly."""
    image = build_signed_image("2.0.0", KEYS, size=PAYLOAD, security_counter=2).data
    pump = OtaPump(provisioned_flash(KEYS.public_raw, config=BROKER), layout=LAYOUT)
    pump.http.publish(URL, image)
    pump.broker.delay = delay
    pump.boot()
    pump.run(until=pump.now + 1)  # online
    assert pump.device is not None and pump.device.session is not None
    assert pump.device.session.state == "online"
    return pump, f"ota apply {URL} {'00' * 32} {len(image)} 2.0.0\r".encode()


def apply_then_reboot(pump: OtaPump, job: bytes) -> str:
    """A job rejected (wrong hash), and ``reboot`` typed at once: its reports are still in flight."""
    pump.feed(ConsoleInput(job))
    text = ""
    for _ in range(1000):  # a millisecond at a time, until the verdict is printed
        pump.run(until=pump.now + 0.001)
        text += pump.take()
        if "OTA rejected reason=hash" in text:
            break
    assert "OTA rejected reason=hash" in text, text
    assert pump.device is not None and pump.device.session is not None
    assert pump.device.session.reports_in_flight()
    boot_id = pump.device.boot_id
    pump.feed(ConsoleInput(b"reboot\r"))
    return boot_id


def test_the_reset_waits_for_the_pubacks_and_sends_every_report_once() -> None:
    pump, job = online_pump(delay=0.3)
    old_boot = apply_then_reboot(pump, job)
    assert pump.device is not None and pump.device.state == STOPPING and pump.reboots == []
    pump.feed(ConsoleInput(b"version\r"))  # a resetting board drops what it is sent
    pump.run(until=pump.now + 0.5)  # the PUBACKs come back after 2 x 0.3 s
    assert pump.reboots == [] and pump.device.state == STOPPING
    pump.run(until=pump.now + 0.2)
    assert pump.reboots == ["software"] and pump.device.boot_id != old_boot
    pump.run(until=pump.now + 5)
    phases = [s["phase"] for s in pump.broker.ota_statuses()]
    assert phases == made(pump) and phases[-2:] == ["verifying", "rejected"]  # each one once, in order
    assert pump.device.session is not None and pump.device.session.outbox.carried == 0
    assert "fw " not in pump.take().split("BOOT-DONE")[0]  # the version command was not run


def test_no_puback_in_time_carries_the_reports_to_the_next_boot() -> None:
    pump, job = online_pump()
    pump.broker.stalled = True  # the connection died unnoticed: nothing arrives, nothing is acknowledged
    old_boot = apply_then_reboot(pump, job)
    pump.run(until=pump.now + RESET_DRAIN - 0.01)
    assert pump.reboots == []
    pump.run(until=pump.now + 0.02)
    assert pump.reboots == ["software"]
    pump.broker.stalled = False
    pump.run(until=pump.now + 30)
    reports = pump.broker.ota_statuses()
    phases = [s["phase"] for s in reports]
    assert phases == made(pump) and phases[-1] == "rejected", phases  # lost before: handed to a dead link
    assert {s["boot_id"] for s in reports} == {old_boot}
    assert pump.device is not None and pump.device.session is not None
    assert pump.device.session.outbox.carried == len(reports)


def test_a_connection_lost_while_stopping_resets_at_once_and_carries_everything() -> None:
    pump, job = online_pump(delay=0.3)
    apply_then_reboot(pump, job)
    assert pump.device is not None and pump.device.state == STOPPING
    pump.drop_connection()
    pump.run(until=pump.now + 0.001)
    assert pump.reboots == ["software"]
    assert pump.device.session is not None and pump.device.session.outbox.carried >= 2  # verifying, rejected
    pump.run(until=pump.now + 30)
    assert [s["phase"] for s in pump.broker.ota_statuses()][-2:] == ["verifying", "rejected"]


def test_a_reboot_with_nothing_in_flight_does_not_wait() -> None:
    pump, _ = online_pump(delay=0.3)
    pump.feed(ConsoleInput(b"reboot\r"))
    assert pump.reboots == ["software"]
