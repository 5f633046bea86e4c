"""The served twin updates itself over HTTP from the harness's artifact server, driven over its console.

No harness code on the device side: the twin is a ``python -m harness.twin serve`` process reached
with plain pyserial; the harness side (signed images, the artifact server and its faults) is what a
run uses.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator

import pytest
import pyvisa
import serial

from harness.ota import KeyPair, build_signed_image, corrupt
from harness.services.artifact_faults import SlowBody, TruncateBody
from harness.services.artifacts import ArtifactServer

from .console import command, read_until
from .served import ServedTwin

KEYS = KeyPair.ephemeral()
PAYLOAD = 128 * 1024
WAIT = 30.0


@pytest.fixture
def artifacts() -> Iterator[ArtifactServer]:
    with ArtifactServer() as server:
        yield server


def apply(port: serial.Serial, url: str, data: bytes, version: str) -> None:
    port.write(f"ota apply {url} {hashlib.sha256(data).hexdigest()} {len(data)} {version}\r".encode())


def test_served_twin_installs_resumes_rejects_and_rolls_back(
    serve: Callable[..., ServedTwin], artifacts: ArtifactServer
) -> None:
    twin = serve("--slot-pages", "48")
    with serial.Serial(twin.console, timeout=5) as port:
        port.write(b"\r")
        read_until(port, b"twin> ")
        assert command(port, f"config set ota.pubkey {KEYS.public_raw.hex()}") == ["OK"]
        assert command(port, "config set ota.health_window 1") == ["OK"]

        # A bad signature is rejected after the download; 1.0.0 keeps running, nothing rebooted.
        bad = corrupt(build_signed_image("2.0.0", KEYS, size=PAYLOAD, security_counter=1), "signature").data
        apply(port, artifacts.publish("bad.img", bad), bad, "2.0.0")
        text = read_until(port, b"OTA rejected reason=bad-signature\r\n", WAIT).decode()
        assert "OTA verifying" in text and "BOOT " not in text
        assert command(port, "version")[0].startswith("fw 1.0.0 slot=A ")

        # A good image, through a connection cut after 50000 bytes: resumed with Range + If-Range.
        good = build_signed_image("2.0.0", KEYS, size=PAYLOAD, security_counter=1).data
        url = artifacts.publish("fw-2.0.0.img", good)
        with artifacts.fault(TruncateBody(after=50_000), times=1):
            apply(port, url, good, "2.0.0")
            text = read_until(port, b"OTA committed 2.0.0\r\n", WAIT).decode()
        for line in ("OTA retry 1/8", "OTA verifying", "OTA rebooting", "BOOT trial boot of slot B",
                     "OTA trial 2.0.0 (boot 1 of 3)"):  # fmt: skip
            assert line in text, f"{line!r} missing from:\n{text}"
        assert command(port, "version")[0].startswith("fw 2.0.0 slot=B ")
        stats = artifacts.wait_requests(3, timeout=WAIT)  # bad.img, the cut GET, the resumed GET
        assert stats["requests"] == 3 and stats["resumed"] == 1, stats

        # An image that crashes at boot: three trial boots, then the bootloader rolls back to 2.0.0.
        crash = build_signed_image("3.0.0", KEYS, size=PAYLOAD, security_counter=2, variant="crash-on-boot").data
        apply(port, artifacts.publish("crash.img", crash), crash, "3.0.0")
        text = read_until(port, b"OTA rolled_back reason=not-confirmed after 3 trial boots\r\n", WAIT).decode()
        assert text.count("FATAL application fault at startup") == 3
        assert "BOOT trial of slot A never confirmed; rolling back to slot B" in text
        assert command(port, "version")[0].startswith("fw 2.0.0 slot=B ")
        status = command(port, "ota status")[0]
        assert '"phase":"rolled_back"' in status and '"version":"3.0.0"' in status


def test_a_real_power_cut_mid_download_resumes_at_the_next_boot(
    serve: Callable[..., ServedTwin], artifacts: ArtifactServer
) -> None:
    twin = serve("--slot-pages", "48")
    manager = pyvisa.ResourceManager("@py")
    supply = manager.open_resource(twin.scpi, read_termination="\n", write_termination="\n", timeout=15000)
    try:
        with serial.Serial(twin.console, timeout=5) as port:
            port.write(b"\r")
            read_until(port, b"twin> ")
            assert command(port, f"config set ota.pubkey {KEYS.public_raw.hex()}") == ["OK"]
            image = build_signed_image("2.0.0", KEYS, size=PAYLOAD, security_counter=1).data
            url = artifacts.publish("fw.img", image)
            with artifacts.fault(SlowBody(rate=100_000)):  # about 1.3 s for the whole image
                apply(port, url, image, "2.0.0")
                read_until(port, b"OTA downloading 2", WAIT)  # 2x%
                read_until(port, b"OTA downloading 3", WAIT)  # 3x%: a third of the pages are written
                assert isinstance(supply, pyvisa.resources.MessageBasedResource)
                supply.write("OUTP OFF;OUTP ON")  # SIGKILL mid-download, then a fresh boot from flash
            text = read_until(port, b"OTA committed 2.0.0\r\n", WAIT).decode()
            resumed = re.search(r"OTA resuming 2\.0\.0 at (\d+)%", text)
            assert resumed is not None and 30 <= int(resumed.group(1)) < 100, text
            assert "reset_cause=power-on" in text
            assert command(port, "version")[0].startswith("fw 2.0.0 slot=B ")
            stats = artifacts.wait_requests(2, timeout=WAIT)
            assert stats["resumed"] == 1, stats
    finally:
        supply.close()  # not the manager: pyvisa shares it with every other session of the process
