"""OTA reports waiting for their PUBACK survive a software or watchdog reset (noinit RAM), not a power cut."""

from __future__ import annotations

import random

import pytest

from harness.ota import KeyPair, build_signed_image
from harness.twin.noinit import NOINIT_SIZE, load_outbox, save_outbox
from harness.twin.outbox import Pending

from .ota_pump import LAYOUT, PAYLOAD, URL, OtaPump, provisioned_flash

KEYS = KeyPair.ephemeral()
BROKER = {"mqtt.host": "broker.test", "mqtt.port": "1883"}
STATUS = "devices/twin-0001/ota/status"


def rejected_offline() -> tuple[OtaPump, str]:
    """A console job rejected (wrong hash) while the broker is unreachable: three reports queued."""
    image = build_signed_image("2.0.0", KEYS, size=PAYLOAD, security_counter=2).data
    pump = OtaPump(provisioned_flash(KEYS.public_raw, config=BROKER), layout=LAYOUT)
    pump.http.publish(URL, image)
    pump.boot()
    pump.broker.up = False
    pump.drop_connection()
    pump.run(until=pump.now + 0.01)
    text = pump.type(f"ota apply {URL} {'00' * 32} {len(image)} 2.0.0\r".encode())
    assert "OTA rejected reason=hash" in text, text
    assert pump.device is not None and pump.device.session is not None
    assert len(pump.device.session.outbox) == 3 and pump.broker.ota_statuses() == []
    return pump, pump.device.boot_id


def test_reports_queued_offline_go_out_after_a_software_reset_as_the_old_boot_made_them() -> None:
    pump, old_boot = rejected_offline()
    pump.type(b"reboot\r")
    assert pump.reboots == ["software"]
    assert pump.device is not None and pump.device.boot_id != old_boot
    pump.broker.up = True
    pump.run(until=pump.now + 30)
    reports = pump.broker.ota_statuses()
    assert [s["phase"] for s in reports] == ["downloading", "verifying", "rejected"], reports
    assert {(s["boot_id"], s["fw"], s["job_id"]) for s in reports} == {(old_boot, "1.0.0", "")}
    assert pump.device.session is not None and len(pump.device.session.outbox) == 0


def test_a_power_cut_loses_what_noinit_ram_held() -> None:
    pump, _ = rejected_offline()
    pump.power_cut()
    pump.broker.up = True
    pump.boot()
    pump.run(until=pump.now + 30)
    assert pump.broker.ota_statuses() == []  # documented: RAM does not survive a power cut


def entries(count: int, size: int = 200) -> list[Pending]:
    return [Pending(STATUS, b'{"n":%d,"pad":"%s"}' % (n, b"x" * size), True, n % 2 == 0) for n in range(count)]


def test_noinit_ram_keeps_the_newest_reports_that_fit_in_order() -> None:
    kept = load_outbox(save_outbox(entries(3)))
    assert [(e.topic, e.payload, e.retain, e.coalesce, e.ref) for e in kept] == [
        (e.topic, e.payload, e.retain, e.coalesce, None) for e in entries(3)
    ]
    many = entries(40)
    raw = save_outbox(many)
    assert len(raw) <= NOINIT_SIZE
    kept = load_outbox(raw)
    assert 10 < len(kept) < 40 and [e.payload for e in kept] == [e.payload for e in many[-len(kept) :]]
    assert load_outbox(save_outbox([])) == []


def valid_block() -> bytes:
    return save_outbox(entries(2))


@pytest.mark.parametrize(
    "noinit",
    [
        bytes(random.Random(5).getrandbits(8) for _ in range(NOINIT_SIZE)),  # RAM after a cold start
        b"\x00" * NOINIT_SIZE,
        valid_block()[:-1],
        valid_block()[:30] + bytes([valid_block()[30] ^ 1]) + valid_block()[31:],
    ],
    ids=["random", "zeros", "truncated", "bit-flip"],
)
def test_noinit_ram_that_does_not_check_out_is_ignored(noinit: bytes) -> None:
    assert load_outbox(noinit) == []
    pump = OtaPump(provisioned_flash(KEYS.public_raw, config=BROKER), layout=LAYOUT)
    pump.power_on("software", noinit=noinit)
    pump.run(until=pump.now + 5)
    assert pump.device is not None and pump.device.session is not None
    assert pump.device.session.state == "online" and len(pump.device.session.outbox) == 0
    assert pump.broker.ota_statuses() == []
