"""The run's services file: what an outside tool reads to find the broker."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.services import discovery
from harness.services.endpoint import BrokerEndpoint, TLSConfig


def _services(endpoint: BrokerEndpoint) -> SimpleNamespace:
    return SimpleNamespace(
        broker=SimpleNamespace(endpoint=endpoint, kind="mosquitto"),
        device_host="127.0.0.1",
        device_port=4100,
        collector=SimpleNamespace(client_id="harness-collector-x"),
        artifacts_url="http://127.0.0.1:4200",
    )


def test_written_per_worker_then_marked_stopped(tmp_path: Path) -> None:
    info = discovery.describe(_services(BrokerEndpoint("127.0.0.1", 4000)), "gw1")
    path = discovery.write(tmp_path, "gw1", info)
    assert path.name == "services-gw1.json"
    got = discovery.read(tmp_path, "gw1")
    assert got["state"] == "running"
    assert got["broker"] == {"url": "mqtt://127.0.0.1:4000", "host": "127.0.0.1", "port": 4000,
                                  "kind": "mosquitto", "tls": None, "username": None, "password": "none"}
    assert got["device"] == {"host": "127.0.0.1", "port": 4100}
    discovery.mark_stopped(path)
    assert discovery.read(tmp_path, "gw1")["state"] == "stopped"
    assert not list(tmp_path.glob("*.tmp"))


def test_a_password_is_never_written(tmp_path: Path) -> None:
    endpoint = BrokerEndpoint("lab-broker", 8883, tls=TLSConfig(ca_cert="ca.pem"), username="qa", password="s3cret")
    path = discovery.write(tmp_path, "main", discovery.describe(_services(endpoint), "main"))
    assert path.name == "services.json"
    text = path.read_text()
    assert "s3cret" not in text
    broker = discovery.read(tmp_path)["broker"]
    assert (broker["url"], broker["username"], broker["password"]) == ("mqtts://lab-broker:8883", "qa", "rig file")
    assert broker["tls"]["ca_cert"] == "ca.pem"


def test_reading_a_missing_or_broken_file_says_which(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"services.json: no services file"):
        discovery.read(tmp_path)
    (tmp_path / "services.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"services.json: expected JSON"):
        discovery.read(tmp_path)
