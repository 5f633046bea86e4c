"""OTA jobs over MQTT in the core: a job on devices/<id>/ota/job, every step on devices/<id>/ota/status.

The in-memory broker of the pump keeps retained messages and subscriptions like a real one, so the
cases a deployer meets are all here: a job retained before the device came online, a job redelivered
after every reconnect and boot, a job the device cannot use, and reports made while offline.
"""

from __future__ import annotations

import json

import pytest

from harness.ota import KeyPair, build_signed_image
from harness.twin.flash import Flash
from harness.twin.ota_jobs import BadJob, JobRequest, parse_job
from harness.twin.ota_record import read_job
from harness.twin.ota_refusals import KEPT as REFUSALS_KEPT
from harness.twin.ota_refusals import read_refusals

from .ota_pump import LAYOUT, PAYLOAD, URL, OtaPump, job_document, provisioned_flash

KEYS = KeyPair.ephemeral()
URL_3 = "http://artifacts.test/fw-3.0.0.img"
JOB_TOPIC = "devices/twin-0001/ota/job"
BROKER = {"mqtt.host": "broker.test", "mqtt.port": "1883"}


def signed(version: str = "2.0.0", **kwargs: object) -> bytes:
    return build_signed_image(version, KEYS, size=PAYLOAD, **kwargs).data  # type: ignore[arg-type]


def online(image: bytes | None = None, *, config: dict[str, str] | None = None) -> OtaPump:
    pump = OtaPump(provisioned_flash(KEYS.public_raw, config={**BROKER, **(config or {})}), layout=LAYOUT)
    if image is not None:
        pump.http.publish(URL, image)
    pump.boot()
    assert pump.broker.subscriptions == {JOB_TOPIC: pump.broker.conn}
    return pump


def version(pump: OtaPump) -> str:
    pump.take()  # what the device printed on its own (OTA lines)
    return pump.command("version")[0]


def phases(pump: OtaPump, job_id: str) -> list[str]:
    return [s["phase"] for s in pump.broker.ota_statuses() if s["job_id"] == job_id]


def steps(seen: list[str]) -> list[str]:
    """The phases with repeats in a row folded (progress, and a re-report of a redelivered job)."""
    return [p for i, p in enumerate(seen) if i == 0 or p != seen[i - 1]]


def test_a_job_published_on_the_topic_is_installed_and_every_step_is_reported() -> None:
    image = signed(security_counter=2)
    pump = online(image)
    pump.publish(JOB_TOPIC, job_document("j-1", URL, image, "2.0.0"))
    pump.run()
    reports = [s for s in pump.broker.ota_statuses() if s["job_id"] == "j-1"]
    seen = [s["phase"] for s in reports]
    assert seen[0] == "downloading" and seen[-1] == "committed", seen
    # Each step in order; the retained job redelivered on the trial boot's connection is re-reported
    # as "trial", never started again (one download).
    assert steps(seen) == ["downloading", "verifying", "rebooting", "trial", "committed"], seen
    assert len(pump.http.requests) == 1
    percents = [s["percent"] for s in reports if s["phase"] == "downloading"]
    assert percents == sorted(percents) and percents[0] == 0 and percents[-1] >= 90, percents
    assert reports[-1]["fw"] == "2.0.0" and reports[0]["fw"] == "1.0.0"
    assert reports[-1]["ts"] >= reports[0]["ts"] >= 1_700_000_000
    assert "OTA job j-1: 2.0.0 from " + URL in pump.take()
    assert version(pump).startswith("fw 2.0.0 slot=B ")
    record = read_job(Flash(pump.flash, LAYOUT))
    assert record is not None and (record.job_id, record.phase) == ("j-1", "committed")
    assert json.loads(pump.command("ota status")[0])["job_id"] == "j-1"


def test_a_job_retained_before_the_device_came_online_is_picked_up_at_connect() -> None:
    image = signed(security_counter=2)
    pump = OtaPump(provisioned_flash(KEYS.public_raw, config=BROKER), layout=LAYOUT)
    pump.http.publish(URL, image)
    pump.publish(JOB_TOPIC, job_document("early", URL, image, "2.0.0"))
    pump.boot()
    assert phases(pump, "early")[-1] == "committed"
    assert version(pump).startswith("fw 2.0.0")


def test_redelivery_of_a_finished_job_re_reports_its_outcome_and_installs_nothing() -> None:
    image = signed(security_counter=2)
    pump = online(image)
    pump.publish(JOB_TOPIC, job_document("j-2", URL, image, "2.0.0"))
    pump.run()
    writes, requests = len(pump.writes), len(pump.http.requests)
    pump.drop_connection()  # reconnect: the retained job comes again
    pump.run(until=pump.now + 30)
    pump.power_cut()
    pump.boot()  # and again on the next boot
    assert len(pump.http.requests) == requests
    assert phases(pump, "j-2")[-2:] == ["committed", "committed"]
    boot_writes = len(pump.writes) - writes  # only boot-control writes of the boots
    assert boot_writes <= 4, boot_writes


@pytest.mark.parametrize("broker_restarted", [False, True], ids=["job-retained", "retained-store-lost"])
def test_the_outcome_survives_a_power_cut_before_its_puback(broker_restarted: bool) -> None:
    """Committed on the device, but the report never reached the broker: the next boot says it, whether
    or not the retained job comes again (a broker restarted with an in-memory retained store loses it)."""
    image = signed(security_counter=2)
    pump = online(image)
    pump.publish(JOB_TOPIC, job_document("j-3", URL, image, "2.0.0"))
    for _ in range(5000):  # to the trial boot, online (its health check needs the broker)
        pump.run(until=pump.now + 0.01)
        device = pump.device
        if device and device.ota and device.ota.trial_boot and device.session and device.session.state == "online":
            break
    pump.broker.stalled = True  # the link carries nothing more...
    for _ in range(5000):
        pump.run(until=pump.now + 0.01)
        record = read_job(Flash(pump.flash, LAYOUT))
        if record is not None and record.phase == "committed":
            break
    assert record is not None and record.phase == "committed"
    pump.power_cut()  # ...so the committed report never left when the power went
    assert "committed" not in phases(pump, "j-3")
    pump.broker.stalled = False
    if broker_restarted:
        pump.broker.to_device.clear()
        pump.broker.retained.clear()
    pump.boot()
    assert phases(pump, "j-3")[-1] == "committed"
    assert pump.broker.retained["devices/twin-0001/ota/status"]["phase"] == "committed"
    assert version(pump).startswith("fw 2.0.0 slot=B ")


def test_a_rollback_is_reported_with_the_job_id_by_the_old_firmware() -> None:
    image = signed(variant="crash-on-boot", security_counter=2)
    pump = online(image)
    pump.publish(JOB_TOPIC, job_document("bad-1", URL, image, "2.0.0"))
    pump.run(until=pump.now + 120)
    reports = [s for s in pump.broker.ota_statuses() if s["job_id"] == "bad-1"]
    assert reports[-1]["phase"] == "rolled_back", reports
    # Each crashing trial boot made its "trial" report without ever connecting; the watchdog reset
    # kept it in noinit RAM, so all three reach the broker, in order, from the boots that made them.
    trials = [s for s in reports if s["phase"] == "trial"]
    assert len(trials) == 3 and len({s["boot_id"] for s in trials}) == 3, reports
    assert steps([s["phase"] for s in reports]) == ["downloading", "verifying", "rebooting", "trial", "rolled_back"]
    assert reports[-1]["fw"] == "1.0.0" and "not-confirmed" in reports[-1]["reason"]
    assert version(pump).startswith("fw 1.0.0 slot=A ")


def test_offline_progress_is_coalesced_and_delivered_after_reconnect() -> None:
    image = signed(security_counter=2)
    pump = online(image)
    pump.publish(JOB_TOPIC, job_document("j-4", URL, image, "2.0.0"))
    pump.run(until=pump.now + 0.002)  # the job arrived, the download started
    pump.broker.up = False
    pump.drop_connection()
    device = pump.device
    assert device is not None and device.session is not None
    session, first_boot = device.session, device.boot_id
    pump.run(until=pump.now + 0.2)  # the whole download happens offline; verify; reboot ...
    assert pump.reboots == ["software"] and "committed" not in phases(pump, "j-4")
    assert session.outbox.replaced > 0
    pump.broker.up = True
    pump.run(until=pump.now + 60)
    reports = [s for s in pump.broker.ota_statuses() if s["job_id"] == "j-4"]
    # Every step arrives, in order: what the first boot queued offline went through the software reset
    # (noinit RAM) and out first on the trial boot's connection.
    assert steps([s["phase"] for s in reports]) == ["downloading", "verifying", "rebooting", "trial", "committed"]
    progress = [s["percent"] for s in reports if s["phase"] == "downloading"]
    assert len(progress) == 2 and progress[0] == 0 and progress[1] >= 90, progress  # 0% online, the latest offline
    old = reports[1:4]
    assert {(s["fw"], s["boot_id"]) for s in old} == {("1.0.0", first_boot)}, old  # as the old boot made them
    assert {(s["fw"], s["boot_id"] == first_boot) for s in reports[4:]} == {("2.0.0", False)}, reports
    assert [s["ts"] for s in reports] == sorted(s["ts"] for s in reports)


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (b"not json", "job: not JSON"),
        (b"[1, 2]", "job: expected a JSON object, got list"),
        ({"job_id": None}, "job: missing field 'job_id'"),
        ({"url": None}, "job: missing field 'url'"),
        ({"colour": "red"}, "job: unknown field 'colour'"),
        ({"size": "big"}, "job: size expects a whole number of bytes"),
        ({"sha256": "abc"}, "job: sha256 expects 64 hex digits"),
        ({"signature": "00"}, "job: signature expects 128 hex digits"),
        ({"version": "two point oh"}, "job: version expects up to 32 characters"),
        ({"url": "ftp://x/fw.img"}, "ota apply expects an http:// URL"),
        ({"size": 10}, "ota apply expects a size"),
        ({"size": LAYOUT.slot_size + 1}, f"ota apply: image of {LAYOUT.slot_size + 1} bytes does not fit slot B"),
        ({"signature": "ab" * 64}, "signature-mismatch"),
        ({"sha256": "00" * 32}, "hash"),
    ],
)
def test_a_job_the_device_cannot_use_is_rejected_with_its_reason(document: object, reason: str) -> None:
    image = signed(security_counter=2)
    pump = online(image)
    if isinstance(document, bytes):
        payload = document
    else:
        assert isinstance(document, dict)
        payload = job_document("j-bad", URL, image, "2.0.0", document)
    pump.publish(JOB_TOPIC, payload)
    pump.run()
    reports = pump.broker.ota_statuses()
    assert reports and reports[-1]["phase"] == "rejected", reports
    assert reason in reports[-1]["reason"], reports[-1]
    named = isinstance(document, dict) and "job_id" not in document
    assert reports[-1]["job_id"] == ("j-bad" if named else "")
    assert version(pump).startswith("fw 1.0.0 slot=A ")
    assert pump.reboots == []


def test_a_second_job_while_one_is_running_is_refused_for_good_and_the_first_goes_on() -> None:
    """Refused as busy means refused: the retained job comes again on the trial boot, after the commit
    and after a power cut, and each time it is re-reported ``rejected`` with the same reason."""
    image, other = signed(security_counter=2), signed("3.0.0", security_counter=3)
    pump = online(image)
    pump.http.publish(URL_3, other)
    pump.publish(JOB_TOPIC, job_document("first", URL, image, "2.0.0"))
    pump.run(until=pump.now + 0.005)
    pump.publish(JOB_TOPIC, job_document("second", URL_3, other, "3.0.0"))  # retained, as the harness does
    pump.run()
    assert phases(pump, "first")[-1] == "committed"
    pump.drop_connection()  # redelivered once the device is no longer busy...
    pump.run(until=pump.now + 30)
    pump.power_cut()  # ...and at the next boot (the refusal is in flash)
    pump.boot()
    reports = [s for s in pump.broker.ota_statuses() if s["job_id"] == "second"]
    assert len(reports) == 4 and {s["phase"] for s in reports} == {"rejected"}, reports
    assert {s["reason"] for s in reports} == {"ota busy: downloading 2.0.0"}, reports
    assert [r.url for r in pump.http.requests] == [URL]
    assert version(pump).startswith("fw 2.0.0 slot=B ")


def test_a_malformed_document_naming_the_running_job_does_not_refuse_that_job() -> None:
    image = signed(security_counter=2)
    pump = online(image)
    pump.publish(JOB_TOPIC, job_document("j-5", URL, image, "2.0.0"))
    pump.run()
    pump.publish(JOB_TOPIC, json.dumps({"job_id": "j-5", "colour": "red"}).encode())
    pump.run()
    pump.publish(JOB_TOPIC, job_document("j-5", URL, image, "2.0.0"))
    pump.run()
    assert phases(pump, "j-5")[-2:] == ["rejected", "committed"]
    assert read_refusals(Flash(pump.flash, LAYOUT)) == []


def test_only_the_last_refusals_are_remembered() -> None:
    pump = online()
    for n in range(REFUSALS_KEPT + 1):
        pump.publish(JOB_TOPIC, json.dumps({"job_id": f"bad-{n}", "colour": "red"}).encode())
        pump.run()
    assert [r.job_id for r in read_refusals(Flash(pump.flash, LAYOUT))] == [
        f"bad-{n}" for n in range(1, REFUSALS_KEPT + 1)
    ]
    writes = len(pump.writes)
    pump.publish(JOB_TOPIC, json.dumps({"job_id": "bad-2", "colour": "red"}).encode())
    pump.run()
    assert len(pump.writes) == writes  # a refusal already remembered is re-reported, not written again
    assert phases(pump, "bad-2") == ["rejected", "rejected"]


def test_a_url_the_record_or_the_request_line_could_not_carry_is_rejected() -> None:
    image = signed(security_counter=2)
    pump = online(image)
    urls = ['http://h/"fw".img', "http://h/fw.img\r\nOTA committed 9.9.9", "http://h/" + "\u00e9" * 500,
            "http://h/" + '"' * 1000, "http://h/" + "\\" * 1000]  # fmt: skip
    for n, url in enumerate(urls):
        pump.publish(JOB_TOPIC, job_document(f"j-url-{n}", url, image, "2.0.0"))
        pump.run()
    reports = pump.broker.ota_statuses()
    assert [(s["job_id"], s["phase"]) for s in reports] == [(f"j-url-{n}", "rejected") for n in range(len(urls))]
    assert all(s["reason"].startswith("job: url expects printable ASCII") for s in reports), reports
    lines = pump.take().split("\r\n")
    assert not [line for line in lines if line.startswith("OTA committed")], lines
    assert read_job(Flash(pump.flash, LAYOUT)) is None and pump.http.requests == [] and pump.reboots == []


def test_a_job_that_would_crash_the_parser_is_rejected_at_every_delivery() -> None:
    pump = online()
    pump.publish(JOB_TOPIC, b"[" * 100_000)
    pump.run()
    pump.drop_connection()  # the retained job comes again at the reconnect
    pump.run(until=pump.now + 30)
    reports = pump.broker.ota_statuses()
    assert [s["phase"] for s in reports] == ["rejected", "rejected"], reports
    assert reports[0]["reason"].startswith("job: ") and reports[0]["job_id"] == ""
    assert pump.reboots == [] and version(pump).startswith("fw 1.0.0")


def test_an_empty_retained_payload_clears_the_job_and_is_not_a_job() -> None:
    assert parse_job(b"") is None
    assert isinstance(parse_job(b"{}"), BadJob)
    job = parse_job(json.dumps({"job_id": "a", "version": "1.2.3", "url": "http://h/f", "size": 300,
                                "sha256": "AB" * 32}).encode())  # fmt: skip
    assert job == JobRequest("a", "1.2.3", "http://h/f", 300, "ab" * 32, "")
