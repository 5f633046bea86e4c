"""Console and SCPI clients for the runtime tests: plain pyserial and plain pyvisa, no harness code."""

from __future__ import annotations

import time

import serial

DEFAULT_TIMEOUT = 15.0


def read_until(port: serial.Serial, marker: bytes, timeout: float = DEFAULT_TIMEOUT) -> bytes:
    """Read until ``marker`` appears; on timeout say what was awaited, for how long, and the last output."""
    deadline = time.monotonic() + timeout
    data = bytearray()
    while marker not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(
                f"waited {timeout:g} s for {marker!r} on the console; last output: {bytes(data[-300:])!r}"
            )
        port.timeout = min(remaining, 0.2)
        data += port.read(max(1, port.in_waiting))
    return bytes(data)


def read_quiet(port: serial.Serial, quiet: float = 0.3, limit: float = DEFAULT_TIMEOUT) -> bytes:
    """Read until the console has been silent for ``quiet`` seconds (at most ``limit`` seconds)."""
    deadline = time.monotonic() + limit
    data = bytearray()
    port.timeout = quiet
    while time.monotonic() < deadline:
        chunk = port.read(max(1, port.in_waiting))
        if not chunk:
            return bytes(data)
        data += chunk
    raise AssertionError(f"console never went quiet for {quiet} s within {limit} s; last: {bytes(data[-200:])!r}")


def command(port: serial.Serial, line: str, timeout: float = DEFAULT_TIMEOUT) -> list[str]:
    """Send ``line``; return its reply lines (echo and prompt stripped)."""
    port.write(line.encode() + b"\r")
    text = read_until(port, b"\r\ntwin> ", timeout).decode()
    echo_at = text.index(line + "\r\n")
    body = text[echo_at + len(line) + 2 : -len("twin> ")]
    return body.split("\r\n")[:-1]
