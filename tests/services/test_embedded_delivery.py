"""The embedded broker delivers every message a client published before its DISCONNECT, in order.

amqtt's own broker drops the messages it acknowledged but had not delivered yet when the DISCONNECT
is read (a device that reports, then reboots, loses its last reports). A topic plugin that takes
20 ms per message makes the broker's delivery fall behind the client, so the DISCONNECT always
arrives with messages still queued.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

pytest.importorskip("amqtt")

from amqtt.broker import Broker  # type: ignore[import-untyped,unused-ignore]

from harness.services.broker import free_port
from harness.services.embedded_delivery import DeliveringBroker

from .slow_topics import DELAY
from .test_broker import _packet, _text

COUNT = 10


def _config(port: int) -> dict[str, Any]:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}", "max_connections": 0}},
        "plugins": {
            "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
            "tests.services.slow_topics.SlowTopicCheck": {},
        },
    }


class BrokerThread:
    """An amqtt broker class run on its own event loop in a thread, on a free loopback port."""

    def __init__(self, cls: type) -> None:
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

        async def start() -> Any:  # built on its loop: amqtt makes its futures at construction
            broker = cls(_config(self.port))
            await broker.start()
            return broker

        self.broker = asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)

    def close(self) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self.broker.shutdown(), self.loop).result(10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


def _raw_client(port: int, client_id: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(_packet(0x10, _text("MQTT") + bytes([4, 0x02, 0, 60]) + _text(client_id)))
    assert sock.recv(4)[:1] == b"\x20", "no CONNACK"
    return sock


class Watcher:
    """A paho subscriber on ``d/t`` (QoS 1), collecting payloads in order."""

    def __init__(self, port: int) -> None:
        self.got: list[bytes] = []
        self.cond = threading.Condition()
        subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="watcher")
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()
        self.client.subscribe("d/t", qos=1)
        if not subscribed.wait(10):
            self.close()
            raise AssertionError("no SUBACK from the broker")

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self.cond:
            self.got.append(bytes(msg.payload))
            self.cond.notify_all()

    def wait(self, count: int, timeout: float) -> list[bytes]:
        with self.cond:
            self.cond.wait_for(lambda: len(self.got) >= count, timeout=timeout)
            return list(self.got)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _publish_then_disconnect(port: int, wait: float) -> list[bytes]:
    """A device publishes COUNT reports (QoS 1, retained), reads their PUBACKs, then DISCONNECTs at
    once, as the twin does before a reboot. What a subscriber got."""
    watcher = Watcher(port)
    try:
        with _raw_client(port, "device") as dev:
            dev.sendall(b"".join(_packet(0x33, _text("d/t") + (i + 1).to_bytes(2, "big") + f"r{i}".encode())
                                 for i in range(COUNT)))  # fmt: skip
            acks = b""
            while acks.count(b"\x40\x02") < COUNT:
                chunk = dev.recv(4096)
                assert chunk, "the broker closed before acknowledging every report"
                acks += chunk
            dev.sendall(b"\xe0\x00")
            dev.shutdown(socket.SHUT_WR)
            b"".join(iter(lambda: dev.recv(4096), b""))  # read until the broker closes its side
        return watcher.wait(COUNT, timeout=wait)
    finally:
        watcher.close()


@pytest.fixture
def delivering() -> Iterator[BrokerThread]:
    started = BrokerThread(DeliveringBroker)
    yield started
    started.close()


def test_every_acknowledged_message_is_delivered_after_a_disconnect(delivering: BrokerThread) -> None:
    assert _publish_then_disconnect(delivering.port, wait=COUNT * DELAY + 10) == [f"r{i}".encode() for i in range(COUNT)]


def test_amqtt_alone_drops_them_so_the_test_above_can_fail() -> None:
    """The upstream behaviour this module works around (when amqtt fixes it, this test says so)."""
    plain = BrokerThread(Broker)
    try:
        got = _publish_then_disconnect(plain.port, wait=COUNT * DELAY + 2)
    finally:
        plain.close()
    assert got != [f"r{i}".encode() for i in range(COUNT)], "amqtt now delivers them itself: drop DeliveringBroker"
