"""Boot, version, reboot and shell errors: the reference device suite.

These tests use only the plugin's fixtures, never the twin's code: run them with
``--rig rigs/your-bench.yaml`` against a board whose profile speaks the reference shell.
"""

from __future__ import annotations

import json

import pytest

from harness.errors import DeviceError

pytestmark = pytest.mark.requires("console", "power")


def test_boots_to_prompt_and_reports_its_version(dut):
    boot = dut.power_cycle()
    version = dut.version()
    assert version, "the version command answered nothing the profile's pattern could read"
    banner = "\n".join(boot.lines)
    assert version in banner, f"boot banner does not name the running version {version!r}:\n{banner}"
    assert boot.seconds < dut.profile.boot_timeout


def test_reboot_starts_a_new_boot(dut):
    before = json.loads(dut.command("status"))
    boot = dut.reboot()
    after = json.loads(dut.command("status"))
    assert boot.reason == "reboot"
    assert after["boot_id"] != before["boot_id"]
    assert after["boot_count"] == before["boot_count"] + 1
    assert after["uptime"] < before["uptime"] + boot.seconds + 5
    assert after["fw_version"] == before["fw_version"]


def test_status_is_one_json_line_with_the_documented_fields(dut):
    out = dut.command("status").strip()
    assert "\n" not in out, f"status printed more than one line: {out!r}"
    status = json.loads(out)
    for key in ("uptime", "heap_free", "boot_id", "slot", "fw_version", "boot_count", "reset_cause"):
        assert key in status, f"status lacks {key!r}: {status}"
    assert status["heap_free"] > 0


@pytest.mark.parametrize("cmd", ["frobnicate", "config frob", "dump lots"])
def test_bad_commands_print_an_error_line(dut, cmd):
    out = dut.command(cmd, check=False)
    assert out.strip().startswith("ERR"), f"{cmd!r} answered {out!r}"
    with pytest.raises(DeviceError, match="failed"):
        dut.command(cmd)
    assert dut.is_responsive(), "the shell stopped answering after an error"


def test_console_path_loses_nothing(console, dut):
    """A 400 kB dump arrives whole: every numbered line in order, and the firmware's CRC matches."""
    import binascii
    import re

    n_bytes = 400_000  # stays within the console's in-memory line log (10k lines); bench/console.py does MBs
    mark = console.mark()
    console.sendline(f"dump {n_bytes}")
    end = console.expect(re.compile(r"DUMP-END lines=(\d+) bytes=(\d+) crc32=([0-9a-f]{8})"), timeout=60)
    console.expect(dut.profile.prompt)
    lines = [ln for ln in console.lines_since(mark) if ln[:8].isdigit() and len(ln) == 62]
    assert len(lines) == int(end.group(1)), f"got {len(lines)} dump lines, device sent {end.group(1)}"
    assert [int(ln[:8]) for ln in lines] == list(range(len(lines)))
    raw = "".join(ln + "\r\n" for ln in lines).encode()
    assert len(raw) == int(end.group(2))
    assert f"{binascii.crc32(raw):08x}" == end.group(3)
