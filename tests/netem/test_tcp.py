"""TCP through the point: bytes exact, delay added, stall/partition/heal, reset, close-after, rate."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable

import pytest

from harness.drivers.netem import ImpairmentPoint

from .helpers import TcpServer, recv_exactly, wait_until

Connect = Callable[[tuple[str, int]], socket.socket]


def _send_in_thread(sock: socket.socket, data: bytes) -> threading.Thread:
    t = threading.Thread(target=sock.sendall, args=(data,), daemon=True)
    t.start()
    return t


def test_bytes_arrive_exact_and_in_order_under_jitter_and_slicing(
    point: ImpairmentPoint, echo_server: TcpServer, client_factory: Connect
) -> None:
    address = point.add_tcp(echo_server.address, name="echo")
    point.apply(delay="3ms", jitter="3ms", distribution="pareto", segment=700)
    client = client_factory(address)
    payload = os.urandom(400_000)
    sender = _send_in_thread(client, payload)
    assert recv_exactly(client, len(payload)) == payload
    sender.join(15)
    stats = point.statistics("echo")["echo"]
    assert stats["up"]["produced"]["delivered_bytes"] == len(payload)
    assert stats["up"]["produced"]["delivered_packets"] >= len(payload) // 700


def test_fast_path_passes_bytes_and_counts_them(
    point: ImpairmentPoint, echo_server: TcpServer, client_factory: Connect
) -> None:
    client = client_factory(point.add_tcp(echo_server.address, name="echo"))
    payload = os.urandom(200_000)
    sender = _send_in_thread(client, payload)
    assert recv_exactly(client, len(payload)) == payload
    sender.join(15)
    produced = point.statistics("echo")["echo"]["down"]["produced"]
    assert produced["delivered_bytes"] == len(payload) == produced["offered_bytes"]


def test_delay_is_added_each_way(point: ImpairmentPoint, echo_server: TcpServer, client_factory: Connect) -> None:
    client = client_factory(point.add_tcp(echo_server.address, name="echo"))
    point.apply(latency="100ms")
    for _ in range(3):
        client.sendall(b"ping")
        assert recv_exactly(client, 4) == b"ping"
    stats = point.statistics("echo")["echo"]
    for direction in ("up", "down"):
        delay = stats[direction]["produced"]["delay_ms"]
        assert delay["n"] >= 3
        assert delay["min"] >= 100.0 - 0.5  # never released early (timer granularity aside)
        assert stats[direction]["expected"]["delay_ms"] == pytest.approx(100.0)


def test_half_close_is_passed_on_after_the_delayed_data(
    point: ImpairmentPoint, echo_server: TcpServer, client_factory: Connect
) -> None:
    client = client_factory(point.add_tcp(echo_server.address, name="echo"))
    point.apply(delay="30ms")
    client.sendall(b"last words")
    client.shutdown(socket.SHUT_WR)
    assert recv_exactly(client, 10) == b"last words"
    assert client.recv(10) == b""  # the echo server's FIN came through after the data


def test_stall_holds_data_keeps_the_connection_and_heal_releases_it(
    point: ImpairmentPoint, echo_server: TcpServer, client_factory: Connect
) -> None:
    client = client_factory(point.add_tcp(echo_server.address, name="echo"))
    client.sendall(b"before")
    assert recv_exactly(client, 6) == b"before"
    point.stall()
    client.sendall(b"during")
    client.settimeout(0.5)
    with pytest.raises(TimeoutError):
        client.recv(10)
    assert echo_server.received == bytearray(b"before")
    client.settimeout(15)
    point.heal()
    assert recv_exactly(client, 6) == b"during"


def test_stall_also_holds_data_already_in_flight_and_a_pending_close(
    point: ImpairmentPoint, echo_server: TcpServer, client_factory: Connect
) -> None:
    client = client_factory(point.add_tcp(echo_server.address, name="echo"))
    point.apply(delay="300ms", direction="up")
    client.sendall(b"in flight")
    client.shutdown(socket.SHUT_WR)
    point.stall()  # the bytes are queued in the point, not yet delivered
    client.settimeout(0.8)
    with pytest.raises(TimeoutError):
        client.recv(10)
    assert echo_server.received == bytearray()
    client.settimeout(15)
    point.heal()
    assert recv_exactly(client, 9) == b"in flight"
    assert client.recv(10) == b""  # the half-close waited for the heal too


def test_heal_releases_several_held_chunks_before_the_half_close_they_preceded(
    point: ImpairmentPoint, echo_server: TcpServer, client_factory: Connect
) -> None:
    """Held bytes from a source that has half-closed: the FIN goes out after all of them, not after the
    first (writing the rest onto a transport already given write_eof() raised in heal())."""
    client = client_factory(point.add_tcp(echo_server.address, name="echo"))
    client.sendall(b"x")
    assert recv_exactly(client, 1) == b"x"
    point.stall()
    chunks = [b"first", b"second", b"third"]
    for n, chunk in enumerate(chunks, 1):
        client.sendall(chunk)  # separate reads in the point: one held piece each
        held = sum(len(c) for c in chunks[:n])
        wait_until(
            lambda held=held: point.statistics("echo")["echo"]["up"]["produced"]["held_bytes"] >= held,
            5.0, f"the point to hold {held} bytes",
            lambda: point.statistics("echo")["echo"]["up"]["produced"],
        )  # fmt: skip
    client.shutdown(socket.SHUT_WR)  # the device half-closes while its bytes are held
    pipes = [conn.up for conn in point._proxies["echo"].connections]  # the point's own view of the FIN
    wait_until(lambda: all(p.eof for p in pipes), 5.0, "the point to read the device's FIN", lambda: pipes)
    point.heal()
    assert recv_exactly(client, 16) == b"firstsecondthird"
    assert client.recv(10) == b""  # the echo server saw the FIN after every held byte and closed too
    assert echo_server.received == bytearray(b"xfirstsecondthird")


def test_partition_refuses_new_connections_and_heals_by_itself(
    point: ImpairmentPoint, echo_server: TcpServer, client_factory: Connect
) -> None:
    address = point.add_tcp(echo_server.address, name="echo")
    old = client_factory(address)
    old.sendall(b"a")
    assert recv_exactly(old, 1) == b"a"
    point.partition()
    with pytest.raises((ConnectionResetError, AssertionError)):  # reset at once, even during connect
        recv_exactly(client_factory(address), 1)
    old.sendall(b"held")
    point.partition("300ms")  # re-arm with a duration: heals by itself
    assert recv_exactly(old, 4) == b"held"
    fresh = client_factory(address)
    fresh.sendall(b"new")
    assert recv_exactly(fresh, 3) == b"new"
    stats = point.statistics("echo")["echo"]
    assert stats["refused"] >= 1 and not stats["stalled"]


def test_partitioned_context_heals_even_on_error(point: ImpairmentPoint, echo_server: TcpServer) -> None:
    point.add_tcp(echo_server.address, name="echo")
    with pytest.raises(RuntimeError), point.partitioned():
        assert point.statistics()["echo"]["refusing"]
        raise RuntimeError("test body failed")
    assert not point.statistics()["echo"]["refusing"]


def test_reset_is_seen_as_connection_reset(
    point: ImpairmentPoint, echo_server: TcpServer, client_factory: Connect
) -> None:
    client = client_factory(point.add_tcp(echo_server.address, name="echo"))
    client.sendall(b"x")
    assert recv_exactly(client, 1) == b"x"
    point.wait_connections(1, timeout=10)
    assert point.reset() == 1
    with pytest.raises(ConnectionResetError):
        client.recv(10)
    wait_until(lambda: echo_server.resets >= 1, 10, "the service side to see the reset",
               lambda: echo_server.resets)


def test_close_after_n_bytes(point: ImpairmentPoint, sink_server: TcpServer, client_factory: Connect) -> None:
    client = client_factory(point.add_tcp(sink_server.address, name="sink"))
    point.close_after(100, direction="up")
    client.sendall(os.urandom(300))
    assert client.recv(10) == b""  # the point closed the connection
    wait_until(lambda: len(sink_server.received) >= 100, 10, "100 bytes at the service",
               lambda: len(sink_server.received))
    assert len(sink_server.received) == 100


def test_bandwidth_cap_is_within_ten_percent(
    point: ImpairmentPoint, sink_server: TcpServer, client_factory: Connect
) -> None:
    client = client_factory(point.add_tcp(sink_server.address, name="sink"))
    point.apply(rate="2mbit", direction="up")  # 250 000 bytes/s
    size = 500_000  # two seconds at the cap: a scheduling hiccup of the receiver stays well inside 10%
    client.sendall(os.urandom(size))
    wait_until(lambda: len(sink_server.received) >= size, 20, f"{size} bytes at the service",
               lambda: len(sink_server.received))
    assert sink_server.first_rx is not None and sink_server.last_rx is not None
    measured = size / (sink_server.last_rx - sink_server.first_rx)
    assert measured == pytest.approx(250_000, rel=0.10)
    produced = point.statistics("sink")["sink"]["up"]["produced"]
    assert produced["delivered_bytes"] / produced["delivery_span_s"] == pytest.approx(250_000, rel=0.10)


def test_the_cap_is_the_links_not_each_connections(
    point: ImpairmentPoint, sink_server: TcpServer, client_factory: Connect
) -> None:
    address = point.add_tcp(sink_server.address, name="sink")
    point.apply(rate="2mbit", direction="up")  # 250 000 bytes/s for the whole link
    clients = [client_factory(address) for _ in range(2)]
    senders = [_send_in_thread(c, os.urandom(250_000)) for c in clients]
    wait_until(lambda: len(sink_server.received) >= 500_000, 20, "500000 bytes at the service",
               lambda: len(sink_server.received))
    for sender in senders:
        sender.join(15)
    assert sink_server.first_rx is not None and sink_server.last_rx is not None
    measured = 500_000 / (sink_server.last_rx - sink_server.first_rx)
    assert measured == pytest.approx(250_000, rel=0.10)


def test_upstream_can_move_at_run_time(point: ImpairmentPoint, client_factory: Connect) -> None:
    first, second = TcpServer("echo"), TcpServer("echo")
    try:
        address = point.add_tcp(first.address, name="broker")
        a = client_factory(address)
        a.sendall(b"1")
        assert recv_exactly(a, 1) == b"1"
        point.set_upstream("broker", second.address)
        b = client_factory(address)
        b.sendall(b"2")
        assert recv_exactly(b, 1) == b"2"
        assert (first.accepted, second.accepted) == (1, 1)
    finally:
        first.close()
        second.close()


def test_unreachable_upstream_resets_the_device(point: ImpairmentPoint, client_factory: Connect) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[:2]
    address = point.add_tcp(dead, name="gone")
    with pytest.raises((ConnectionResetError, AssertionError)):  # reset at once, even during connect
        recv_exactly(client_factory(address), 1)
    assert point.statistics("gone")["gone"]["upstream_errors"]
