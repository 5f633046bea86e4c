"""The OTA client in the core, over the in-memory HTTP server: install, reject, resume, retry, roll back."""

from __future__ import annotations

import json

import pytest

from harness.ota import KeyPair, build_signed_image, corrupt
from harness.twin import ConsoleInput
from harness.twin.flash import Flash
from harness.twin.ota_record import read_job
from harness.twin.records import read_bootctl

from .ota_pump import LAYOUT, PAYLOAD, URL, OtaPump, apply_line, provisioned_flash

KEYS = KeyPair.ephemeral()


def signed(version: str = "2.0.0", **kwargs: object) -> bytes:
    return build_signed_image(version, KEYS, size=PAYLOAD, **kwargs).data  # type: ignore[arg-type]


def booted(image: bytes, *, factory_counter: int = 0, config: dict[str, str] | None = None) -> OtaPump:
    pump = OtaPump(provisioned_flash(KEYS.public_raw, factory_counter=factory_counter, config=config), layout=LAYOUT)
    pump.http.publish(URL, image)
    pump.boot()
    return pump


def status(pump: OtaPump) -> dict[str, object]:
    (line,) = pump.command("ota status")
    result: dict[str, object] = json.loads(line)
    return result


def test_install_downloads_verifies_trials_and_commits() -> None:
    image = signed(security_counter=3)
    pump = booted(image)
    text = pump.type(apply_line(URL, image, "2.0.0"))
    for line in ("OTA downloading 0%", "OTA downloading 55%", "OTA verifying", "OTA rebooting",
                 "BOOT trial boot of slot B (2 attempts left)", "OTA trial 2.0.0 (boot 1 of 3)",
                 "OTA committed 2.0.0"):  # fmt: skip
        assert line in text, f"{line!r} missing from:\n{text}"
    assert text.index("OTA rebooting") < text.index("OTA trial") < text.index("OTA committed")
    assert pump.command("version")[0].startswith("fw 2.0.0 slot=B ")
    record = read_bootctl(Flash(pump.flash, LAYOUT))
    assert record is not None
    assert (record.active_slot, record.trial_slot, record.confirmed, record.security_counter) == ("B", None, True, 3)
    assert status(pump)["phase"] == "committed"
    assert [s.phase for s in pump.ota][-3:] == ["rebooting", "trial", "committed"]
    assert len(pump.http.requests) == 1 and pump.http.requests[0].range_start == 0
    # A second update goes the other way: into slot A, the one not running now.
    newer = signed("3.0.0", security_counter=4)
    pump.http.publish(URL, newer)
    assert "OTA committed 3.0.0" in pump.type(apply_line(URL, newer, "3.0.0"))
    assert pump.command("version")[0].startswith("fw 3.0.0 slot=A ")


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("signature", "bad-signature"),
        ("other-key", "bad-signature"),
        ("unsigned", "unsigned"),
        ("header", "image (header CRC mismatch)"),
        ("downgrade", "downgrade (security counter 4 below 5)"),
    ],
)
def test_a_bad_image_is_rejected_and_the_old_version_keeps_running(how: str, reason: str) -> None:
    genuine = build_signed_image("2.0.0", KEYS, size=PAYLOAD, security_counter=5)
    image = corrupt(genuine, how, key=KEYS if how == "downgrade" else None).data
    pump = booted(image, factory_counter=5)
    text = pump.type(apply_line(URL, image, "2.0.0"))
    assert f"OTA rejected reason={reason}" in text, text
    assert "OTA rebooting" not in text and pump.reboots == []
    assert pump.command("version")[0].startswith("fw 1.0.0 slot=A ")
    record = read_bootctl(Flash(pump.flash, LAYOUT))
    assert record is not None and (record.active_slot, record.trial_slot) == ("A", None)
    assert (status(pump)["phase"], status(pump)["reason"]) == ("rejected", reason)
    pump.power_cut()  # the outcome survives a power cycle
    pump.boot()
    assert status(pump)["phase"] == "rejected"


def test_a_wrong_sha256_or_size_is_rejected() -> None:
    image = signed()
    pump = booted(image)
    line = apply_line(URL, image, "2.0.0").split(b" ")
    line[3] = b"0" * 64
    assert "OTA rejected reason=hash" in pump.type(b" ".join(line))
    line = apply_line(URL, image, "2.0.0").split(b" ")
    line[4] = str(len(image) - 1).encode()
    assert "OTA rejected reason=size (server has" in pump.type(b" ".join(line))
    assert "OTA rejected reason=no-key" in booted_without_key(image).type(apply_line(URL, image, "2.0.0"))


def booted_without_key(image: bytes) -> OtaPump:
    pump = booted(image)
    pump.command("config del ota.pubkey")
    pump.command("reboot")
    return pump


def test_a_dropped_connection_resumes_from_the_last_written_page_with_if_range() -> None:
    image = signed()
    pump = booted(image)
    pump.http.cut_after = [5 * 4096 + 1000, 9 * 4096 + 17]
    text = pump.type(apply_line(URL, image, "2.0.0"))
    assert "OTA committed 2.0.0" in text
    starts = [(r.range_start, r.if_range) for r in pump.http.requests]
    etag = pump.http.requests[1].if_range
    assert etag is not None and starts == [(0, None), (5 * 4096, etag), (14 * 4096, etag)]
    assert pump.http.answered == [200, 206, 206]
    assert text.count("OTA retry") == 2


def test_an_image_changed_on_the_server_restarts_from_zero() -> None:
    image = signed()
    pump = booted(image)
    pump.http.cut_after = [3 * 4096]
    pump.feed(ConsoleInput(apply_line(URL, image, "2.0.0")))
    pump.run(until=pump.now + 0.2)  # the cut body and the retry's back-off are behind us ...
    other = signed("2.0.0", security_counter=1)  # ... when the server starts serving another build
    pump.http.publish(URL, other)
    pump.run()
    text = pump.take()
    assert "OTA restarting from 0: image changed on the server" in text
    assert [r.range_start for r in pump.http.requests] == [0, 3 * 4096]
    assert pump.http.answered == [200, 200]
    assert "OTA rejected reason=hash" in text  # the job named the first build's SHA-256


def test_server_errors_back_off_honour_retry_after_and_are_bounded() -> None:
    image = signed()
    pump = booted(image)
    pump.http.statuses = [(503, 2.0), (500, None)]
    start = pump.now
    text = pump.type(apply_line(URL, image, "2.0.0"))
    assert "OTA retry 1/8 in 2s: http-503" in text and "OTA retry 2/8 in 0.5s: http-500" in text
    assert "OTA committed 2.0.0" in text and pump.now - start > 2.5
    pump.http.statuses = [(500, None)] * 20
    newer = signed("3.0.0")
    pump.http.publish(URL, newer)
    text = pump.type(apply_line(URL, newer, "3.0.0"))
    assert "OTA failed reason=http-500 (8 retries)" in text
    assert len(pump.http.requests) == 3 + 9
    assert pump.command("version")[0].startswith("fw 2.0.0 ")


def test_a_server_that_ignores_range_is_skipped_ahead() -> None:
    image = signed()
    pump = booted(image)
    pump.http.cut_after = [7 * 4096 + 5]
    pump.http.ignore_range = True
    text = pump.type(apply_line(URL, image, "2.0.0"))
    assert "OTA committed 2.0.0" in text and "restarting" not in text
    assert pump.http.answered == [200, 200]


@pytest.mark.parametrize(
    ("variant", "evidence"),
    [("crash-on-boot", "FATAL application fault at startup"), ("fail-health", "OTA health check failed")],
)
def test_a_trial_that_never_confirms_rolls_back_and_says_so(variant: str, evidence: str) -> None:
    image = signed(variant=variant, security_counter=2)
    pump = booted(image, config={"ota.health_window": "1"})
    text = pump.type(apply_line(URL, image, "2.0.0"))
    assert text.count(evidence) == 3, text
    assert text.count("OTA trial 2.0.0") == 3
    assert "BOOT trial of slot B never confirmed; rolling back to slot A" in text
    assert "OTA rolled_back reason=not-confirmed after 3 trial boots" in text
    assert pump.command("version")[0].startswith("fw 1.0.0 slot=A ")
    assert status(pump)["phase"] == "rolled_back"
    record = read_bootctl(Flash(pump.flash, LAYOUT))
    assert record is not None and (record.active_slot, record.trial_slot, record.security_counter) == ("A", None, 0)
    assert pump.ota[-1].phase == "rolled_back"


def test_slow_boot_image_takes_longer_to_boot_done() -> None:
    image = signed(variant="slow-boot", variant_param=700)
    pump = booted(image)
    pump.type(apply_line(URL, image, "2.0.0"))
    pump.command("reboot")
    pump.power_cut()
    pump.power_on()
    pump.run(until=pump.now + 0.7)
    assert "BOOT-DONE" not in pump.take()
    pump.run()
    assert "BOOT-DONE" in pump.take()


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("ota", "ERR ota expects: apply URL SHA256 SIZE VERSION | status"),
        ("ota apply ftp://x " + "0" * 64 + " 1000 2.0.0", "ERR ota apply expects an http:// URL"),
        ("ota apply http://x/y 123 1000 2.0.0", "ERR ota apply expects the image's SHA-256 as 64 hex digits"),
        ("ota apply http://x/y " + "0" * 64 + " 999999999 2.0.0",
         "ERR ota apply: image of 999999999 bytes does not fit slot B (98304 bytes)"),
        ("ota apply http://x/y " + "0" * 64 + " 256 2.0.0", "ERR ota apply expects a size 257..98304"),
    ],
)
def test_bad_ota_commands_say_what_was_expected(line: str, error: str) -> None:
    pump = booted(signed())
    (reply,) = pump.command(line)
    assert reply.startswith(error), reply
    assert read_job(Flash(pump.flash, LAYOUT)) is None


def test_an_image_larger_than_the_slot_is_refused_before_any_request() -> None:
    """The job's size alone says it cannot fit: no HTTP request, no job record, no flash written."""
    big = build_signed_image("2.0.0", KEYS, size=LAYOUT.slot_size).data  # header + trailer push it past the slot
    assert len(big) > LAYOUT.slot_size
    pump = booted(big)
    before = bytes(pump.flash)
    (reply,) = pump.command(apply_line(URL, big, "2.0.0").decode().strip())
    assert reply == f"ERR ota apply: image of {len(big)} bytes does not fit slot B ({LAYOUT.slot_size} bytes)"
    assert pump.http.requests == []
    assert read_job(Flash(pump.flash, LAYOUT)) is None and bytes(pump.flash) == before


def test_a_server_announcing_more_than_the_slot_is_refused_before_a_byte_is_written() -> None:
    """The job says a size that fits, the server's Content-Length says more than the slot holds."""
    image = signed()
    big = build_signed_image("2.0.0", KEYS, size=LAYOUT.slot_size).data
    pump = booted(big)  # the server has the big file under the job's URL
    slot_b = LAYOUT.slot_offset("B")
    erased = bytes(pump.flash[slot_b : slot_b + LAYOUT.slot_size])
    text = pump.type(apply_line(URL, image, "2.0.0"))  # the job names the small image's size
    assert f"OTA rejected reason=size (server has {len(big)} bytes; slot B holds {LAYOUT.slot_size})" in text, text
    assert len(pump.http.requests) == 1
    assert bytes(pump.flash[slot_b : slot_b + LAYOUT.slot_size]) == erased  # not one page of it written
    assert (status(pump)["phase"], pump.reboots) == ("rejected", [])
