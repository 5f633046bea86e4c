"""Fixtures for the impairment point's tests: a started point, loopback echo/sink servers, a journal.

Every server binds 127.0.0.1 port 0 and every fixture closes its sockets and joins its threads in
its finalizer, so a failing test leaves nothing behind.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.drivers.netem import ImpairmentPoint
from harness.run.journal import Journal

from .helpers import IO_TIMEOUT, TcpServer, UdpEcho


@pytest.fixture
def echo_server() -> Iterator[TcpServer]:
    server = TcpServer("echo")
    yield server
    server.close()


@pytest.fixture
def sink_server() -> Iterator[TcpServer]:
    server = TcpServer("sink")
    yield server
    server.close()


@pytest.fixture
def udp_echo() -> Iterator[UdpEcho]:
    server = UdpEcho()
    yield server
    server.close()


@pytest.fixture
def udp_sink() -> Iterator[UdpEcho]:
    server = UdpEcho(echo=False)
    yield server
    server.close()


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    j = Journal(tmp_path / "journal.jsonl")
    yield j
    j.close()


@pytest.fixture
def point(journal: Journal) -> Iterator[ImpairmentPoint]:
    p = ImpairmentPoint(journal, seed=1234, stats_interval=None).start()
    yield p
    p.stop()


@pytest.fixture
def client_factory() -> Iterator[object]:
    """``connect((host, port))`` -> a socket with a timeout, closed at teardown."""
    opened: list[socket.socket] = []

    def connect(address: tuple[str, int]) -> socket.socket:
        sock = socket.create_connection(address, timeout=IO_TIMEOUT)
        opened.append(sock)
        return sock

    yield connect
    for sock in opened:
        sock.close()
