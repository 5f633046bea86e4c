"""Test scaffolding: a paho-mqtt publisher that speaks the device telemetry contract.

It stands in for a device (the twin or a real board) so the collector can be tested before the
twin publishes telemetry. It is a real MQTT client on a real broker; it only lets a test choose
``seq``, ``ts``, ``dropped`` and boots explicitly, to build exact loss patterns.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import paho.mqtt.client as mqtt

from harness.services.endpoint import BrokerEndpoint
from harness.services.mqtt_client import make_client


class DevicePublisher:
    """One simulated device publishing ``devices/<id>/telemetry`` and ``devices/<id>/status``."""

    def __init__(self, endpoint: BrokerEndpoint, device: str, *, timeout: float = 10.0) -> None:
        self.endpoint = endpoint
        self.device = device
        self.timeout = timeout
        self.boot_id = ""
        self.seq = 0
        self.dropped = 0
        self.published: list[dict[str, Any]] = []
        self._connected = threading.Event()
        self._closed = False
        self._client = make_client(endpoint, f"test-dev-{device}-{uuid.uuid4().hex[:6]}")
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.will_set(self.status_topic, json.dumps({"state": "offline", "reason": "lwt"}), 1, True)
        self._client.reconnect_delay_set(min_delay=1, max_delay=1)
        self.new_boot()

    @property
    def topic(self) -> str:
        return f"devices/{self.device}/telemetry"

    @property
    def status_topic(self) -> str:
        return f"devices/{self.device}/status"

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any = None) -> None:
        if not rc.is_failure:
            self._connected.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any = None) -> None:
        self._connected.clear()

    def connect(self) -> None:
        self._client.connect(self.endpoint.host, self.endpoint.port, keepalive=5)
        self._client.loop_start()
        self.wait_connected()
        self.publish_status("online")

    def wait_connected(self, timeout: float | None = None) -> None:
        limit = self.timeout if timeout is None else timeout
        if not self._connected.wait(limit):
            raise TimeoutError(f"publisher {self.device} not connected to {self.endpoint.url} after {limit:g}s")

    def new_boot(self) -> str:
        """A new boot: fresh boot_id, seq restarts at 1, dropped counter at 0."""
        self.boot_id = uuid.uuid4().hex[:12]
        self.seq = 0
        self.dropped = 0
        return self.boot_id

    def message(self, **overrides: Any) -> dict[str, Any]:
        """The next telemetry message (advances seq) without publishing it."""
        self.seq += 1
        msg: dict[str, Any] = {
            "device": self.device,
            "boot_id": self.boot_id,
            "seq": self.seq,
            "uptime": float(self.seq),
            "heap_free": 40000,
            "battery_v": 3.7,
            "rssi": -60,
            "temp_c": 24.5,
            "fw": "1.0.0",
            "ts": time.time(),
            "dropped": self.dropped,
        }
        msg.update(overrides)
        return msg

    def publish(self, **overrides: Any) -> dict[str, Any]:
        """Publish the next message at QoS 1 and wait for the broker's PUBACK."""
        msg = self.message(**overrides)
        self.publish_payload(json.dumps(msg).encode())
        self.published.append(msg)
        return msg

    def skip(self, count: int = 1) -> None:
        """Produce ``count`` messages that never leave the device (seq advances)."""
        self.seq += count

    def overflow(self, count: int) -> tuple[int, int]:
        """Drop ``count`` messages as a full buffer would; the next message reports them."""
        first = self.seq + 1
        self.seq += count
        self.dropped += count
        return first, self.seq

    def publish_payload(self, payload: bytes | str, topic: str | None = None) -> None:
        info = self._client.publish(topic or self.topic, payload, qos=1)
        info.wait_for_publish(self.timeout)
        if not info.is_published():
            raise TimeoutError(f"publisher {self.device}: no PUBACK within {self.timeout:g}s")

    def publish_status(self, state: str, **fields: Any) -> None:
        body = {"state": state, "boot_id": self.boot_id, "ts": time.time(), **fields}
        info = self._client.publish(self.status_topic, json.dumps(body), qos=1, retain=True)
        info.wait_for_publish(self.timeout)

    def close(self, clean: bool = True) -> None:
        """Clean disconnect (offline/clean status), or vanish so the broker sends the last will."""
        if self._closed:
            return
        self._closed = True
        if clean and self._connected.is_set():
            self.publish_status("offline", reason="clean")
            self._client.disconnect()
        elif not clean:
            self._client.loop_stop()
            sock = self._client.socket()
            if sock is not None:
                sock.close()
            return
        self._client.loop_stop()
