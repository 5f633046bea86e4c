"""OTA over MQTT on the device: the job on devices/<id>/ota/job, every step reported on devices/<id>/ota/status.

Runs on any rig whose profile delivers updates over MQTT (``ota_delivery: mqtt``); the reference suite's
other OTA tests use the same path through ``ota.deploy``.
"""

from __future__ import annotations

import time

import pytest

from harness.errors import ConfigError
from tests.device.mqtt_helpers import produced_after

pytestmark = pytest.mark.requires("ota")

STEPS = ["downloading", "verifying", "rebooting", "trial", "committed"]


@pytest.fixture
def mqtt_ota(ota):
    if ota.via != "mqtt":
        pytest.skip(f"the device profile delivers updates by {ota.via}, not MQTT")
    return ota


def steps(reports):
    phases = [r.phase for r in reports]
    return [p for i, p in enumerate(phases) if i == 0 or p != phases[i - 1]]


def test_every_step_of_an_update_is_reported_with_the_job_id(dut, mqtt_ota, artifacts):
    outcome = mqtt_ota.deploy(mqtt_ota.build("5.1.0"), expect="committed", timeout=120)
    assert outcome.via == "mqtt" and outcome.job_id
    reports = mqtt_ota.reports(outcome.job_id)
    assert steps(reports) == STEPS, [str(r) for r in reports]
    progress = [r.percent for r in reports if r.phase == "downloading"]
    assert progress[0] == 0 and progress == sorted(progress) and progress[-1] >= 90, progress
    assert reports[0].fw != "5.1.0" and reports[-1].fw == "5.1.0"  # who reported: the old, then the new firmware
    assert {"downloading_s", "verifying_s", "rebooting_s", "trial_s"} <= outcome.timings.keys(), outcome.timings
    # The same job delivered again (a broker that redelivers, a deployer that publishes twice) is acted
    # on once: across a reboot the device only reports its outcome again, and downloads nothing.
    served = artifacts.statistics()["requests"]
    last = mqtt_ota.jobs.reports(mqtt_ota.device, outcome.job_id)[-1]
    mqtt_ota.jobs.publish_job(mqtt_ota.device, mqtt_ota.last_job.document)
    dut.reboot()
    again = mqtt_ota.jobs.wait_for(mqtt_ota.device, outcome.job_id, lambda r: r.arrival > last.arrival, timeout=30)
    mqtt_ota.clear_open_jobs()
    assert again is not None and (again.phase, again.fw) == ("committed", "5.1.0"), mqtt_ota.reports(outcome.job_id)
    assert dut.version() == "5.1.0"
    assert artifacts.statistics()["requests"] == served


def test_a_job_given_up_on_is_cleared_and_never_installs_later(dut, mqtt_ota, telemetry, artifacts):
    before, served = dut.version(), artifacts.statistics()["requests"]
    dut.power_off()  # offline: the job can only wait on the broker, retained
    job = mqtt_ota.start(mqtt_ota.build("5.6.0"))
    outcome = mqtt_ota.finish(job, expect=None, timeout=2)
    assert outcome.result == "timeout" and "no status report of this job arrived" in outcome.reason
    assert mqtt_ota.jobs.open_jobs() == {}  # cleared on the broker, though no outcome came
    back = time.time()
    dut.power_on()
    telemetry.wait_for(produced_after(back), timeout=60)  # connected and subscribed: a retained job is here by now
    assert mqtt_ota.status().get("phase") != "downloading" and dut.version() == before
    assert artifacts.statistics()["requests"] == served


def test_download_over_3g_with_a_partition_in_the_middle_resumes_and_commits(mqtt_ota, network, artifacts):
    network.profile("3g")
    resumed = artifacts.statistics()["resumed"]
    job = mqtt_ota.start(mqtt_ota.build("5.2.0"))
    before = mqtt_ota.jobs.wait_for(mqtt_ota.device, job.job_id, lambda r: r.percent >= 20, timeout=60)
    assert before is not None, mqtt_ota.reports(job.job_id)
    network.partition(15)  # heals by itself; the device's MQTT and HTTP both lose the link
    outcome = mqtt_ota.finish(job, expect="committed", timeout=180)
    assert outcome.running == "5.2.0"
    assert artifacts.statistics()["resumed"] > resumed  # the rest came with Range, not from byte 0
    reports = mqtt_ota.reports(job.job_id)
    assert steps(reports)[-4:] == STEPS[1:], [str(r) for r in reports]
    after = [r.percent for r in reports if r.phase == "downloading" and r.arrival > before.arrival]
    assert after and min(after) >= before.percent, (before, after)


@pytest.mark.parametrize(
    ("job", "reason"),
    [
        ({"signature": "00" * 64}, "signature-mismatch"),
        ({"sha256": "not-a-hash"}, "job: sha256 expects 64 hex digits"),
        ({"size": -1}, "ota apply expects a size"),
        ({"url": "ftp://example.invalid/fw.img"}, "ota apply expects an http:// URL"),
    ],
)
def test_a_job_the_device_cannot_trust_is_rejected_and_the_old_version_keeps_running(dut, mqtt_ota, job, reason):
    before = dut.version()
    outcome = mqtt_ota.deploy(mqtt_ota.build("5.3.0"), job=job, expect="rejected", timeout=60)
    assert reason in outcome.reason, outcome
    assert outcome.running == before
    assert [r.phase for r in mqtt_ota.reports(outcome.job_id)][-1] == "rejected"


def test_a_rollback_is_reported_by_the_firmware_that_took_over_again(dut, mqtt_ota, quick_health_window):
    before = dut.version()
    outcome = mqtt_ota.deploy(mqtt_ota.build("5.4.0", variant="fail-health"), expect="rolled_back", timeout=180)
    last = mqtt_ota.reports(outcome.job_id)[-1]
    assert (last.phase, last.fw) == ("rolled_back", before), last
    assert "not-confirmed" in last.reason


def test_the_console_path_still_installs(dut, ota):
    if not dut.profile.ota_apply:
        pytest.skip("the device profile has no ota_apply command")
    outcome = ota.deploy(ota.build("5.5.0"), via="console", expect="committed", timeout=120)
    assert outcome.via == "console" and outcome.running == "5.5.0"


def test_an_image_larger_than_the_slot_is_refused_before_a_byte_is_downloaded(dut, mqtt_ota):
    """The job's size is more than the device's slot: refused from the job alone, the server never asked."""
    if mqtt_ota.slot_size is None:
        pytest.skip("the rig says no slot size (a bench): nothing to overflow on purpose")
    with pytest.raises(ConfigError, match=r"does not fit the \d+ bytes .* slot"):
        mqtt_ota.build("5.6.0", size=mqtt_ota.slot_size)  # the fixture's own build refuses it first
    before = dut.version()
    served = mqtt_ota.artifacts.statistics()["requests"]
    too_big = mqtt_ota.slot_size + 1
    outcome = mqtt_ota.deploy(mqtt_ota.build("5.6.0"), job={"size": too_big}, expect="rejected", timeout=60)
    assert f"image of {too_big} bytes does not fit slot" in outcome.reason, outcome
    assert mqtt_ota.artifacts.statistics()["requests"] == served
    assert outcome.running == before
