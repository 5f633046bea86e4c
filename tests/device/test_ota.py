"""OTA end to end on the device: signed images from the artifact server, trial boot, confirm or roll back."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.requires("ota")


def test_happy_path_commits_and_runs_the_new_version(dut, ota):
    before = dut.version()
    outcome = ota.deploy(ota.build("2.1.0"), expect="committed", timeout=120)
    assert outcome.running == "2.1.0" != before
    assert outcome.timings, outcome
    assert any("OTA trial" in line for line in outcome.lines), outcome.lines


@pytest.mark.parametrize(
    ("corrupt", "reason"),
    [("payload-byte", "hash"), ("signature", "signature"), ("other-key", "signature")],
)
def test_faulty_images_are_rejected_and_the_old_version_keeps_running(dut, ota, corrupt, reason):
    before = dut.version()
    outcome = ota.deploy(ota.build("9.0.0", corrupt=corrupt), expect="rejected", timeout=120)
    assert reason in outcome.reason, outcome
    assert outcome.running == before


def test_downgrade_is_rejected(dut, ota):
    ota.deploy(ota.build("3.0.0", security_counter=50), expect="committed", timeout=120)
    outcome = ota.deploy(ota.build("2.9.0", security_counter=10), expect="rejected", timeout=120)
    assert "downgrade" in outcome.reason or "counter" in outcome.reason, outcome
    assert outcome.running == "3.0.0"


@pytest.mark.parametrize("variant", ["crash-on-boot", "fail-health"])
def test_bad_firmware_rolls_back(dut, ota, variant, quick_health_window):
    before = dut.version()
    outcome = ota.deploy(ota.build("4.0.0", variant=variant, security_counter=90 + len(variant)),
                         expect="rolled_back", timeout=180)
    assert outcome.running == before, outcome
