"""The drivers against the real twin: its pty console and its SCPI supply, as a board would be."""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator

import pytest

from harness.drivers.console import Console
from harness.drivers.power import PowerSupply
from harness.drivers.rfc2217_server import Rfc2217Server
from harness.drivers.scpi_dialects import DIALECTS
from harness.errors import ExpectTimeout, InstrumentError
from tests.twin.served import ServedTwin as TwinProcess

PROMPT = "twin> "
TWIN_DIALECTS = sorted(name for name in DIALECTS if name != "siglent-spd3303")  # the twin speaks three
DUMP_END = re.compile(r"DUMP-END lines=(\d+) bytes=(\d+) crc32=([0-9a-f]{8})\r\n")


@pytest.fixture
def twin_psu(twin: TwinProcess) -> Iterator[PowerSupply]:
    with PowerSupply(twin.scpi, channel=int(twin.ready["channel"])) as supply:
        yield supply


@pytest.fixture
def twin_console(twin: TwinProcess) -> Iterator[Console]:
    with Console(twin.console, prompt=PROMPT) as con:
        yield con


def boot(console: Console, psu: PowerSupply) -> None:
    psu.on()
    console.expect("BOOT-DONE", timeout=30)
    console.expect(PROMPT, timeout=30)


def verify_dump(text: str, match: re.Match[str]) -> int:
    """Check every numbered line and the CRC of a dump's body; return its line count."""
    lines, size, crc = int(match.group(1)), int(match.group(2)), match.group(3)
    body = text[text.index("00000000 ") :].encode()
    assert len(body) == size == 64 * lines
    numbers = [int(row[:8]) for row in body.split(b"\r\n")[:-1]]
    assert numbers == list(range(lines))
    assert f"{zlib.crc32(body):08x}" == crc
    return lines


def test_console_commands_on_the_twin(twin_console: Console, twin_psu: PowerSupply) -> None:
    boot(twin_console, twin_psu)
    assert twin_console.command("version", timeout=20).startswith("fw 1.0.0 slot=A")
    assert twin_console.command("no-such-thing", timeout=20).startswith("ERR unknown command: no-such-thing")


def test_multi_megabyte_dump_loses_nothing(twin_console: Console, twin_psu: PowerSupply) -> None:
    boot(twin_console, twin_psu)
    twin_console.sendline("dump 3000000")
    end = twin_console.expect(DUMP_END, timeout=120)
    assert verify_dump(twin_console.before, end) == 3000000 // 64
    assert twin_console.statistics()["discarded_chars"] == 0


def test_power_off_kills_and_on_boots_the_firmware(twin_console: Console, twin_psu: PowerSupply) -> None:
    boot(twin_console, twin_psu)
    twin_psu.off()
    assert twin_psu.is_on() is False
    assert twin_psu.measure().amps == 0.0
    with pytest.raises(ExpectTimeout):
        twin_console.command("version", timeout=1.0)
    mark = twin_console.mark()
    twin_psu.on()
    twin_console.expect("BOOT-DONE", timeout=30)
    assert "BOOT-DONE" in twin_console.lines_since(mark)
    twin_console.expect(PROMPT, timeout=30)
    assert twin_console.command("version", timeout=20).startswith("fw 1.0.0")


def test_cycle_reboots_the_firmware(twin_console: Console, twin_psu: PowerSupply) -> None:
    boot(twin_console, twin_psu)
    twin_psu.cycle(off_for=0.2)
    twin_console.expect("BOOT-DONE", timeout=30)


@pytest.mark.parametrize("dialect", TWIN_DIALECTS)
def test_every_twin_dialect(twin: TwinProcess, dialect: str) -> None:
    with PowerSupply(twin.scpi, dialect=dialect, channel=int(twin.ready["channel"])) as supply:
        assert supply.identify()
        supply.set(3.3, 0.5)
        supply.on()
        assert supply.is_on() is True
        assert supply.measure().volts == pytest.approx(3.3, abs=0.01)
        supply.off()
        assert supply.is_on() is False


def test_twin_error_queue_becomes_instrument_error(twin_psu: PowerSupply) -> None:
    with pytest.raises(InstrumentError) as info:
        twin_psu.set(1000.0, 0.5)
    assert info.value.command == "VOLT 1000"
    assert info.value.errors and info.value.errors[0][0] == -222
    assert twin_psu.resource in info.value.instrument


def test_console_through_rfc2217_forwarder_on_the_twin(twin: TwinProcess, twin_psu: PowerSupply) -> None:
    with Rfc2217Server(twin.console) as server, Console(server.url, prompt=PROMPT) as con:
        boot(con, twin_psu)
        assert con.command("version", timeout=20).startswith("fw 1.0.0")
        con.sendline("dump 256000")
        end = con.expect(DUMP_END, timeout=60)
        assert verify_dump(con.before, end) == 4000


def test_a_socket_supply_sends_each_command_at_once(twin_psu: PowerSupply) -> None:
    """Nagle's algorithm off on ``::SOCKET`` sessions: with it on, ``OUTP OFF`` after a query waited for a
    delayed ACK and a power cut landed ~40 ms late (bench/power.py measures it)."""
    import socket

    inst = twin_psu._inst
    sock = inst.visalib.sessions[inst.session].interface
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
