"""Brokers named by URL in a rig file: URL checks, plain and TLS + credentials on a real mosquitto."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.errors import CapabilityMissing, ConfigError
from harness.services.broker import Broker, BrokerError, ExternalBroker, find_mosquitto, free_port
from harness.services.collector import TelemetryCollector
from harness.services.endpoint import TLSConfig, parse_broker_url
from tests.services.certs import CertSet, make_certs
from tests.services.publisher import DevicePublisher

URLS = [
    ("mqtt://broker.lab:1884", ("broker.lab", 1884, False, None, None)),
    ("mqtt://10.0.0.5", ("10.0.0.5", 1883, False, None, None)),
    ("mqtts://broker.lab", ("broker.lab", 8883, True, None, None)),
    ("mqtt://rig%403:s%3Acret@host:1", ("host", 1, False, "rig@3", "s:cret")),
]


@pytest.mark.parametrize(("url", "expected"), URLS)
def test_url_forms(url: str, expected: tuple[object, ...]) -> None:
    ep = parse_broker_url(url)
    assert (ep.host, ep.port, ep.tls is not None, ep.username, ep.password) == expected


BAD_URLS = [
    ("broker.lab:1883", "expected 'mqtt://host:port'"),
    ("http://broker.lab", "expected scheme mqtt or mqtts, got 'http'"),
    ("mqtt://:1883", "expected a host name"),
    ("mqtt://host:99999", "expected a port number 1..65535"),
    ("mqtt://host/topic", "expected no path or query"),
]


@pytest.mark.parametrize(("url", "message"), BAD_URLS)
def test_bad_urls_fail_with_one_line(url: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_broker_url(url)
    text = str(err.value)
    assert text.startswith("broker.url: ") and message in text and "\n" not in text


def test_missing_certificate_file_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^broker.tls.ca_cert: expected a readable PEM file"):
        ExternalBroker("mqtts://host", ca_cert=str(tmp_path / "nope.pem"))
    (tmp_path / "c.pem").write_text("x")
    with pytest.raises(ConfigError, match="needs both client_cert and client_key"):
        parse_broker_url("mqtts://host", tls=TLSConfig(client_cert=str(tmp_path / "c.pem")))


def test_external_broker_reads_like_a_started_one(broker: Broker, journal: object) -> None:
    ext = ExternalBroker(broker.url)
    ext.check(timeout=10)
    assert (ext.kind, ext.host, ext.port, ext.url) == ("external", broker.host, broker.port, broker.url)
    with pytest.raises(CapabilityMissing, match="does not own it"):
        ext.stop()
    with pytest.raises(CapabilityMissing):
        ext.outage(1.0)
    with TelemetryCollector(ext) as col:
        pub = DevicePublisher(ext.endpoint, "dev-x")
        try:
            pub.connect()
            pub.publish()
            assert col.wait_for(1, timeout=20)[0].device == "dev-x"
        finally:
            pub.close()


def test_unreachable_external_broker_times_out_with_the_url() -> None:
    ext = ExternalBroker(f"mqtt://127.0.0.1:{free_port()}")
    with pytest.raises(BrokerError, match=r"timed out after 0.5s waiting for external broker mqtt://127"):
        ext.check(timeout=0.5)


@pytest.fixture
def tls_mosquitto(tmp_path: Path) -> Iterator[tuple[int, CertSet]]:
    """A mosquitto that demands TLS, a client certificate and a password (the rig's own broker)."""
    binary = find_mosquitto()
    passwd = shutil.which("mosquitto_passwd")
    if binary is None or passwd is None:
        pytest.skip("Debian's mosquitto (with mosquitto_passwd) is not installed")
    certs = make_certs(tmp_path)
    pwfile = tmp_path / "passwords"
    subprocess.run([passwd, "-b", "-c", str(pwfile), "rig", "s3cret"], check=True, timeout=30, capture_output=True)
    port = free_port()
    conf = tmp_path / "tls.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {pwfile}\n"
        f"cafile {certs.ca}\ncertfile {certs.server_cert}\nkeyfile {certs.server_key}\n"
        "require_certificate true\nuser root\nlog_dest stderr\n"
    )
    with open(tmp_path / "tls.log", "wb") as log:
        proc = subprocess.Popen([binary, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    try:
        yield port, certs
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def test_tls_with_client_certificate_and_password(tls_mosquitto: tuple[int, CertSet]) -> None:
    port, certs = tls_mosquitto
    tls = {"ca_cert": str(certs.ca), "client_cert": str(certs.client_cert), "client_key": str(certs.client_key)}
    ext = ExternalBroker(f"mqtts://127.0.0.1:{port}", username="rig", password="s3cret", **tls)
    assert ext.url == f"mqtts://127.0.0.1:{port}"
    ext.check(timeout=15)
    with TelemetryCollector(ext) as col:
        pub = DevicePublisher(ext.endpoint, "dev-tls")
        try:
            pub.connect()
            pub.publish()
            assert col.wait_for(1, timeout=20)[0].device == "dev-tls"
        finally:
            pub.close()
    wrong = ExternalBroker(f"mqtts://127.0.0.1:{port}", username="rig", password="wrong", **tls)
    refused = r"refused the harness: broker refused the connection: (bad user name or password|not authorized)"
    with pytest.raises(BrokerError, match=refused):
        wrong.check(timeout=15)
    with pytest.raises(BrokerError, match=r"refused the telemetry collector: Not authorized \(check the rig's broker"):
        TelemetryCollector(wrong, connect_timeout=2).start()


def test_collector_without_a_broker_says_where_it_tried() -> None:
    port = free_port()
    with pytest.raises(BrokerError, match=rf"telemetry collector could not connect to mqtt://127.0.0.1:{port}"):
        TelemetryCollector(ExternalBroker(f"mqtt://127.0.0.1:{port}")).start()
