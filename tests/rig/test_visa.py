"""VISA resource strings and console URLs are checked for syntax when a rig file is read."""

from __future__ import annotations

import pytest

from harness.errors import ConfigError
from harness.rig.spec import RigSpec
from harness.rig.visa import resource_problem
from harness.yamlfile import parse_yaml, validate

GOOD = [
    "TCPIP::127.0.0.1::5025::SOCKET", "TCPIP0::lab3-psu.example::5025::SOCKET", "tcpip::psu::80::socket",
    "TCPIP::10.0.0.5::INSTR", "TCPIP0::10.0.0.5::inst0::INSTR", "TCPIP::psu::hislip0,4880::INSTR", "TCPIP::psu",
    "GPIB::12", "GPIB0::12::INSTR", "GPIB1::3::96::INSTR", "GPIB0::INTFC",
    "ASRL1::INSTR", "ASRL/dev/ttyUSB1::INSTR", "ASRLCOM3", "USB0::0x1AB1::0x0E11::DP8C1234::INSTR",
    "USB::6833::3601::DP8C1234", "USB0::0x1AB1::0x0E11::DP8C1234::0::INSTR", "USB0::0x1AB1::0x0E11::X::RAW",
]
BAD = [
    ("TCPIP::nohost::::SOCKET", "with a port 1-65535: the port is empty"),
    ("TCPIP::psu::99999::SOCKET", "with a port 1-65535"),
    ("TCPIP::psu::SOCKET", "expected TCPIP::host::port::SOCKET"),
    ("TCPIP::::5025::SOCKET", "the host is empty"),
    ("TCPIPx::psu::INSTR", "expected a board number after TCPIP"),
    ("GPIB::abc", "with a primary address 0-30"),
    ("GPIB0::31::INSTR", "with a primary address 0-30"),
    ("GPIB0::1::50::INSTR", "secondary address 0-30 or 96-126"),
    ("ASRL::INSTR", "the port is empty"),
    ("USB0::0x1AB1::INSTR", "expected USB[board]::vendor id::model code::serial number"),
    ("USB0::rigol::dp832::X::INSTR", "as numbers such as 0x1AB1"),
    ("psu.example:5025", "expected a VISA resource such as"),
    ("", "expected a VISA resource such as"),
]


@pytest.mark.parametrize("resource", GOOD)
def test_well_formed_resources_pass(resource: str) -> None:
    assert resource_problem(resource) is None


@pytest.mark.parametrize(("resource", "expected"), BAD, ids=[r or "empty" for r, _ in BAD])
def test_malformed_resources_say_what_form_was_expected(resource: str, expected: str) -> None:
    problem = resource_problem(resource)
    assert problem is not None and expected in problem, problem
    assert problem.endswith(f"got {resource!r}")


def _rig(text: str) -> RigSpec:
    return validate(parse_yaml(text, "lab3.yaml"), RigSpec)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: b\nconsole: {url: /dev/ttyUSB0}\npower:\n  resource: TCPIP::nohost::::SOCKET\n",
         "lab3.yaml:4:13: power.resource: expected TCPIP::host::port::SOCKET with a port 1-65535: the port is empty, "
         "got 'TCPIP::nohost::::SOCKET'"),
        ("name: b\nconsole: {url: /dev/ttyUSB0}\npower: {resource: 'GPIB::abc'}\n",
         "lab3.yaml:3:19: power.resource: expected GPIB[board]::primary address::INSTR with a primary address 0-30"),
        ("name: b\npower: {resource: 'TCPIP::psu::5025::SOCKET'}\n",
         "lab3.yaml:1:1: console: a board rig needs a console (console.url: a pyserial URL"),
        ("name: b\ndescription: nothing else\n", "lab3.yaml:1:1: console: a board rig needs a console"),
        ("name: b\nconsole: {url: 'rfc2217://lab3-console'}\n",
         "lab3.yaml:2:16: console.url: expected rfc2217://host:port with a port 1-65535"),
        ("name: b\nconsole: {url: 'telnet://lab3:23'}\n", "lab3.yaml:2:16: console.url: expected a pyserial URL scheme"),
    ],
)
def test_a_bench_needs_a_console_and_well_formed_endpoints(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        _rig(text)
    assert str(info.value).startswith(expected), str(info.value)


def test_every_problem_of_a_rig_file_is_listed() -> None:
    text = ("name: b\ntwin:\n  devce_id: x\nconsole: {url: 'rfc2217://host'}\npower:\n"
            "  resource: GPIB::abc\n  dialekt: generic\nservices:\n  tls: {ca_crt: x}\n")
    with pytest.raises(ConfigError) as info:
        _rig(text)
    fields = [p.location.field for p in info.value.problems if p.location]
    assert fields == ["twin.devce_id", "console.url", "power.resource", "power.dialekt", "services.tls.ca_crt"]
    assert len(str(info.value).splitlines()) == 5


def test_well_formed_benches_still_load() -> None:
    spec = _rig("name: b\nconsole: {url: 'socket://127.0.0.1:4001'}\npower: {resource: 'USB0::0x1AB1::0x0E11::X::INSTR'}\n")
    assert spec.capabilities() == {"console", "power"}
