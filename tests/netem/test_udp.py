"""UDP through the point: per-datagram loss, duplication, corruption and delay, measured by the point."""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Iterator

import pytest

from harness.drivers.netem import ImpairmentPoint

from .helpers import UdpEcho, wait_until


@pytest.fixture
def device() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(15)
    yield sock
    sock.close()


def _offer(point: ImpairmentPoint, device: socket.socket, address: tuple[str, int], count: int) -> None:
    """Send ``count`` numbered datagrams, pacing on the point's own counter so no socket buffer overflows."""
    for i in range(count):
        device.sendto(i.to_bytes(4, "big") + bytes(60), address)
        if i % 200 == 199:
            wait_until(lambda n=i + 1: _up(point)["offered_packets"] >= n, 15, f"{i + 1} datagrams offered",
                       lambda: _up(point)["offered_packets"])
    wait_until(lambda: _up(point)["offered_packets"] >= count, 15, f"{count} datagrams offered",
               lambda: _up(point)["offered_packets"])


def _up(point: ImpairmentPoint) -> dict:
    return point.statistics("coap")["coap"]["up"]["produced"]


def test_loss_is_produced_measured_and_within_the_binomial_interval(
    point: ImpairmentPoint, udp_sink: UdpEcho, device: socket.socket
) -> None:
    address = point.add_udp(udp_sink.address, name="coap")
    point.apply(loss="20%", direction="up")
    n = 3000
    _offer(point, device, address, n)
    produced = _up(point)
    lost = produced["lost"]
    sigma = math.sqrt(n * 0.2 * 0.8)
    assert abs(lost - 0.2 * n) < 4 * sigma
    assert produced["loss_pct"] == pytest.approx(100.0 * lost / n)
    wait_until(lambda: len(udp_sink.received) >= n - lost, 15, "the surviving datagrams at the service",
               lambda: len(udp_sink.received))
    assert len(udp_sink.received) == n - lost == produced["delivered_packets"]
    assert produced["loss_bursts"]["count"] > 0


def test_duplicates_and_corruption(point: ImpairmentPoint, udp_sink: UdpEcho, device: socket.socket) -> None:
    address = point.add_udp(udp_sink.address, name="coap")
    point.apply(duplicate="100%", corrupt="100%", direction="up")
    sent = [os.urandom(64) for _ in range(50)]  # random payloads: one flipped bit cannot make another
    for i, payload in enumerate(sent):
        device.sendto(payload, address)
        wait_until(lambda n=i + 1: _up(point)["offered_packets"] >= n, 15, f"{i + 1} datagrams offered",
                   lambda: _up(point)["offered_packets"])
    wait_until(lambda: len(udp_sink.received) >= 100, 15, "100 copies at the service",
               lambda: len(udp_sink.received))
    produced = _up(point)
    assert produced["duplicated"] == 50 and produced["corrupted"] == 50
    distances = sorted(min(_dist(got, s) for s in sent) for got in udp_sink.received)
    assert distances == [0] * 50 + [1] * 50  # clean duplicates, originals with exactly one bit flipped


def _dist(a: bytes, b: bytes) -> int:
    return sum(bin(x ^ y).count("1") for x, y in zip(a, b, strict=True))


def test_delay_each_way_and_replies_reach_the_device(
    point: ImpairmentPoint, udp_echo: UdpEcho, device: socket.socket
) -> None:
    address = point.add_udp(udp_echo.address, name="coap")
    point.apply(delay="40ms", jitter="5ms", distribution="normal")
    for i in range(5):
        device.sendto(bytes([i]), address)
        data, source = device.recvfrom(100)
        assert data == bytes([i]) and source[:2] == address
    stats = point.statistics("coap")["coap"]
    for direction in ("up", "down"):
        delay = stats[direction]["produced"]["delay_ms"]
        assert delay["n"] == 5 and delay["min"] >= 0.0
        assert delay["mean"] > 20.0  # 40 ms +/- a few jitters; the exact accuracy is bench/netem.py's job


def test_partition_drops_datagrams_apart_from_loss(
    point: ImpairmentPoint, udp_echo: UdpEcho, device: socket.socket
) -> None:
    address = point.add_udp(udp_echo.address, name="coap")
    point.partition()
    _offer(point, device, address, 20)
    produced = _up(point)
    assert produced["partition_dropped"] == 20 and produced["lost"] == 0 and produced["loss_pct"] is None
    point.heal()
    device.sendto(b"after", address)
    assert device.recvfrom(100)[0] == b"after"


def _lost_sequence(seed: int, udp_sink: UdpEcho, device: socket.socket) -> list[int]:
    """Which of 400 numbered datagrams a point seeded with ``seed`` drops."""
    with ImpairmentPoint(seed=seed, stats_interval=None) as point:
        address = point.add_udp(udp_sink.address, name="coap")
        point.apply(loss="30%", direction="up")
        before = len(udp_sink.received)
        _offer(point, device, address, 400)
        delivered = _up(point)["delivered_packets"]
        wait_until(lambda: len(udp_sink.received) >= before + delivered, 15, "the delivered datagrams",
                   lambda: len(udp_sink.received))
        got = {int.from_bytes(d[:4], "big") for d in udp_sink.received[before:]}
    return [i for i in range(400) if i not in got]


def test_the_same_seed_replays_the_same_losses(udp_sink: UdpEcho, device: socket.socket) -> None:
    first = _lost_sequence(99, udp_sink, device)
    assert first == _lost_sequence(99, udp_sink, device)
    assert first != _lost_sequence(100, udp_sink, device)
    assert 60 < len(first) < 180


def test_idle_flows_are_closed(udp_echo: UdpEcho, device: socket.socket) -> None:
    with ImpairmentPoint(seed=1, stats_interval=None, udp_idle=0.2) as point:
        address = point.add_udp(udp_echo.address, name="coap")
        device.sendto(b"hello", address)
        assert device.recvfrom(100)[0] == b"hello"
        assert point.connections("coap") == 1
        wait_until(lambda: point.connections("coap") == 0, 10, "the idle flow to be closed",
                   lambda: point.connections("coap"))
        device.sendto(b"again", address)  # a new flow opens on demand
        assert device.recvfrom(100)[0] == b"again"


def test_reorder_sends_every_gap_th_datagram_ahead(
    point: ImpairmentPoint, udp_sink: UdpEcho, device: socket.socket
) -> None:
    address = point.add_udp(udp_sink.address, name="coap")
    point.apply_netem("delay 1500ms reorder 100% gap 2", direction="up")  # long: robust to a slow box
    for i in range(4):  # 0 and 2 are delayed; 1 and 3 jump the queue
        device.sendto(bytes([i]), address)
        wait_until(lambda n=i + 1: _up(point)["offered_packets"] >= n, 15, f"{i + 1} datagrams offered",
                   lambda: _up(point)["offered_packets"])
    wait_until(lambda: len(udp_sink.received) >= 4, 15, "4 datagrams at the service",
               lambda: udp_sink.received)
    assert [d[0] for d in udp_sink.received] == [1, 3, 0, 2]
    assert _up(point)["reordered"] == 2
