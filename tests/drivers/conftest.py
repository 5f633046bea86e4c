"""Fixtures for the driver tests: fake devices on a pty and on loopback TCP, cleaned up always."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from drivers_fakes import FakeSupply, PtyDevice, TcpServer, scpi_handler, serve_shell

from tests.twin.served import ServedTwin, start_served, stop_served


@pytest.fixture
def pty_device() -> Iterator[PtyDevice]:
    device = PtyDevice().start()
    try:
        yield device
    finally:
        device.stop()


@pytest.fixture
def tcp_shell() -> Iterator[TcpServer]:
    server = TcpServer(serve_shell)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fake_supply() -> Iterator[tuple[FakeSupply, str]]:
    supply = FakeSupply()
    server = TcpServer(scpi_handler(supply))
    try:
        yield supply, f"TCPIP::127.0.0.1::{server.port}::SOCKET"
    finally:
        server.stop()


@pytest.fixture
def twin(tmp_path: Path) -> Iterator[ServedTwin]:
    """The twin's rig, started powered off so the test sees the boot from the first byte.

    Stopped at the end with the twin tests' own helper, which asserts that the rig and every process
    it started are gone.
    """
    served = start_served(tmp_path, ["--power", "off"])
    try:
        yield served
    finally:
        stop_served(served)
