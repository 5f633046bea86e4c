"""The deployer's OTA channel on real brokers: retained jobs out, status reports in, journaled and awaited."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from harness.run.journal import Journal, read_journal
from harness.services.broker import Broker
from harness.services.ota_jobs import MalformedStatus, OtaJobChannel, new_job_id, parse_status_report

WAIT = 10.0


class FakeFirmware:
    """A device's MQTT side only: takes jobs from its job topic, publishes what a test tells it to."""

    def __init__(self, broker: Broker, device: str, job_topic: str = "devices/{device_id}/ota/job") -> None:
        self.topic = job_topic.format(device_id=device)
        self.jobs: list[tuple[bytes, bool]] = []
        self.probes = 0
        self.cond = threading.Condition()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"fw-{device}")
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port, keepalive=10)
        self.client.loop_start()

    def subscribe(self) -> None:
        """Subscribe to the job topic, then see a probe come back: anything retained arrived before it."""
        self.client.subscribe([(self.topic, 1), ("probe/" + self.topic, 1)])
        with self.cond:
            start = self.probes
        for _ in range(50):  # the SUBACK may come after the first probe: retry a bounded number of times
            self.client.publish("probe/" + self.topic, b"x", qos=1)
            with self.cond:
                if self.cond.wait_for(lambda: self.probes > start, timeout=0.2):
                    return
        raise AssertionError(f"no probe came back on probe/{self.topic}")

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self.cond:
            if msg.topic.startswith("probe/"):
                self.probes += 1
            else:
                self.jobs.append((bytes(msg.payload), bool(msg.retain)))
            self.cond.notify_all()

    def report(self, topic: str, payload: bytes | dict[str, Any]) -> None:
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.client.publish(topic, raw, qos=1).wait_for_publish(WAIT)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def channel(broker: Broker, journal: Journal) -> Iterator[OtaJobChannel]:
    ch = OtaJobChannel(broker.endpoint, journal).start()
    yield ch
    ch.close()


@pytest.fixture
def firmware(broker: Broker) -> Iterator[FakeFirmware]:
    fw = FakeFirmware(broker, "dev-7")
    yield fw
    fw.close()


def status(job_id: str, phase: str, **extra: Any) -> dict[str, Any]:
    return {"job_id": job_id, "phase": phase, "version": "2.0.0", "percent": extra.pop("percent", 100),
            "reason": "", "fw": "1.0.0", "boot_id": "b1", "ts": 1_800_000_000.0, **extra}  # fmt: skip


def test_a_job_is_retained_for_a_device_that_subscribes_later_and_cleared_when_over(
    broker: Broker, channel: OtaJobChannel, firmware: FakeFirmware
) -> None:
    job = {"job_id": new_job_id("dev-7"), "version": "2.0.0", "url": "http://h/f.img", "size": 300,
           "sha256": "ab" * 32, "signature": ""}  # fmt: skip
    channel.publish_job("dev-7", job)
    firmware.subscribe()
    assert [(json.loads(p), r) for p, r in firmware.jobs] == [(job, True)]
    channel.clear_job("dev-7")
    later = FakeFirmware(broker, "dev-7")
    try:
        later.subscribe()
        assert later.jobs == []  # nothing retained any more
    finally:
        later.close()


def test_reports_are_journaled_and_the_outcome_is_awaited(
    channel: OtaJobChannel, firmware: FakeFirmware, journal: Journal
) -> None:
    topic = "devices/dev-7/ota/status"
    firmware.report(topic, status("j-1", "downloading", percent=0))
    firmware.report(topic, b"{not json")
    firmware.report(topic, status("j-1", "verifying"))
    firmware.report(topic, status("other", "committed"))
    firmware.report(topic, status("j-1", "rejected", reason="bad-signature"))
    final = channel.wait_outcome("dev-7", "j-1", timeout=WAIT)
    assert final is not None and (final.phase, final.reason) == ("rejected", "bad-signature")
    assert [r.phase for r in channel.reports("dev-7", "j-1")] == ["downloading", "verifying", "rejected"]
    assert channel.wait_outcome("dev-7", "j-unknown", timeout=0.2) is None
    journal.flush()
    records = [r for r in read_journal(journal.path) if str(r["kind"]).startswith("ota.status")]
    assert [r["kind"] for r in records].count("ota.status") == 4
    (bad,) = [r for r in records if r["kind"] == "ota.status.malformed"]
    assert bad["raw"] == "{not json" and bad["error"].startswith("ota status: expected a JSON object")
    assert channel.statistics()["malformed"] == 1


def test_custom_topics_name_the_device(broker: Broker, journal: Journal) -> None:
    ch = OtaJobChannel(broker.endpoint, journal, job_topic="fleet/{device_id}/fw/job",
                       status_topic="fleet/{device_id}/fw/state").start()  # fmt: skip
    fw = FakeFirmware(broker, "board-3", job_topic="fleet/{device_id}/fw/job")
    try:
        fw.report("fleet/board-3/fw/state", status("j-9", "committed"))
        report = ch.wait_outcome("board-3", "j-9", timeout=WAIT)
        assert report is not None and report.device == "board-3"
        ch.publish_job("board-3", {"job_id": "j-10"})
        fw.subscribe()
        assert [json.loads(p)["job_id"] for p, _ in fw.jobs] == ["j-10"]
        ch.clear_job("board-3")
    finally:
        fw.close()
        ch.close()


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"[]", "ota status: expected a JSON object, got list"),
        (b'{"phase": "installing"}', "ota status: phase expected one of"),
        (b'{"phase": "trial", "percent": 140}', "ota status: percent expected a whole number 0-100"),
        (b'{"phase": "trial", "ts": "noon"}', "ota status: ts expected Unix seconds"),
    ],
)
def test_a_malformed_report_names_the_field(payload: bytes, message: str) -> None:
    with pytest.raises(MalformedStatus) as err:
        parse_status_report("d", payload, 1.0)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_a_report_queued_offline_is_timed_by_the_device_clock() -> None:
    late = parse_status_report("d", json.dumps(status("j", "trial", ts=1000.0)).encode(), arrival=1030.0)
    assert late.when == 1000.0
    no_clock = parse_status_report("d", json.dumps(status("j", "trial", ts=5.0)).encode(), arrival=1_800_000_000.0)
    assert no_clock.when == 1_800_000_000.0  # a board without a real-time clock: arrival time


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"[" * 100_000, "ota status: unreadable payload (RecursionError"),
        (b'{"phase": "trial", "ts": 1' + b"0" * 400 + b"}", "ota status: ts expected Unix seconds"),
        (b'{"phase": "trial", "ts": NaN}', "ota status: ts expected Unix seconds"),
    ],
)
def test_a_hostile_report_is_malformed_not_an_exception(payload: bytes, message: str) -> None:
    with pytest.raises(MalformedStatus) as err:
        parse_status_report("d", payload, 1.0)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_a_poisonous_report_does_not_stop_the_channel(channel: OtaJobChannel, firmware: FakeFirmware) -> None:
    topic = "devices/dev-7/ota/status"
    firmware.report(topic, b'{"job_id":"j-2","phase":"trial","ts":1' + b"0" * 400 + b"}")
    firmware.report(topic, b"[" * 100_000)
    firmware.report(topic, status("j-2", "committed"))
    final = channel.wait_outcome("dev-7", "j-2", timeout=WAIT)
    assert final is not None and final.phase == "committed", channel.statistics()
    assert channel.statistics()["malformed"] == 2


def _job(job_id: str) -> dict[str, Any]:
    return {"job_id": job_id, "version": "2.0.0", "url": "http://h/f.img", "size": 300, "sha256": "ab" * 32}


def test_finishing_an_older_job_leaves_a_newer_one_on_the_broker(broker: Broker, channel: OtaJobChannel) -> None:
    channel.publish_job("dev-7", _job("older"))
    channel.publish_job("dev-7", _job("newer"))
    assert channel.clear_job("dev-7", "older") is False
    assert channel.open_jobs() == {"dev-7": "newer"}
    later = FakeFirmware(broker, "dev-7")
    try:
        later.subscribe()
        assert [json.loads(p)["job_id"] for p, _ in later.jobs] == ["newer"]
    finally:
        later.close()
    assert channel.clear_open_jobs() == ["dev-7"] and channel.open_jobs() == {}
    after = FakeFirmware(broker, "dev-7")
    try:
        after.subscribe()
        assert after.jobs == []
    finally:
        after.close()


def test_open_jobs_are_published_again_after_a_broker_restart(broker: Broker, channel: OtaJobChannel,
                                                               journal: Journal) -> None:  # fmt: skip
    channel.publish_job("dev-7", _job("j-open"))
    broker.restart(kill=True)  # amqtt keeps retained messages in memory only; a killed mosquitto may lose them
    fw = FakeFirmware(broker, "dev-7")
    try:
        fw.subscribe()  # before or after the channel is back: retained at subscribe, or live when republished
        with fw.cond:
            fw.cond.wait_for(lambda: fw.jobs, timeout=WAIT)
        assert [json.loads(p)["job_id"] for p, _ in fw.jobs][:1] == ["j-open"], channel.statistics()
    finally:
        fw.close()
    journal.flush()
    assert any(r["kind"] == "ota.job.republished" for r in read_journal(journal.path))
