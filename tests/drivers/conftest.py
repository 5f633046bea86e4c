"""Fixtures for the driver tests: fake devices on a pty and on loopback TCP, cleaned up always."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from drivers_fakes import FakeSupply, PtyDevice, TcpServer, scpi_handler, serve_shell
from drivers_twin import TwinProcess, start_twin, stop_twin


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


def _twin_available() -> bool:
    import harness.twin

    return (Path(harness.twin.__file__).parent / "serve.py").exists()


@pytest.fixture
def twin(tmp_path: Path) -> Iterator[TwinProcess]:
    """The twin's rig, started powered off so the test sees the boot from the first byte."""
    if not _twin_available():
        pytest.skip("the twin (harness/twin/serve.py) is not in this tree yet")
    process = start_twin(tmp_path, "--power", "off")
    try:
        yield process
    finally:
        stop_twin(process.proc)
    assert process.proc.poll() is not None, "twin rig still running after stop"
    pids = [int(process.ready.get("pid", process.proc.pid))]
    pids += [int(pid) for pid in re.findall(r"board pid (\d+)", process.stderr_tail(10000))]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(pid, 0)
            pytest.fail(f"twin process {pid} still exists after stop")
