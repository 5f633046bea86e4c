"""An RFC 2217 (telnet COM-port control) forwarder in front of a serial device.

Puts a local serial port (a real UART or a twin's pty) on the network so a console can reach it
as ``rfc2217://127.0.0.1:<port>``, exactly like a lab's terminal server. One client at a time
(further clients are refused until it leaves), like ser2net. Telnet/RFC 2217 negotiation and
escaping are pyserial's :class:`serial.rfc2217.PortManager`.

    with Rfc2217Server("/dev/pts/7") as server:
        console = Console(server.url)
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from typing import Any

import serial
import serial.rfc2217

from harness.errors import ConsoleError

log = logging.getLogger(__name__)

#: How often the loops re-check whether they should stop (seconds).
POLL = 0.2


class _TolerantPort:
    """The serial port as PortManager sees it: settings a pty cannot take are logged and ignored.

    A pseudo-terminal has no modem lines, so ``port.rts = True`` fails with ENOTTY; a client's
    line-control request must not end the session for that.
    """

    def __init__(self, port: serial.SerialBase) -> None:
        object.__setattr__(self, "_port", port)

    def __getattr__(self, name: str) -> Any:
        try:
            return getattr(self._port, name)
        except (serial.SerialException, OSError) as exc:
            if name in ("cts", "dsr", "ri", "cd"):
                return False
            raise ConsoleError(f"rfc2217 server: reading {name} failed: {exc}") from exc

    def __setattr__(self, name: str, value: Any) -> None:
        try:
            setattr(self._port, name, value)
        except (serial.SerialException, OSError, ValueError) as exc:
            log.debug("rfc2217 server: ignoring %s=%r on %s: %s", name, value, self._port.port, exc)


class _Client:
    """One connected client: serial -> socket in a thread, socket -> serial in another."""

    def __init__(self, port: serial.SerialBase, conn: socket.socket) -> None:
        self.port = port
        self.conn = conn
        self._send_lock = threading.Lock()
        self.alive = threading.Event()
        self.alive.set()
        self.manager = serial.rfc2217.PortManager(_TolerantPort(port), self)
        self.bytes_to_client = 0
        self.bytes_to_device = 0

    def write(self, data: bytes) -> None:
        """Used by PortManager for telnet replies, and by the serial->socket pump."""
        with self._send_lock:
            self.conn.sendall(data)

    def pump_device(self) -> None:
        while self.alive.is_set():
            try:
                waiting = self.port.in_waiting
                data = self.port.read(waiting if waiting > 0 else 1)
                if data:
                    self.write(b"".join(self.manager.escape(data)))
                    self.bytes_to_client += len(data)
            except (serial.SerialException, OSError) as exc:
                log.debug("rfc2217 device->client stopped: %s", exc)
                break
        self.alive.clear()

    def pump_client(self) -> None:
        self.conn.settimeout(POLL)
        while self.alive.is_set():
            try:
                data = self.conn.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            try:
                payload = b"".join(self.manager.filter(data))
                if payload:
                    self.port.write(payload)
                    self.bytes_to_device += len(payload)
            except (serial.SerialException, OSError, ValueError) as exc:
                log.debug("rfc2217 client->device stopped: %s", exc)
                break
        self.alive.clear()

    def close(self) -> None:
        self.alive.clear()
        with contextlib.suppress(OSError):
            self.conn.shutdown(socket.SHUT_RDWR)
        self.conn.close()


class Rfc2217Server:
    """Serve ``device`` (any pyserial URL or path) over RFC 2217 on ``host:port`` (0 = a free port)."""

    def __init__(self, device: str, *, host: str = "127.0.0.1", port: int = 0, baudrate: int = 115200) -> None:
        self.device = device
        self.host = host
        self.requested_port = port
        self.baudrate = baudrate
        self.port = 0
        self._listener: socket.socket | None = None
        self._serial: serial.SerialBase | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._client: _Client | None = None
        self._lock = threading.Lock()
        self._stats = {"clients": 0, "refused": 0, "bytes_to_client": 0, "bytes_to_device": 0}

    @property
    def url(self) -> str:
        """The URL a :class:`~harness.drivers.console.Console` opens to reach the device."""
        return f"rfc2217://{self.host}:{self.port}"

    def start(self) -> Rfc2217Server:
        """Open the device and listen. Raises :class:`ConsoleError` naming the device or address."""
        try:
            self._serial = serial.serial_for_url(self.device, baudrate=self.baudrate, timeout=POLL)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise ConsoleError(f"rfc2217 server: cannot open {self.device}: {exc}") from exc
        try:
            self._listener = socket.create_server((self.host, self.requested_port))
        except OSError as exc:
            self._serial.close()
            self._serial = None
            raise ConsoleError(f"rfc2217 server: cannot listen on {self.host}:{self.requested_port}: {exc}") from exc
        self._listener.settimeout(POLL)
        self.port = self._listener.getsockname()[1]
        self._stop.clear()
        self._spawn(self._accept_loop, "rfc2217-accept")
        return self

    def stop(self) -> None:
        """Disconnect the client, stop listening, close the device; joins every thread."""
        self._stop.set()
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        for thread in self._threads:
            thread.join(timeout=POLL * 10)
        self._threads.clear()
        if self._serial is not None:
            self._serial.close()
            self._serial = None

    def statistics(self) -> dict[str, Any]:
        """Clients served and refused, bytes forwarded each way."""
        stats = dict(self._stats)
        client = self._client
        if client is not None:
            stats["bytes_to_client"] += client.bytes_to_client
            stats["bytes_to_device"] += client.bytes_to_device
        return {**stats, "url": self.url, "device": self.device, "connected": client is not None}

    def __enter__(self) -> Rfc2217Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, target: Any, name: str, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()]
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        while not self._stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                busy = self._client is not None and self._client.alive.is_set()
            if busy or self._serial is None:
                self._stats["refused"] += 1
                conn.close()
                continue
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client = _Client(self._serial, conn)
            with self._lock:
                self._client = client
            self._stats["clients"] += 1
            self._spawn(self._serve, "rfc2217-client", client)

    def _serve(self, client: _Client) -> None:
        reader = threading.Thread(target=client.pump_device, name="rfc2217-device", daemon=True)
        reader.start()
        client.pump_client()
        client.close()
        reader.join(timeout=POLL * 10)
        self._stats["bytes_to_client"] += client.bytes_to_client
        self._stats["bytes_to_device"] += client.bytes_to_device
        with self._lock:
            if self._client is client:
                self._client = None
