"""The served twin's MQTT client against both brokers the harness runs: mosquitto and the embedded one.

No harness client code on the device side: the twin is configured over its console (pyserial) and
watched by a plain paho subscriber. The broker is the services' ``Broker`` (started like a run does).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import serial
from paho.mqtt.enums import CallbackAPIVersion

from harness.ota import KeyPair, build_signed_image
from harness.services.artifacts import ArtifactServer
from harness.services.broker import Broker, available_kinds

from .console import command, read_until
from .served import ServedTwin, stop_served

WAIT = 20.0


class Subscriber:
    """Everything published under ``devices/#``, with a wait that says what it saw on timeout."""

    def __init__(self, broker: Broker) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self.cond = threading.Condition()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="twin-runtime-test")
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe("devices/#", qos=1)
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.connect(broker.host, broker.port, keepalive=10)
        self.client.loop_start()

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if not msg.payload:
            return  # a retained message being cleared
        with self.cond:
            self.messages.append((msg.topic, json.loads(msg.payload)))
            self.cond.notify_all()

    def wait(self, what: str, check: Callable[[list[tuple[str, dict[str, Any]]]], bool]) -> None:
        with self.cond:
            if not self.cond.wait_for(lambda: check(self.messages), timeout=WAIT):
                raise AssertionError(f"waited {WAIT:g} s for {what}; last messages: {self.messages[-3:]}")

    def telemetry(self, boot_id: str) -> list[int]:
        with self.cond:
            return [p["seq"] for t, p in self.messages if t.endswith("/telemetry") and p["boot_id"] == boot_id]

    def status(self, **fields: object) -> Callable[[list[tuple[str, dict[str, Any]]]], bool]:
        return lambda ms: any(t.endswith("/status") and fields.items() <= p.items() for t, p in ms)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture(params=available_kinds() or ["none"])
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Broker]:
    if request.param == "none":
        pytest.skip("neither mosquitto nor the embedded broker can run here")
    with Broker.start(tmp_path / "run", request.param) as started:
        yield started


def test_twin_publishes_reconnects_and_leaves_a_will(serve: Callable[..., ServedTwin], broker: Broker) -> None:
    watcher = Subscriber(broker)
    twin = serve("--device-id", "rt-1")
    port = serial.Serial(twin.console, baudrate=115200, timeout=0.2)
    boot_id = "<not booted>"
    try:
        port.write(b"\r")
        read_until(port, b"twin> ")
        for key, value in (("mqtt.host", broker.host), ("mqtt.port", broker.port), ("telemetry.interval", "0.2")):
            assert command(port, f"config set {key} {value}") == ["OK"]
        port.write(b"reboot\r")
        read_until(port, b"BOOT-DONE\r\ntwin> ")
        boot_id = json.loads(command(port, "status")[0])["boot_id"]
        watcher.wait("the online status", watcher.status(state="online", boot_id=boot_id, connects=1))
        watcher.wait("5 telemetry messages", lambda ms: len(watcher.telemetry(boot_id)) >= 5)
        assert watcher.telemetry(boot_id)[:5] == [1, 2, 3, 4, 5]

        broker.restart()
        watcher.wait("a second connection", watcher.status(state="online", boot_id=boot_id, connects=2))
        state = json.loads(command(port, "mqtt")[0])
        assert state["state"] == "online" and state["disconnects"] >= 1, state
        if broker.kind == "mosquitto":  # persistent sessions survive a graceful restart
            produced = set(range(1, int(state["produced"]) + 1))
            watcher.wait("every message produced so far", lambda ms: produced <= set(watcher.telemetry(boot_id)))
    finally:
        port.close()
        stop_served(twin)
        try:
            watcher.wait("the last will", watcher.status(state="offline", reason="lwt", boot_id=boot_id))
        finally:
            watcher.close()


def test_twin_takes_a_retained_job_and_reports_every_step(serve: Callable[..., ServedTwin], broker: Broker) -> None:
    """The job is published (retained) before the twin is pointed at the broker: it finds it at connect."""
    keys = KeyPair.ephemeral()
    image = build_signed_image("2.0.0", keys, size=96 * 1024, security_counter=1)
    watcher = Subscriber(broker)
    twin = serve("--device-id", "rt-2", "--slot-pages", "48")
    port = serial.Serial(twin.console, baudrate=115200, timeout=0.2)
    try:
        with ArtifactServer() as artifacts:
            job = {"job_id": "rt-2-job-1", "version": "2.0.0", "url": artifacts.publish("fw.img", image.data),
                   "size": len(image.data), "sha256": image.manifest.sha256, "signature": image.manifest.signature}
            watcher.client.publish("devices/rt-2/ota/job", json.dumps(job), qos=1, retain=True).wait_for_publish(WAIT)
            port.write(b"\r")
            read_until(port, b"twin> ")
            for key, value in (("mqtt.host", broker.host), ("mqtt.port", broker.port),
                               ("ota.pubkey", keys.public_raw.hex())):  # fmt: skip
                assert command(port, f"config set {key} {value}") == ["OK"]
            port.write(b"reboot\r")
            watcher.wait("the committed report", lambda ms: any(
                t == "devices/rt-2/ota/status" and p["job_id"] == "rt-2-job-1" and p["phase"] == "committed"
                for t, p in ms))  # fmt: skip
            with watcher.cond:
                phases = [p["phase"] for t, p in watcher.messages if t.endswith("/ota/status")]
            for phase in ("downloading", "verifying", "rebooting", "trial"):
                assert phase in phases, phases
            assert phases.index("rebooting") < phases.index("trial") < phases.index("committed")
            assert artifacts.statistics()["requests"] == 1  # the job redelivered to the trial boot: not again
            watcher.client.publish("devices/rt-2/ota/job", b"", qos=1, retain=True).wait_for_publish(WAIT)
            port.reset_input_buffer()
            assert command(port, "version")[0].startswith("fw 2.0.0 slot=B ")
            assert json.loads(command(port, "mqtt")[0])["received"] >= 1
    finally:
        port.close()
        stop_served(twin)
        watcher.close()


def test_reports_made_offline_survive_a_reboot_of_the_served_twin(serve: Callable[..., ServedTwin],
                                                                  broker: Broker) -> None:  # fmt: skip
    """The board process hands the unsent reports of a boot to the next one across a software reset."""
    image = build_signed_image("2.0.0", KeyPair.ephemeral(), size=32 * 1024, security_counter=1)
    watcher = Subscriber(broker)
    twin = serve("--device-id", "rt-3", "--slot-pages", "48")
    port = serial.Serial(twin.console, baudrate=115200, timeout=0.2)
    try:
        with ArtifactServer() as artifacts:
            url = artifacts.publish("fw.img", image.data)
            port.write(b"\r")
            read_until(port, b"twin> ")
            for key, value in (("mqtt.host", broker.host), ("mqtt.port", broker.port), ("mqtt.backoff_max", "0.5")):
                assert command(port, f"config set {key} {value}") == ["OK"]
            port.write(b"reboot\r")
            read_until(port, b"BOOT-DONE\r\ntwin> ")
            boot_id = json.loads(command(port, "status")[0])["boot_id"]
            watcher.wait("the online status", watcher.status(state="online", boot_id=boot_id))
            broker.stop()
            port.write(f"ota apply {url} {'00' * 32} {len(image.data)} 2.0.0\r".encode())
            read_until(port, b"OTA rejected reason=hash")  # made while the broker is down
            port.write(b"reboot\r")
            read_until(port, b"BOOT-DONE\r\ntwin> ")
            broker.start_again()
            watcher.wait("the old boot's rejected report", lambda ms: any(
                t == "devices/rt-3/ota/status" and p["phase"] == "rejected" and p["boot_id"] == boot_id
                for t, p in ms))  # fmt: skip
    finally:
        port.close()
        stop_served(twin)
        watcher.close()
