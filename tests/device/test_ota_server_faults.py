"""Artifact-server faults during an update: the device ends with a commit or a clean rejection, every time."""

from __future__ import annotations

import re

import pytest

from harness.services.artifact_faults import IgnoreRange, ServerError, TruncateBody, Unavailable

pytestmark = pytest.mark.requires("ota", "network")

FAULTS = {
    "500-every-3rd": (ServerError(every=3), None),
    "503-retry-after": (Unavailable(retry_after=1), 2),
    "truncated-body": (TruncateBody(after=300_000), 2),
    "range-ignored": (IgnoreRange(), None),
}


@pytest.mark.parametrize("name", list(FAULTS))
def test_update_survives_a_server_fault(dut, ota, artifacts, network, name):
    fault, times = FAULTS[name]
    network.apply(rate="16mbit")  # long enough a download for the fault to meet a resume
    before = dut.version()
    version = f"7.{list(FAULTS).index(name)}.0"
    artifacts.set_fault(fault, times=times)
    outcome = ota.deploy(ota.build(version), expect=None, timeout=120)
    assert outcome.result in ("committed", "rejected"), outcome
    assert outcome.running == (version if outcome.result == "committed" else before), outcome
    assert outcome.result == "committed", f"{name}: the device gave up on a recoverable fault: {outcome.reason}"


def test_image_changed_mid_download_ends_clean(dut, ota, artifacts, network, console):
    """A new ETag half-way: the device restarts from zero or rejects; it never installs a mix of both."""
    network.apply(rate="8mbit")
    before = dut.version()
    job = ota.start(ota.build("8.0.0"))
    console.expect(re.compile(r"OTA downloading [3-9]\d%"), timeout=60)
    name = job.url.rsplit("/", 1)[1]
    artifacts.replace(name, ota.build("8.0.1").data)
    outcome = ota.finish(job, expect=None, timeout=120)
    assert outcome.result in ("committed", "rejected"), outcome
    if outcome.result == "committed":
        assert outcome.running in ("8.0.0", "8.0.1"), outcome
    else:
        assert outcome.running == before, outcome
