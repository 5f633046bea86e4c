"""The broker service: both kinds start, stop, restart on the same port, log to the run folder."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.report.journal import Journal, read_journal
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
    monkeypatch.setattr(broker_mod, "find_mosquitto", lambda: None)
    with Broker.start(tmp_path, "auto") as b:
        assert b.kind == "embedded"
    monkeypatch.setattr(broker_mod, "embedded_available", lambda: False)
    with pytest.raises(BrokerError, match="no MQTT broker available: install Debian's mosquitto"):
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
