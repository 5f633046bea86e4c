"""The firmware core over the in-memory pump: bootloader, shell commands, flash persistence, power cuts."""

from __future__ import annotations

import json
import re
import zlib

import pytest

from harness.twin import ConsoleInput, IllegalMove, PowerOn, TimerFired, install_image
from harness.twin.dump import LINE_BYTES, dump_line
from harness.twin.flash import ERASED, Flash
from harness.twin.records import BootControl, write_bootctl

from .conftest import small_image
from .pump import SMALL, PowerCut, Pump

# --------------------------------------------------------------------------- bootloader


def corrupt_slot(flash: bytearray, slot: str, offset: int = 1000) -> None:
    flash[SMALL.slot_offset(slot) + offset] ^= 0xFF


def erase_slot(flash: bytearray, slot: str) -> None:
    start = SMALL.slot_offset(slot)
    flash[start : start + SMALL.slot_size] = bytes([ERASED]) * SMALL.slot_size


def set_bootctl(flash: bytearray, record: BootControl) -> None:
    mirror = Flash(flash, SMALL)
    write_bootctl(mirror, record)
    flash[:] = mirror.snapshot()


def test_boot_banner_then_boot_done_after_boot_time(pump: Pump) -> None:
    pump.power_on()
    assert pump.take() == "BOOT slot=A fw=1.0.0 boot_count=1 reset_cause=power-on\r\n"
    pump.run(until=0.049)
    assert pump.take() == ""
    pump.run()
    assert pump.take() == "BOOT-DONE\r\ntwin> "
    assert pump.states == ["boot", "idle"]
    assert pump.now == pytest.approx(0.05)


def test_boot_count_is_persisted_with_one_unit_write(flash: bytearray) -> None:
    for expected in (1, 2, 3):
        pump = Pump(flash)
        assert f"boot_count={expected} " in pump.boot()
        assert len(pump.writes) == 1


def test_input_during_boot_is_not_heard(pump: Pump) -> None:
    pump.power_on()
    pump.take()
    pump.feed(ConsoleInput(b"version\r"))
    pump.run()
    assert pump.take() == "BOOT-DONE\r\ntwin> "


def test_corrupt_active_slot_falls_back_and_persists(flash: bytearray) -> None:
    install_image(flash, SMALL, "B", small_image("2.0.0"))
    corrupt_slot(flash, "A")
    text = Pump(flash).boot()
    assert "BOOT slot A invalid: payload hash mismatch; trying slot B\r\n" in text
    assert "BOOT falling back to slot B\r\n" in text
    assert "BOOT slot=B fw=2.0.0 boot_count=1 reset_cause=power-on\r\n" in text
    again = Pump(flash).boot()
    assert again.startswith("BOOT slot=B fw=2.0.0 boot_count=2 ")


@pytest.mark.parametrize(
    ("damage_a", "damage_b", "reasons"),
    [
        ("erase", "erase", ["slot A: slot is erased", "slot B: slot is erased"]),
        ("corrupt", "erase", ["slot A: payload hash mismatch", "slot B: slot is erased"]),
        ("header", "corrupt", ["slot A: header CRC mismatch", "slot B: payload hash mismatch"]),
    ],
)
def test_no_bootable_image_halts(flash: bytearray, damage_a: str, damage_b: str, reasons: list[str]) -> None:
    install_image(flash, SMALL, "B", small_image("2.0.0"))
    for slot, damage in (("A", damage_a), ("B", damage_b)):
        if damage == "erase":
            erase_slot(flash, slot)
        else:
            corrupt_slot(flash, slot, 40 if damage == "header" else 1000)
    pump = Pump(flash)
    text = pump.boot()
    last = text.splitlines()[-1]
    assert last.startswith("BOOT no bootable image (")
    assert last.endswith("); halting")
    assert all(reason in last for reason in reasons)
    assert pump.halted == "no bootable image"
    assert pump.type(b"help\r") == ""
    assert pump.device is not None and pump.device.statistics().state == "halted"


def test_anti_rollback_refuses_an_older_security_counter(flash: bytearray) -> None:
    install_image(flash, SMALL, "A", small_image("1.0.0", security_counter=1))
    install_image(flash, SMALL, "B", small_image("2.0.0", security_counter=3))
    set_bootctl(flash, BootControl(active_slot="A", security_counter=3))
    text = Pump(flash).boot()
    assert "slot A invalid: security counter 1 below minimum 3 (rollback refused)" in text
    assert "BOOT slot=B fw=2.0.0" in text


def test_trial_boot_then_rollback_when_never_confirmed(flash: bytearray) -> None:
    install_image(flash, SMALL, "B", small_image("2.0.0", security_counter=2))
    set_bootctl(flash, BootControl(active_slot="A", trial_slot="B", trial_attempts=1, confirmed=False))
    first = Pump(flash).boot()
    assert "BOOT trial boot of slot B (0 attempts left)" in first
    assert "BOOT slot=B fw=2.0.0 boot_count=1" in first
    second = Pump(flash).boot()
    assert "BOOT trial of slot B never confirmed; rolling back to slot A" in second
    assert "BOOT slot=A fw=1.0.0 boot_count=2" in second


def test_invalid_boot_control_uses_defaults(flash: bytearray) -> None:
    flash[0 : 2 * SMALL.page_size] = bytes([ERASED]) * (2 * SMALL.page_size)
    text = Pump(flash).boot()
    assert "boot-control record invalid in both copies; using defaults" in text
    assert "BOOT slot=A fw=1.0.0 boot_count=1" in text


# --------------------------------------------------------------------------- shell


@pytest.mark.parametrize(
    ("line", "pattern"),
    [
        ("version", r"fw 1\.0\.0 slot=A build=[0-9a-f]{12}"),
        ("uptime", r"uptime \d+\.\d{3}"),
        ("bogus", r"ERR unknown command: bogus \(try 'help'\)"),
        ("bogus with args", r"ERR unknown command: bogus \(try 'help'\)"),
        ("version now", r"ERR version takes no arguments \(got 'now'\)"),
        ("dump", r"ERR dump expects a byte count 1\.\.67108864 \(got ''\)"),
        ("dump lots", r"ERR dump expects a byte count 1\.\.67108864 \(got 'lots'\)"),
        ("dump 0", r"ERR dump expects a byte count .*"),
        ("config", r"ERR config expects: list \| get KEY \| set KEY VALUE \| del KEY"),
        ("config get", r"ERR config expects: .*"),
        ("config get missing", r"ERR config key not set: missing"),
        ("config set lonely", r"ERR config set expects KEY VALUE .*"),
        ("config set bad!key v", r"ERR config set expects KEY VALUE .*"),
        ("config del missing", r"ERR config key not set: missing"),
        ("config set k " + "v" * 129, r"ERR config set expects KEY VALUE .*VALUE: 1-128 characters\)"),
    ],
)
def test_command_replies(pump: Pump, line: str, pattern: str) -> None:
    pump.boot()
    (reply,) = pump.command(line)
    assert re.fullmatch(pattern, reply), reply


def test_help_lists_every_command(pump: Pump) -> None:
    pump.boot()
    text = "\n".join(pump.command("help"))
    for name in ("help", "version", "status", "uptime", "reboot", "config get", "config set", "dump"):
        assert name in text


def test_empty_line_prints_only_a_prompt(pump: Pump) -> None:
    pump.boot()
    assert pump.type(b"\r") == "\r\ntwin> "


def test_status_is_one_json_line(pump: Pump) -> None:
    pump.boot()
    pump.now = 12.5
    (line,) = pump.command("status")
    status = json.loads(line)
    assert status["uptime"] == 12.5
    assert status["slot"] == "A"
    assert status["fw_version"] == "1.0.0"
    assert status["boot_count"] == 1
    assert status["reset_cause"] == "power-on"
    assert re.fullmatch(r"[0-9a-f]{16}", status["boot_id"])
    assert 190_000 < status["heap_free"] < 220_000


def test_status_is_reproducible_from_the_entropy(flash: bytearray) -> None:
    readings = []
    for _ in range(2):
        pump = Pump(bytearray(flash), entropy=99)
        pump.boot()
        readings.append(json.loads(pump.command("status")[0]))
    assert readings[0] == readings[1]
    other = Pump(bytearray(flash), entropy=100)
    other.boot()
    assert json.loads(other.command("status")[0])["boot_id"] != readings[0]["boot_id"]


def test_config_persists_across_new_cores(flash: bytearray) -> None:
    pump = Pump(flash)
    pump.boot()
    assert pump.command("config set mqtt.host 127.0.0.1") == ["OK"]
    assert pump.command("config set greeting hello  twin world") == ["OK"]
    assert pump.command("config set drop me") == ["OK"]
    assert pump.command("config del drop") == ["OK"]
    again = Pump(flash)
    again.boot()
    assert again.command("config get greeting") == ["greeting=hello  twin world"]
    assert again.command("config list") == ["greeting=hello  twin world", "mqtt.host=127.0.0.1"]


def test_config_full_is_refused(pump: Pump) -> None:
    pump.boot()
    for i in range(15):
        assert pump.command(f"config set key{i:02d} {'x' * 120}") == ["OK"]
    (reply,) = pump.command("config set key99 " + "y" * 120)
    assert reply.startswith("ERR config full: ")
    assert "limit 2048" in reply


def test_reboot_restarts_from_flash_with_software_cause(pump: Pump) -> None:
    pump.boot()
    text = pump.type(b"reboot\r")
    assert text.startswith("reboot\r\nrebooting\r\nBOOT slot=A fw=1.0.0 boot_count=2 reset_cause=software\r\n")
    assert text.endswith("BOOT-DONE\r\ntwin> ")
    assert pump.reboots == ["software"]


# --------------------------------------------------------------------------- power cuts


@pytest.mark.parametrize("units_before_cut", [0, 1, 2, 3])
@pytest.mark.parametrize("tear", [False, True])
def test_power_cut_during_config_set_keeps_previous_config(flash: bytearray, units_before_cut: int, tear: bool) -> None:
    setup = Pump(flash)
    setup.boot()
    assert setup.command("config set name old") == ["OK"]
    for i in range(6):
        assert setup.command(f"config set pad{i} {'p' * 100}") == ["OK"]
    before = setup.command("config list")
    victim = Pump(flash, write_budget=1 + units_before_cut, tear_last=tear)  # 1: the boot-count write
    victim.boot()
    with pytest.raises(PowerCut):
        victim.type(b"config set name " + b"n" * 120 + b"\r")
    after = Pump(flash)
    assert "BOOT slot=A" in after.boot()
    assert after.command("config list") == before


@pytest.mark.parametrize("tear", [False, True])
def test_power_cut_during_boot_record_write_still_boots(flash: bytearray, tear: bool) -> None:
    for _ in range(3):
        Pump(flash).boot()
    with pytest.raises(PowerCut):
        Pump(flash, write_budget=0, tear_last=tear).boot()
    assert "boot_count=4 " in Pump(flash).boot()


# --------------------------------------------------------------------------- dump


@pytest.mark.parametrize(("requested", "lines"), [(1, 1), (63, 1), (64, 1), (200, 3), (64 * 300 + 5, 300)])
def test_dump_lines_and_trailer(pump: Pump, requested: int, lines: int) -> None:
    pump.boot()
    reply = pump.command(f"dump {requested}")
    assert len(reply) == lines + 1
    body = "".join(line + "\r\n" for line in reply[:-1]).encode()
    assert body == b"".join(dump_line(i) for i in range(lines))
    assert all(len(line) + 2 == LINE_BYTES and line.startswith(f"{i:08d} ") for i, line in enumerate(reply[:-1]))
    assert reply[-1] == f"DUMP-END lines={lines} bytes={lines * LINE_BYTES} crc32={zlib.crc32(body):08x}"


def test_big_dump_streams_in_chunks_and_buffers_input(pump: Pump) -> None:
    pump.boot()
    pump.states.clear()
    pump.feed(ConsoleInput(b"dump 64000\r"))
    first = pump.take()
    assert "DUMP-END" not in first
    assert pump.states == ["busy"]
    pump.feed(ConsoleInput(b"version\r"))
    assert pump.take() == ""
    pump.run()
    rest = pump.take()
    trailer_at = rest.index("DUMP-END lines=1000 bytes=64000 ")
    assert rest[trailer_at:].split("\r\n", 1)[1].startswith("twin> version\r\nfw 1.0.0 slot=A")
    assert pump.states == ["busy", "idle"]


# --------------------------------------------------------------------------- legal moves and statistics


def test_illegal_moves_name_event_and_state(pump: Pump) -> None:
    device = pump.device
    assert device is None
    pump.power_on()
    assert pump.device is not None
    with pytest.raises(IllegalMove, match=r"PowerOn is not a legal event in state 'booting'"):
        pump.device.handle(PowerOn("power-on", 1), 0.0)
    pump.run()
    with pytest.raises(IllegalMove, match=r"TimerFired\('nope'\) but no such timer is pending"):
        pump.device.handle(TimerFired("nope"), 1.0)


def test_input_before_power_on_is_illegal(flash: bytearray) -> None:
    from harness.twin import Device

    with pytest.raises(IllegalMove, match="ConsoleInput is not a legal event in state 'off'"):
        Device(flash, layout=SMALL).handle(ConsoleInput(b"x"), 0.0)


def test_statistics_count_activity(pump: Pump) -> None:
    pump.boot()
    pump.command("config set a 1")
    pump.command("bogus")
    assert pump.device is not None
    stats = pump.device.statistics()
    assert (stats.boots, stats.commands, stats.command_errors) == (1, 2, 1)
    assert stats.flash_writes == 2
    assert stats.console_bytes_in == len("config set a 1\rbogus\r")
    assert stats.state == "running"


@pytest.mark.parametrize(
    ("cause", "meaning"),
    [("power-on", "power_on"), ("brownout", "brownout"), ("software", "software"), ("watchdog", "watchdog")],
)
def test_every_reset_cause_the_twin_prints_is_read_by_its_profile(pump: Pump, cause: str, meaning: str) -> None:
    """The contract the reports rely on: the reference profile's boot_banner finds the image and the reset
    cause in every banner the bootloader prints, and reset_causes names each cause the board can know."""
    from harness.rig.profile import get_profile

    profile = get_profile("twin-reference")
    pump.power_on(cause)
    line = pump.take().splitlines()[-1]
    m = re.search(str(profile.boot_banner), "twin> " + line)  # after a reset the old prompt may precede it
    assert m is not None, line
    assert m.group("version") == "1.0.0" and m.group("boot_count") == "1"
    assert profile.reset_causes[m.group("reset_cause")] == meaning
