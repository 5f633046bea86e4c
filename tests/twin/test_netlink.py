"""The board's clean MQTT disconnect: DISCONNECT only after whole packets, else an unclean close.

paho is stood in for by a client that owns a real socket pair and writes what a test tells it to; the
broker's end is the other socket, read until the board closes.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest

from harness.twin.events import NetDisconnect
from harness.twin.netlink import DISCONNECT_PACKET, FLUSH_ATTEMPTS, MqttLink

PARTIAL_PUBLISH = b"\x32\x7f" + b"\x00" * 10  # a PUBLISH that says 127 bytes follow; 10 did


class Writer:
    """What the link needs of a paho client: its socket, whether it wants to write, a write step."""

    def __init__(self, sock: socket.socket, chunks: list[bytes], stuck: bool) -> None:
        self.sock, self.chunks, self.stuck = sock, chunks, stuck
        self.writes = 0

    def socket(self) -> socket.socket:
        return self.sock

    def want_write(self) -> bool:
        return self.stuck or bool(self.chunks)

    def loop_write(self) -> None:
        self.writes += 1
        if self.chunks:
            self.sock.send(self.chunks.pop(0))


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def disconnect(loop: asyncio.AbstractEventLoop, chunks: list[bytes], *, stuck: bool) -> tuple[bytes, Writer]:
    board, broker = socket.socketpair()
    board.setblocking(False)
    link = MqttLink(loop, lambda event: None)
    writer = Writer(board, chunks, stuck)
    link.client, link.conn = writer, 1  # type: ignore[assignment]
    link.execute(NetDisconnect(1, clean=True))
    broker.settimeout(2.0)
    received = b""
    while chunk := broker.recv(4096):
        received += chunk
    broker.close()
    board.close()
    return received, writer


def test_a_clean_disconnect_follows_the_last_whole_packet(loop: asyncio.AbstractEventLoop) -> None:
    received, writer = disconnect(loop, [b"\x40\x02\x00\x01"], stuck=False)  # a PUBACK still queued
    assert received == b"\x40\x02\x00\x01" + DISCONNECT_PACKET
    assert writer.writes == 1


def test_a_packet_paho_could_not_finish_gets_no_disconnect_appended(loop: asyncio.AbstractEventLoop) -> None:
    """A DISCONNECT after half a PUBLISH would be read as the rest of that PUBLISH: close uncleanly."""
    received, writer = disconnect(loop, [PARTIAL_PUBLISH], stuck=True)
    assert received == PARTIAL_PUBLISH
    assert writer.writes == FLUSH_ATTEMPTS
