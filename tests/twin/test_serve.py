"""The twin as a process: plain pyserial on its pty, plain pyvisa on its SCPI port, real power cuts."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import pyvisa
import serial

from harness.twin.records import CONFIG_MAGIC, decode_record

from .console import command, read_quiet, read_until
from .served import ServedTwin, alive, descendants, stop_served

Serve = Callable[..., ServedTwin]


@pytest.fixture
def visa() -> Iterator[pyvisa.ResourceManager]:
    """pyvisa's manager, shared by the whole process: at the end close only the sessions this test opened.

    Closing the manager itself would close every session opened through it, other tests' included.
    """
    manager = pyvisa.ResourceManager("@py")
    before = set(manager.list_opened_resources())
    try:
        yield manager
    finally:
        for resource in set(manager.list_opened_resources()) - before:
            resource.close()


def open_supply(manager: pyvisa.ResourceManager, twin: ServedTwin) -> pyvisa.resources.MessageBasedResource:
    resource = manager.open_resource(twin.scpi, read_termination="\n", write_termination="\n", timeout=15000)
    assert isinstance(resource, pyvisa.resources.MessageBasedResource)
    return resource


@pytest.fixture
def console_of() -> Iterator[Callable[[ServedTwin], serial.Serial]]:
    ports: list[serial.Serial] = []

    def open_console(twin: ServedTwin) -> serial.Serial:
        port = serial.Serial(twin.console, baudrate=115200, timeout=0.2)
        ports.append(port)
        return port

    yield open_console
    for port in ports:
        port.close()


def power_on_and_boot(supply: pyvisa.resources.MessageBasedResource, port: serial.Serial) -> str:
    supply.write("OUTP ON")
    return read_until(port, b"BOOT-DONE\r\ntwin> ").decode()


def test_ready_line_describes_the_rig(serve: Serve, tmp_path: Path) -> None:
    twin = serve()
    ready = twin.ready
    assert re.fullmatch(r"/dev/pts/\d+", str(ready["console"]))
    assert ready["scpi"] == f"TCPIP::127.0.0.1::{ready['scpi_port']}::SOCKET"
    assert ready["scpi_host"] == "127.0.0.1"
    assert ready["channel"] == 1
    assert ready["pid"] == twin.process.pid
    assert Path(str(ready["flash"])) == (tmp_path / "flash.bin").resolve()
    assert (tmp_path / "flash.bin").stat().st_size == 4 * 4096 + 2 * 512 * 4096


@pytest.mark.parametrize(
    ("signum", "group"),
    [(signal.SIGTERM, False), (signal.SIGINT, False), (signal.SIGTERM, True), (signal.SIGINT, True)],
)
def test_signal_stops_rig_and_children_and_removes_temporary_flash(
    serve: Serve, signum: signal.Signals, group: bool
) -> None:
    twin = serve(flash=False)
    flash = Path(str(twin.ready["flash"]))
    children = descendants(twin.process.pid)
    assert flash.exists()
    assert len(children) == 2, f"expected board host + board process, found {children}"
    stop_served(twin, signum, group=group)
    assert not any(alive(pid) for pid in children)
    assert not flash.exists()


def test_pyvisa_client_talks_to_the_supply(serve: Serve, visa: pyvisa.ResourceManager, console_of) -> None:
    twin = serve("--power", "off")
    port = console_of(twin)
    supply = open_supply(visa, twin)
    assert supply.query("*IDN?") == "TWIN-LABS,TWIN-PSU3,TWIN-0001,1.0"
    supply.write("NOT:A:COMMAND")
    assert supply.query("SYST:ERR?") == '-113,"Undefined header"'
    assert supply.query("SYST:ERR?") == '0,"No error"'
    assert supply.query("OUTP?;MEAS:CURR?") == "0;0.0000"
    power_on_and_boot(supply, port)
    assert supply.query("OUTP?") == "1"
    assert supply.query("MEAS:VOLT?") == "3.3000"
    idle = float(supply.query("MEAS:CURR?"))
    assert 0.02 < idle < 0.05
    supply.write("OUTP OFF")
    assert supply.query("OUTP?;MEAS:CURR?;MEAS:VOLT?") == "0;0.0000;0.0000"
    supply.close()


def test_serial_client_sees_boot_and_command_replies(serve: Serve, visa, console_of) -> None:
    twin = serve("--power", "off")
    port = console_of(twin)
    supply = open_supply(visa, twin)
    boot = power_on_and_boot(supply, port)
    assert re.search(r"BOOT slot=A fw=1\.0\.0 boot_count=1 reset_cause=power-on\r\n", boot)
    assert command(port, "version")[0].startswith("fw 1.0.0 slot=A build=")
    status = json.loads(command(port, "status")[0])
    assert {"uptime", "heap_free", "boot_id", "slot", "fw_version", "boot_count", "reset_cause"} <= set(status)
    assert command(port, "bogus") == ["ERR unknown command: bogus (try 'help')"]
    assert command(port, "config set wifi.ssid lab 3") == ["OK"]
    port.write(b"reboot\r")
    again = read_until(port, b"BOOT-DONE\r\ntwin> ").decode()
    assert "boot_count=2 reset_cause=software" in again
    assert command(port, "config get wifi.ssid") == ["wifi.ssid=lab 3"]
    supply.close()


def test_power_off_mid_dump_then_boot_back(serve: Serve, visa, console_of) -> None:
    twin = serve("--power", "off")
    port = console_of(twin)
    supply = open_supply(visa, twin)
    power_on_and_boot(supply, port)
    port.write(b"dump 8000000\r")
    streamed = read_until(port, b"00001000 ")
    assert float(supply.query("MEAS:CURR?")) > 0.1  # busy draws more than idle
    supply.write("OUTP OFF")
    assert supply.query("OUTP?") == "0"
    tail = read_quiet(port)
    assert b"DUMP-END" not in streamed + tail
    port.write(b"version\r")  # a dead board hears nothing
    assert read_quiet(port) == b""
    boot = power_on_and_boot(supply, port)
    assert "boot_count=2 reset_cause=power-on" in boot
    assert "version" not in boot
    assert command(port, "dump 640")[-1].startswith("DUMP-END lines=10 bytes=640 crc32=")
    supply.close()


def test_power_cuts_during_config_writes_never_brick_the_device(serve: Serve, visa, console_of) -> None:
    twin = serve("--power", "off")
    port = console_of(twin)
    supply = open_supply(visa, twin)
    power_on_and_boot(supply, port)
    written: list[str] = []
    for cycle in range(12):
        value = f"v{cycle}-" + "x" * (40 * cycle)
        written.append(value)
        port.write(f"config set key {value}\r".encode())
        if cycle % 2:
            read_until(port, b"config set key")  # the board is executing the command right now
        supply.write("OUTP OFF;OUTP ON")
        boot = read_until(port, b"BOOT-DONE\r\ntwin> ").decode()
        assert f"boot_count={cycle + 2} " in boot
        reply = command(port, "config get key")
        assert reply == ["ERR config key not set: key"] or reply[0].removeprefix("key=") in written, reply
    supply.close()


def test_brownout_kills_and_recovery_boots(serve: Serve, visa, console_of) -> None:
    twin = serve("--power", "off")
    port = console_of(twin)
    supply = open_supply(visa, twin)
    power_on_and_boot(supply, port)
    supply.write("VOLT 2.5")
    assert supply.query("MEAS:CURR?") == "0.0000"
    assert supply.query("MEAS:VOLT?") == "2.5000"
    supply.write("VOLT 3.3")
    boot = read_until(port, b"BOOT-DONE\r\ntwin> ").decode()
    assert "reset_cause=brownout" in boot
    supply.close()


def torn_config_copies(flash: Path) -> int:
    """How many of the two config copies start like a record but fail their CRC (a torn write)."""
    data = flash.read_bytes()
    copies = [data[offset : offset + 4096] for offset in (2 * 4096, 3 * 4096)]
    return sum(copy[:4] == CONFIG_MAGIC and decode_record(CONFIG_MAGIC, copy) is None for copy in copies)


def test_power_cut_mid_program_tears_a_copy_and_keeps_a_config(serve: Serve, visa, console_of) -> None:
    twin = serve("--power", "off", "--flash-program-time", "8ms")
    port = console_of(twin)
    supply = open_supply(visa, twin)
    power_on_and_boot(supply, port)
    for i in range(12):  # a config record of about 1.6 KB: seven program units, 56 ms per write
        assert command(port, f"config set pad{i:02d} {'p' * 120}") == ["OK"]
    assert command(port, "config set key old") == ["OK"]
    allowed = {"key=old"}
    torn = 0
    for attempt in range(12):
        port.write(f"config set key new{attempt}\r".encode())
        read_until(port, f"config set key new{attempt}\r\n".encode())
        allowed.add(f"key=new{attempt}")
        time.sleep((0.01, 0.025, 0.04)[attempt % 3])  # cut this far into the seven-unit write
        supply.write("OUTP OFF")
        torn += torn_config_copies(Path(str(twin.ready["flash"])))
        power_on_and_boot(supply, port)
        assert command(port, "config get key")[0] in allowed
        assert command(port, "config get pad11") == [f"pad11={'p' * 120}"]
        if torn:
            break
    assert torn, "no power cut landed inside a multi-unit config write in 12 attempts"
    supply.close()


@pytest.mark.parametrize(
    ("off", "on"),
    [
        (":OUTP CH1,OFF", ":OUTP CH1,ON"),
        ("OUTP OFF,(@1)", "OUTP ON,(@1)"),
        ("*RST", ":APPL CH1,3.3,0.5;OUTP ON"),
    ],
)
def test_dialect_forms_switch_the_board(serve: Serve, visa, console_of, off: str, on: str) -> None:
    twin = serve("--power", "off")
    port = console_of(twin)
    supply = open_supply(visa, twin)
    power_on_and_boot(supply, port)
    supply.write(off)
    assert supply.query(":OUTP? CH1") == "OFF"
    supply.write(on)
    assert "reset_cause=power-on" in read_until(port, b"BOOT-DONE\r\ntwin> ").decode()
    assert supply.query("SYST:ERR?") == '0,"No error"'
    supply.close()


def test_other_channel_wiring_and_shared_error_queue(serve: Serve, visa, console_of) -> None:
    twin = serve("--power", "off", "--channel", "2")
    port = console_of(twin)
    first, second = open_supply(visa, twin), open_supply(visa, twin)
    first.write("OUTP ON,(@1)")
    assert first.query("MEAS:CURR? (@1)") == "0.0000"
    second.write(":OUTP CH2,ON")
    read_until(port, b"BOOT-DONE\r\ntwin> ")
    first.write("BOGUS")
    assert second.query("SYST:ERR?") == '-113,"Undefined header"'
    first.close()
    second.close()


def test_flash_file_outlives_the_rig(serve: Serve, visa, console_of, tmp_path: Path) -> None:
    first = serve("--power", "off")
    port = console_of(first)
    supply = open_supply(visa, first)
    power_on_and_boot(supply, port)
    assert command(port, "config set site lab-3") == ["OK"]
    supply.close()
    port.close()
    stop_served(first)
    second = serve("--power", "off")
    port = console_of(second)
    supply = open_supply(visa, second)
    assert "boot_count=2 reset_cause=power-on" in power_on_and_boot(supply, port)
    assert command(port, "config get site") == ["site=lab-3"]
    supply.close()


def test_unbootable_flash_halts_and_draws_little(serve: Serve, visa, console_of, tmp_path: Path) -> None:
    flash = tmp_path / "flash.bin"
    stop_served(serve("--power", "off", "--slot-pages", "96"))
    with flash.open("r+b") as handle:  # break slot A's payload; slot B was never programmed
        handle.seek(4 * 4096 + 5000)
        handle.write(b"\x00" * 16)
    twin = serve("--power", "off", "--slot-pages", "96")
    port = console_of(twin)
    supply = open_supply(visa, twin)
    supply.write("OUTP ON")
    line = read_until(port, b"halting\r\n").decode().splitlines()[-1]
    assert line == "BOOT no bootable image (slot A: payload hash mismatch; slot B: slot is erased); halting"
    assert 0.005 < float(supply.query("MEAS:CURR?")) < 0.02
    supply.close()


def run_serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.twin", "serve", *args], capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--boot-time", "soon"], "argument --boot-time: expected a duration like 50ms or 0.2s (got 'soon')"),
        (["--slot-pages", "0"], "argument --slot-pages: expected an integer >= 1 (got '0')"),
        (["--channel", "4"], "argument --channel: expected a supply channel 1, 2 or 3 (got '4')"),
        (["--power", "maybe"], "argument --power: invalid choice: 'maybe'"),
        (["--device-id", "a,b"], "argument --device-id: expected 1-32 of A-Z a-z 0-9 . _ - (got 'a,b')"),
        (["--seed", "x"], "argument --seed: invalid int value: 'x'"),
        (["--scpi-port", "70000"], "argument --scpi-port: expected a TCP port 0..65535"),
    ],
)
def test_bad_arguments_are_one_line(args: list[str], needle: str) -> None:
    result = run_serve(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert needle in result.stderr


def test_flash_of_the_wrong_size_is_one_line(tmp_path: Path) -> None:
    flash = tmp_path / "odd.bin"
    flash.write_bytes(b"\xff" * 100)
    result = run_serve("--flash", str(flash))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"harness twin serve: error: flash: {flash} is 100 bytes; --slot-pages 512 needs 4210688 "
        "(delete it or pass the slot size it was made with)"
    ]


def test_board_host_import_path_stays_light() -> None:
    probe = "import sys, harness.twin.child; print(sorted({'pandas', 'numpy', 'pyvisa', 'serial'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[]", result.stderr
