"""Loopback servers and socket helpers for the impairment point's tests."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable

IO_TIMEOUT = 15.0


class TcpServer:
    """A threaded loopback TCP server: ``echo`` sends back what it gets, ``sink`` counts and keeps it."""

    def __init__(self, mode: str = "echo") -> None:
        self.mode = mode
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.address: tuple[str, int] = self.listener.getsockname()[:2]
        self.received = bytearray()
        self.first_rx: float | None = None
        self.last_rx: float | None = None
        self.accepted = 0
        self.resets = 0
        self._clients: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._accept_thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._accept_thread.start()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(0.2)
            with self._lock:
                self.accepted += 1
                self._clients.append(conn)
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(t)
            t.start()

    def _serve(self, conn: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                data = conn.recv(65536)
            except TimeoutError:
                continue
            except ConnectionResetError:
                with self._lock:
                    self.resets += 1
                return
            except OSError:
                return
            if not data:
                if self.mode == "echo":
                    with contextlib.suppress(OSError):
                        conn.shutdown(socket.SHUT_WR)
                return
            with self._lock:
                now = time.monotonic()
                if self.first_rx is None:
                    self.first_rx = now
                self.last_rx = now
                self.received += data
            if self.mode == "echo":
                try:
                    conn.sendall(data)
                except OSError:
                    return

    def close(self) -> None:
        self._stop.set()
        self.listener.close()
        self._accept_thread.join(5)
        with self._lock:
            clients = list(self._clients)
        for conn in clients:
            conn.close()
        for t in self._threads:
            t.join(5)


def _large_receive_buffer(sock: socket.socket) -> None:
    """4 MiB of receive buffer, so a busy test machine delays datagrams instead of dropping them."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, 33, 4 << 20)  # SO_RCVBUFFORCE (Linux), needs CAP_NET_ADMIN
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)  # capped at net.core.rmem_max


class UdpEcho:
    """A loopback UDP server that sends every datagram back to its sender (``echo=False``: keeps them)."""

    def __init__(self, echo: bool = True) -> None:
        self.echo = echo
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        _large_receive_buffer(self.sock)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.address: tuple[str, int] = self.sock.getsockname()[:2]
        self.received: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            self.received.append(data)
            if self.echo:
                self.sock.sendto(data, addr)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    """Read exactly ``n`` bytes (the socket's timeout bounds every read)."""
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(65536, n - len(buf)))
        if not chunk:
            raise AssertionError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, last: Callable[[], object]) -> None:
    """Poll ``predicate`` until true; on timeout fail naming what was awaited and the last value seen."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}; last seen: {last()!r}")
        time.sleep(0.01)  # a bounded poll of a condition owned by another thread
