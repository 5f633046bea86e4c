"""The broker service: both kinds start, stop, restart on the same port, log to the run folder."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.run.journal import Journal, read_journal
from harness.services import broker as broker_mod
from harness.services.broker import Broker, BrokerError, available_kinds
from harness.services.endpoint import BrokerEndpoint
from harness.services.mqtt_client import probe


def _accepts(endpoint: BrokerEndpoint) -> bool:
    try:
        probe(endpoint, timeout=2.0)
    except OSError:
        return False
    return True


def test_broker_runs_in_the_run_folder(broker: Broker, tmp_path: Path) -> None:
    assert broker.running and broker.host == "127.0.0.1" and broker.port > 0
    assert broker.url == f"mqtt://127.0.0.1:{broker.port}"
    assert broker.folder.parent == tmp_path
    assert broker.log_path.is_file()
    if broker.kind == "mosquitto":
        conf = (broker.folder / "mosquitto.conf").read_text()
        assert f"listener {broker.port} 127.0.0.1" in conf
    assert _accepts(broker.endpoint)


def test_stop_and_start_again_on_the_same_port(broker: Broker, journal: Journal) -> None:
    port, pid = broker.port, broker.pid
    broker.stop()
    assert not broker.running
    assert not _accepts(broker.endpoint)
    broker.start_again()
    assert broker.running and broker.port == port and broker.pid != pid
    assert _accepts(broker.endpoint)
    broker.restart(kill=True)
    assert broker.port == port and _accepts(broker.endpoint)
    journal.flush()
    actions = [r["action"] for r in read_journal(journal.path) if r["kind"] == "injection"]
    assert actions == ["broker-stop", "broker-start", "broker-stop", "broker-start"]
    assert broker.log_tail() != "<empty log>"


def test_outage_context_keeps_the_broker_down_for_the_body(broker: Broker) -> None:
    with broker.outage(duration=0.2):
        assert not _accepts(broker.endpoint)
    assert broker.running and _accepts(broker.endpoint)
    assert broker.statistics()["stops"] == 1


def test_close_ends_the_process(tmp_path: Path, journal: Journal) -> None:
    kind = available_kinds()[0] if available_kinds() else pytest.skip("no broker on this machine")
    b = Broker.start(tmp_path, kind, journal)
    pid = b.pid
    assert pid is not None
    b.close()
    b.close()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(BrokerError, match="was closed"):
        b.start_again()
    journal.flush()
    assert [r["action"] for r in read_journal(journal.path) if r["kind"] == "service"] == ["start", "stop"]


def test_auto_prefers_mosquitto_and_falls_back_to_embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not broker_mod.embedded_available():
        pytest.skip("amqtt not installed")
    monkeypatch.delenv("HARNESS_BROKER", raising=False)  # "auto" as on a machine where nobody chose
    monkeypatch.setattr(broker_mod, "find_mosquitto", lambda: None)
    with Broker.start(tmp_path, "auto") as b:
        assert b.kind == "embedded"
    monkeypatch.setattr(broker_mod, "embedded_available", lambda: False)
    with pytest.raises(BrokerError, match="no MQTT broker available: install Debian's mosquitto"):
        Broker.start(tmp_path, "auto")


def test_harness_broker_embedded_hides_mosquitto(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """HARNESS_BROKER=embedded: the run behaves as on a machine without mosquitto (CI's second path)."""
    if broker_mod.find_mosquitto() is None:
        pytest.skip("mosquitto is not installed: nothing to hide")
    monkeypatch.setenv("HARNESS_BROKER", "embedded")
    assert broker_mod.find_mosquitto() is None and available_kinds() == ["embedded"]
    assert broker_mod.unavailable_reason("mosquitto") == "mosquitto is hidden from the harness by HARNESS_BROKER=embedded"
    with Broker.start(tmp_path, "auto") as b:
        assert b.kind == "embedded"
    with pytest.raises(BrokerError, match=r"^broker kind 'mosquitto' asked for, but HARNESS_BROKER=embedded hides"):
        Broker.start(tmp_path, "mosquitto")


def test_harness_broker_mosquitto_requires_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """HARNESS_BROKER=mosquitto: no silent fall back to the embedded broker; tests that want it fail, not skip."""
    monkeypatch.setenv("HARNESS_BROKER", "mosquitto")
    monkeypatch.setattr(broker_mod.shutil, "which", lambda *a, **k: None)  # a machine without mosquitto
    assert broker_mod.unavailable_reason("mosquitto") is None
    with pytest.raises(BrokerError, match=r"^HARNESS_BROKER=mosquitto requires mosquitto, but no mosquitto binary"):
        Broker.start(tmp_path, "auto")


@pytest.mark.parametrize("value", ["rabbit", "Mosquito"])
def test_harness_broker_bad_value_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("HARNESS_BROKER", value)
    with pytest.raises(ConfigError, match=rf"^HARNESS_BROKER='{value}': expected one of auto, mosquitto, embedded$"):
        Broker.start(tmp_path, "auto")


def test_unknown_kind_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^broker.kind: expected one of auto, mosquitto, embedded, got 'rabbit'$"):
        Broker.start(tmp_path, "rabbit")


def test_taken_port_is_reported_with_the_log(tmp_path: Path) -> None:
    kind = available_kinds()[0] if available_kinds() else pytest.skip("no broker on this machine")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(
            BrokerError,
            match=rf"exited with code \d+ before accepting clients on "
            rf"mqtt://127.0.0.1:{port}; last log lines: .+",
        ):
            Broker.start(tmp_path, kind, port=port)


def _packet(kind: int, body: bytes) -> bytes:
    length, encoded = len(body), b""
    while True:
        byte, length = length % 128, length // 128
        encoded += bytes([byte | (0x80 if length else 0)])
        if not length:
            return bytes([kind]) + encoded + body


def _text(value: str) -> bytes:
    return len(value).to_bytes(2, "big") + value.encode()


def test_publishes_followed_at_once_by_a_disconnect_all_reach_subscribers(broker: Broker) -> None:
    """QoS 1 at a clean DISCONNECT: a device that publishes its last reports and disconnects in one go
    (as a board does before a reboot: half-close, then read until the broker closes) loses none of
    them, on either broker. (Closing with PUBACKs unread makes the kernel send RST, which discards
    what the broker had not read yet: why the twin's link drains before it closes.)"""
    import socket
    import threading

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    got: list[bytes] = []
    cond, subscribed = threading.Condition(), threading.Event()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="drain-watcher")
    sub.on_subscribe = lambda *a, **k: subscribed.set()

    def on_message(client, userdata, msg) -> None:
        with cond:
            got.append(bytes(msg.payload))
            cond.notify_all()

    sub.on_message = on_message
    sub.connect(broker.host, broker.port, keepalive=10)
    sub.loop_start()
    try:
        sub.subscribe("drain/t", qos=1)
        assert subscribed.wait(10), "no SUBACK"
        count = 20
        burst = _packet(0x10, _text("MQTT") + bytes([4, 0x02, 0, 60]) + _text("drain-device"))
        burst += b"".join(_packet(0x32, _text("drain/t") + (i + 1).to_bytes(2, "big") + f"m{i}".encode())
                          for i in range(count))  # fmt: skip
        burst += bytes([0xE0, 0x00])
        with socket.create_connection((broker.host, broker.port), timeout=10) as sock:
            sock.sendall(burst)
            sock.shutdown(socket.SHUT_WR)
            replies = b"".join(iter(lambda: sock.recv(4096), b""))  # until the broker closes
        assert replies[:1] == b"\x20" and replies.count(b"\x40\x02") >= count  # CONNACK, then the PUBACKs
        with cond:
            cond.wait_for(lambda: len(got) >= count, timeout=10)
        assert got == [f"m{i}".encode() for i in range(count)]
    finally:
        sub.loop_stop()
        sub.disconnect()


def _connect_with_will(broker: Broker, client_id: str, keepalive: int, will_topic: str) -> socket.socket:
    """A raw MQTT 3.1.1 client with a will: CONNECT sent, CONNACK read, then whatever the test does."""
    flags = 0x02 | 0x04  # clean session, will flag (QoS 0, not retained)
    body = _text("MQTT") + bytes([4, flags]) + keepalive.to_bytes(2, "big")
    body += _text(client_id) + _text(will_topic) + _text(f"{client_id} gone")
    sock = socket.create_connection((broker.host, broker.port), timeout=10)
    sock.sendall(_packet(0x10, body))
    assert sock.recv(4) == b"\x20\x02\x00\x00", "no CONNACK accepting the client"
    return sock


def test_silent_client_is_disconnected_after_one_and_a_half_keepalives_and_its_will_published(
    broker: Broker,
) -> None:
    """MQTT 3.1.1 §3.1.2.10: no control packet within 1.5 x keep alive -> the broker fails the connection
    and publishes the will (a partition keeps the TCP connection open and silent: only this notices).
    A client that keeps pinging keeps its session and its will unsent."""
    import threading
    import time

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    keepalive = 2
    wills: dict[str, float] = {}
    cond, subscribed = threading.Condition(), threading.Event()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="will-watcher")
    sub.on_subscribe = lambda *a, **k: subscribed.set()

    def on_message(client, userdata, msg) -> None:
        with cond:
            wills[msg.topic] = time.monotonic()
            cond.notify_all()

    sub.on_message = on_message
    sub.connect(broker.host, broker.port, keepalive=10)
    sub.loop_start()
    silent = pinging = None
    try:
        sub.subscribe("will/#", qos=0)
        assert subscribed.wait(10), "no SUBACK"
        silent = _connect_with_will(broker, "silent-device", keepalive, "will/silent")
        pinging = _connect_with_will(broker, "pinging-device", keepalive, "will/pinging")
        began = time.monotonic()
        pacing = threading.Event()
        while time.monotonic() - began < 2.5 * keepalive:  # well past the silent client's 1.5 x keepalive
            pinging.sendall(b"\xc0\x00")  # PINGREQ
            assert pinging.recv(2) == b"\xd0\x00", "no PINGRESP"
            pacing.wait(keepalive / 2)  # the client's ping period is the behaviour under test
        with cond:
            cond.wait_for(lambda: "will/silent" in wills, timeout=5 * keepalive)
            seen = dict(wills)
        assert "will/silent" in seen, f"no will within {7.5 * keepalive:g}s of a silent client's CONNECT"
        after = seen["will/silent"] - began
        # the embedded broker times each client; mosquitto 2.0 sweeps keepalives on a coarse timer (~+2.5 s)
        late = 1.0 if broker.kind == "embedded" else 4.0
        assert 1.5 * keepalive - 0.2 <= after <= 1.5 * keepalive + late, f"{broker.kind}: will after {after:.2f}s"
        assert "will/pinging" not in seen, "a client that pinged lost its connection"
        assert silent.recv(1) == b"", "the broker did not close the silent client's connection"
    finally:
        sub.loop_stop()
        sub.disconnect()
        for sock in (silent, pinging):
            if sock is not None:
                sock.close()
