"""Packet capture: a pcap of the point's traffic where sniffing is allowed, a plain reason where not."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from harness.drivers.netem import ImpairmentPoint
from harness.drivers.netem.capture import PacketCapture, capture_permission
from harness.run.journal import Journal, read_journal

from .helpers import TcpServer, recv_exactly, wait_until

ALLOWED, WHY = capture_permission()


def test_permission_is_reported_in_one_line() -> None:
    assert WHY and "\n" not in WHY
    if not ALLOWED:
        assert WHY.startswith("capture is off: sniffing needs root or CAP_NET_RAW")


@pytest.mark.skipif(not ALLOWED, reason=WHY)
def test_capture_records_the_devices_traffic(
    point: ImpairmentPoint, echo_server: TcpServer, tmp_path: Path
) -> None:
    from scapy.layers.inet import TCP
    from scapy.utils import rdpcap

    address = point.add_tcp(echo_server.address, name="mqtt")
    capture = point.capture(tmp_path)
    assert capture.running, capture.reason
    try:
        with socket.create_connection(address, timeout=15) as client:
            client.sendall(b"captured bytes")
            assert recv_exactly(client, 14) == b"captured bytes"
        wait_until(lambda: capture.packets >= 8, 10, "handshake, data both ways and close in the capture",
                   lambda: capture.packets)
    finally:
        path = capture.stop()
    assert path is not None and path.exists()
    packets = rdpcap(str(path))
    ports = {p[TCP].sport for p in packets if TCP in p} | {p[TCP].dport for p in packets if TCP in p}
    assert address[1] in ports
    assert any(bytes(p[TCP].payload) == b"captured bytes" for p in packets if TCP in p)


def test_capture_without_permission_stays_off_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import harness.drivers.netem.capture as capture_module

    reason = "capture is off: sniffing needs root or CAP_NET_RAW and this process (uid 1000) has neither"
    monkeypatch.setattr(capture_module, "capture_permission", lambda: (False, reason))
    capture = PacketCapture(tmp_path, [1234])
    assert capture.start() is False
    assert capture.reason == reason and not capture.running
    assert capture.stop() is None
    assert not os.listdir(tmp_path)


@pytest.mark.skipif(not ALLOWED, reason=WHY)
def test_kernel_port_filter_passes_only_the_points_ports() -> None:
    from harness.drivers.netem.capture import attach_filter, port_filter

    eth_p_all = 0x0003
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as wanted_rx, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other_rx, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx, \
            socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(eth_p_all)) as raw:
        wanted_rx.bind(("127.0.0.1", 0))
        other_rx.bind(("127.0.0.1", 0))
        wanted_port, other_port = wanted_rx.getsockname()[1], other_rx.getsockname()[1]
        raw.bind(("lo", 0))
        attach_filter(raw, port_filter([wanted_port]))
        raw.settimeout(10)
        raw.setblocking(False)
        for _ in range(10_000):  # drop anything that raced in before the filter was attached
            try:
                raw.recv(65536)
            except BlockingIOError:
                break
        raw.settimeout(10)
        tx.sendto(b"not for the capture", ("127.0.0.1", other_port))
        tx.sendto(b"for the capture", ("127.0.0.1", wanted_port))
        frame = raw.recv(65536)
    ihl = (frame[14] & 0x0F) * 4
    dport = int.from_bytes(frame[14 + ihl + 2 : 14 + ihl + 4], "big")
    assert dport == wanted_port
    assert frame.endswith(b"for the capture")


def test_point_capture_is_journalled(point: ImpairmentPoint, journal: Journal, echo_server: TcpServer,
                                     tmp_path: Path) -> None:
    point.add_tcp(echo_server.address, name="mqtt")
    capture = point.capture(tmp_path)
    capture.stop()
    journal.flush()
    record = next(r for r in read_journal(journal.path) if r["kind"] == "netem.capture")
    assert record["running"] is ALLOWED and record["reason"] == capture.reason
    assert record["ports"] == point.ports()
