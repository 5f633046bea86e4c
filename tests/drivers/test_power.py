"""The power driver against a fake SCPI supply on loopback: dialects, error queue, journal, errors."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
from drivers_fakes import FakeSupply

from harness.drivers.power import Measurement, PowerSupply
from harness.drivers.scpi_dialects import DIALECTS
from harness.errors import ConfigError, InstrumentError, PowerError
from harness.run.journal import Journal, read_journal


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_every_dialect_drives_the_channel(fake_supply: tuple[FakeSupply, str], dialect: str) -> None:
    supply, resource = fake_supply
    with PowerSupply(resource, dialect=dialect, channel=2) as psu:
        assert psu.identify().startswith("FAKE,PSU-3")
        psu.set(3.3, 0.5)
        assert (supply.volts[2], supply.amps[2]) == (3.3, 0.5)
        assert supply.output[1] is False
        psu.on()
        assert supply.output[2] is True and supply.output[1] is False
        assert psu.is_on() is True
        assert psu.measure() == Measurement(3.3, 0.05)
        psu.off()
        assert psu.is_on() is False
        assert psu.measure() == Measurement(0.0, 0.0)


def test_error_queue_is_drained_into_instrument_error(fake_supply: tuple[FakeSupply, str]) -> None:
    supply, resource = fake_supply
    with PowerSupply(resource, dialect="keysight-e36300", name="bench-psu") as psu:
        supply.errors.append((-410, "Query INTERRUPTED"))
        with pytest.raises(InstrumentError) as info:
            psu.set(45.0, 0.5)
        err = info.value
        assert err.command == "VOLT 45,(@1)"
        assert "bench-psu" in err.instrument and resource in err.instrument
        assert err.errors == [(-410, "Query INTERRUPTED"), (-222, "Data out of range")]
        assert not supply.errors
        psu.set(5.0, 0.5)  # the queue is empty again: the next command is fine


def test_unknown_command_in_a_dialect_surfaces_as_instrument_error(fake_supply: tuple[FakeSupply, str]) -> None:
    _, resource = fake_supply
    with PowerSupply(resource) as psu, pytest.raises(InstrumentError, match=re.escape("rejected 'BOGUS'")):
        psu._do("BOGUS")


def test_every_action_is_journaled(fake_supply: tuple[FakeSupply, str], tmp_path: Path) -> None:
    _, resource = fake_supply
    journal = Journal(tmp_path / "journal.jsonl")
    try:
        with PowerSupply(resource, dialect="rigol-dp800", channel=3, name="psu1", journal=journal) as psu:
            psu.set(3.3, 0.5)
            psu.on()
            psu.off()
            psu.cycle(off_for=0.05)
    finally:
        journal.close()
    records = [r for r in read_journal(tmp_path / "journal.jsonl") if r["kind"] == "power"]
    assert [r["action"] for r in records] == ["set", "on", "off", "cycle"]
    assert all(r["channel"] == 3 and r["source"] == "psu1" for r in records)
    assert (records[0]["volts"], records[0]["amps"]) == (3.3, 0.5)
    assert records[3]["off_for"] == 0.05 and records[3]["actual_off"] >= 0.05


def test_cycle_leaves_the_output_on(fake_supply: tuple[FakeSupply, str]) -> None:
    supply, resource = fake_supply
    with PowerSupply(resource) as psu:
        psu.cycle(off_for=0.0)
        assert supply.output[1] is True
        assert supply.log.count("OUTP OFF") == 1


def test_initial_voltage_and_limit_are_applied_on_open(fake_supply: tuple[FakeSupply, str]) -> None:
    supply, resource = fake_supply
    with PowerSupply(resource, voltage=5.0, current_limit=1.0) as psu:
        assert psu.idn.startswith("FAKE")
        assert (supply.volts[1], supply.amps[1]) == (5.0, 1.0)


def test_unreachable_resource_is_power_error_with_resource_and_hint() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    resource = f"TCPIP::127.0.0.1::{port}::SOCKET"
    with pytest.raises(PowerError) as info:
        PowerSupply(resource, timeout=2).open()
    assert resource in str(info.value) and "reachable" in str(info.value)
    assert not isinstance(info.value, InstrumentError)


def test_malformed_resource_is_power_error() -> None:
    with pytest.raises(PowerError, match="cannot open NOT-A-RESOURCE"):
        PowerSupply("NOT-A-RESOURCE", timeout=1).open()


def test_silent_instrument_times_out_as_power_error(fake_supply: tuple[FakeSupply, str]) -> None:
    _, resource = fake_supply
    with PowerSupply(resource, timeout=0.5) as psu, pytest.raises(PowerError, match=r"timeout 0.5s"):
        psu._query("NOANSWER?")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"dialect": "nope"}, "power dialect"),
        ({"channel": 3, "dialect": "siglent-spd3303"}, "power channel"),
        ({"voltage": 3.3}, "power voltage/current_limit"),
    ],
)
def test_bad_configuration_is_one_clear_config_error(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        PowerSupply("TCPIP::127.0.0.1::1::SOCKET", **kwargs)  # type: ignore[arg-type]


def test_use_before_open_is_a_clear_error() -> None:
    with pytest.raises(PowerError, match="is not open"):
        PowerSupply("TCPIP::127.0.0.1::1::SOCKET").on()


def test_closing_one_supply_leaves_others_working(fake_supply: tuple[FakeSupply, str]) -> None:
    _, resource = fake_supply
    with PowerSupply(resource, name="a") as first:
        with PowerSupply(resource, name="b"):
            pass
        assert first.identify().startswith("FAKE")
