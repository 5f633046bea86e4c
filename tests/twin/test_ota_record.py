"""The OTA job record always fits its half page: a job that could outgrow it is refused, an ETag it
cannot hold is treated as absent, reasons are bounded -- never a ValueError out of the core."""

from __future__ import annotations

import hashlib
import json

import pytest

from harness.ota import KeyPair, build_signed_image
from harness.twin import build_image, factory_flash
from harness.twin.flash import Flash, FlashLayout
from harness.twin.ota_record import MAX_ETAG, read_job
from harness.twin.records import write_config

from .ota_pump import LAYOUT, PAYLOAD, URL, OtaPump, apply_line, job_document, provisioned_flash

KEYS = KeyPair.ephemeral()
BROKER = {"mqtt.host": "broker.test", "mqtt.port": "1883"}
#: 1.5 KiB pages: a job record has 748 bytes here, not 2028, so a console job's URL fits only if short.
SMALL_PAGES = FlashLayout(slot_pages=48, page_size=1536)


def signed(version: str = "2.0.0", **kwargs: object) -> bytes:
    return build_signed_image(version, KEYS, size=PAYLOAD, **kwargs).data  # type: ignore[arg-type]


def small_page_pump(image: bytes, url: str) -> OtaPump:
    flash = Flash(factory_flash(SMALL_PAGES, build_image("1.0.0", size=PAYLOAD)), SMALL_PAGES)
    write_config(flash, {"ota.pubkey": KEYS.public_raw.hex(), **BROKER})
    pump = OtaPump(bytearray(flash.snapshot()), layout=SMALL_PAGES)
    pump.http.publish(url, image)
    pump.boot()
    return pump


def test_a_job_whose_record_could_outgrow_the_record_area_is_refused() -> None:
    image = signed(security_counter=2)
    long_url = "http://artifacts.test/" + "d/" * 60 + "fw.img"  # fits the console line (256)
    pump = small_page_pump(image, long_url)
    sha = hashlib.sha256(image).hexdigest()
    (line,) = pump.command(f"ota apply {long_url} {sha} {len(image)} 2.0.0")
    assert line == "ERR ota apply: url too long for the job record (148 characters; at most 37 fit here)", line
    pump.publish("devices/twin-0001/ota/job", job_document("j-long", long_url, image, "2.0.0", {"signature": None}))
    pump.run()
    (report,) = pump.broker.ota_statuses()
    assert (report["job_id"], report["phase"]) == ("j-long", "rejected")
    assert report["reason"].startswith("ota apply: url too long for the job record"), report
    assert read_job(Flash(pump.flash, SMALL_PAGES)) is None and pump.http.requests == []
    # The same layout installs a job with a short URL: only the record's room was in the way.
    pump.http.publish(URL, image)
    assert "OTA committed 2.0.0" in pump.type(apply_line(URL, image, "2.0.0"))


@pytest.mark.parametrize(
    ("etag", "kept"),
    [
        ('"' + "e" * (MAX_ETAG - 2) + '"', True),
        ('"' + "e" * (MAX_ETAG - 1) + '"', False),
        ('"' + "e" * 3000 + '"', False),
        ('"caf\u00e9"', False),
        ('"a\r\nb"', False),
        ('W/"' + "\\" * 40 + '"', True),
    ],
    ids=["64-chars", "65-chars", "3002-chars", "non-ascii", "crlf", "backslashes"],
)
def test_an_etag_the_record_cannot_hold_is_treated_as_absent(etag: str, kept: bool) -> None:
    """Without a usable ETag nothing proves the file unchanged, so a resume starts again from byte 0."""
    image = signed(security_counter=2)
    pump = OtaPump(provisioned_flash(KEYS.public_raw), layout=LAYOUT)
    pump.http.publish(URL, image)
    pump.http.etag = etag
    pump.http.cut_after = [20_000]  # the first body dies after four pages
    pump.boot()
    text = pump.type(apply_line(URL, image, "2.0.0"))
    assert "OTA committed 2.0.0" in text, text
    asked = [(get.range_start, get.if_range) for get in pump.http.requests]
    assert asked == ([(0, None), (16384, etag)] if kept else [(0, None), (0, None)]), asked
    record = read_job(Flash(pump.flash, LAYOUT))
    assert record is not None and record.etag == (etag if kept else None)


def test_an_outcome_reason_is_one_line_of_printable_ascii() -> None:
    """The image header's version is UTF-8; the reason naming it is stored and reported cleaned."""
    image = build_image("2.0.0\u00e9\u00e9", size=PAYLOAD)
    pump = OtaPump(provisioned_flash(KEYS.public_raw), layout=LAYOUT)
    pump.http.publish(URL, image)
    pump.boot()
    assert "OTA rejected reason=version (image says 2.0.0??, job 2.0.0)" in pump.type(apply_line(URL, image, "2.0.0"))
    record = read_job(Flash(pump.flash, LAYOUT))
    assert record is not None and record.reason == "version (image says 2.0.0??, job 2.0.0)"
    assert json.loads(pump.command("ota status")[0])["reason"] == record.reason
