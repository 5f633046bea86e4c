"""VISA resource strings, checked for syntax before anything is opened.

The forms a power supply is reached by (VISA 5.0, section 4.3.1; case does not matter)::

    TCPIP[board]::host::port::SOCKET          raw SCPI over TCP (port 1-65535)
    TCPIP[board]::host[::LAN device][::INSTR] VXI-11 or HiSLIP (``inst0``, ``hislip0``, ``gpib0,2``)
    GPIB[board]::primary[::secondary][::INSTR] primary 0-30, secondary 0-30 or 96-126
    ASRL<port>[::INSTR]                      ``ASRL1::INSTR``, ``ASRL/dev/ttyUSB1::INSTR``, ``ASRLCOM3::INSTR``
    USB[board]::vendor::model::serial[::interface][::INSTR|::RAW]   vendor and model as 0x1AB1 or decimal

:func:`resource_problem` says what is wrong with a string, or ``None`` when it is well formed.
"""

from __future__ import annotations

import re

EXAMPLES = ("TCPIP::host::5025::SOCKET, TCPIP::host::INSTR, GPIB0::12::INSTR, ASRL/dev/ttyUSB1::INSTR "
            "or USB0::0x1AB1::0x0E11::SERIAL::INSTR")  # fmt: skip

_BOARD = re.compile(r"^(TCPIP|GPIB|ASRL|USB)(.*)$", re.IGNORECASE)
_NUMBER = re.compile(r"^(0[xX][0-9a-fA-F]{1,4}|\d{1,5})$")


def resource_problem(resource: str) -> str | None:
    """What is wrong with ``resource`` as a VISA resource string, or None."""
    parts = resource.split("::")
    head = _BOARD.match(parts[0])
    if head is None:
        return f"expected a VISA resource such as {EXAMPLES}, got {resource!r}"
    family, board = head.group(1).upper(), head.group(2)
    rest = parts[1:]
    if family != "ASRL" and board and not board.isdigit():
        return f"expected a board number after {family} (such as {family}0::...), got {resource!r}"
    check = {"TCPIP": _tcpip, "GPIB": _gpib, "ASRL": _asrl, "USB": _usb}[family]
    problem = check(board, rest)
    return f"{problem}, got {resource!r}" if problem else None


def _tcpip(board: str, rest: list[str]) -> str | None:
    if not rest or not rest[0]:
        return "expected TCPIP::host::port::SOCKET or TCPIP::host::INSTR: the host is empty"
    if rest[-1].upper() == "SOCKET":
        if len(rest) != 3:
            return "expected TCPIP::host::port::SOCKET (host, port, SOCKET)"
        port = rest[1]
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            return f"expected TCPIP::host::port::SOCKET with a port 1-65535{': the port is empty' if not port else ''}"
        return None
    fields = rest[:-1] if rest[-1].upper() == "INSTR" else rest
    if len(fields) > 2 or any(not f for f in fields):
        return "expected TCPIP::host[::LAN device]::INSTR (such as TCPIP::10.0.0.5::inst0::INSTR)"
    return None


def _gpib(board: str, rest: list[str]) -> str | None:
    fields = rest[:-1] if rest and rest[-1].upper() in {"INSTR", "INTFC"} else rest
    if rest and rest[-1].upper() == "INTFC":
        return None if not fields else "expected GPIB[board]::INTFC with nothing between"
    if not 1 <= len(fields) <= 2:
        return "expected GPIB[board]::primary address[::secondary address][::INSTR]"
    if not fields[0].isdigit() or not 0 <= int(fields[0]) <= 30:
        return "expected GPIB[board]::primary address::INSTR with a primary address 0-30"
    if len(fields) == 2 and not (fields[1].isdigit() and (int(fields[1]) <= 30 or 96 <= int(fields[1]) <= 126)):
        return "expected a GPIB secondary address 0-30 or 96-126"
    return None


def _asrl(board: str, rest: list[str]) -> str | None:
    if not board:
        return "expected ASRL<port>::INSTR (such as ASRL1::INSTR or ASRL/dev/ttyUSB1::INSTR): the port is empty"
    if rest and [r.upper() for r in rest] != ["INSTR"]:
        return "expected ASRL<port>::INSTR (nothing else after the port)"
    return None


def _usb(board: str, rest: list[str]) -> str | None:
    fields = rest[:-1] if rest and rest[-1].upper() in {"INSTR", "RAW"} else rest
    shape = "expected USB[board]::vendor id::model code::serial number[::interface]::INSTR"
    if not 3 <= len(fields) <= 4 or any(not f for f in fields):
        return shape
    if not _NUMBER.match(fields[0]) or not _NUMBER.match(fields[1]):
        return f"{shape} with the vendor id and model code as numbers such as 0x1AB1"
    if len(fields) == 4 and not fields[3].isdigit():
        return f"{shape} with a numeric interface"
    return None
