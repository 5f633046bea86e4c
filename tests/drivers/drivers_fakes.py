"""Small fake devices for the driver tests: a shell on a pty or a TCP socket, and a SCPI supply.

The shell speaks like the twin's (banner, ``BOOT-DONE``, prompt ``twin> ``, echo, ``version``,
``dump N``); the SCPI server understands the generic, Rigol DP800, Keysight E36300 and Siglent
SPD3303 command forms and keeps a SCPI error queue. They let the drivers be tested without the
twin, and on transports (TCP) the twin does not offer.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import socket
import threading
import tty
import zlib
from collections.abc import Callable

PROMPT = "twin> "
BANNER = ["fake bootloader 0.1", "slot A ok", "BOOT-DONE"]


class FakeShell:
    """Sans-IO shell: bytes in, bytes out."""

    def __init__(self) -> None:
        self._line = bytearray()

    def boot(self) -> bytes:
        return ("\r\n".join(BANNER) + "\r\n" + PROMPT).encode()

    def feed(self, data: bytes) -> bytes:
        out = bytearray()
        for byte in data:
            if byte in (0x0D, 0x0A):
                out += b"\r\n"
                out += self._run(self._line.decode())
                out += PROMPT.encode()
                self._line.clear()
            else:
                self._line.append(byte)
                out.append(byte)
        return bytes(out)

    def _run(self, cmd: str) -> bytes:
        cmd = cmd.strip()
        if not cmd:
            return b""
        if cmd == "version":
            return b"fw 1.0.0 slot=A fake\r\n"
        match = re.fullmatch(r"dump (\d+)", cmd)
        if match:
            return dump_bytes(int(match.group(1)))
        return f"ERR unknown command: {cmd}\r\n".encode()


def dump_bytes(n: int) -> bytes:
    """``n // 64`` numbered lines of exactly 64 bytes, then the DUMP-END trailer, like the twin."""
    lines = [(f"{i:08d} " + "x" * 53 + "\r\n").encode() for i in range(n // 64)]
    body = b"".join(lines)
    return body + f"DUMP-END lines={len(lines)} bytes={len(body)} crc32={zlib.crc32(body):08x}\r\n".encode()


class PtyDevice:
    """The fake shell behind a pseudo-terminal; ``path`` is the tty a console opens."""

    def __init__(self) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        self.shell = FakeShell()
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> PtyDevice:
        self._thread.start()
        return self

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            _, writable, _ = select.select([], [self._master], [], 10)
            if not writable:
                raise TimeoutError("pty master not writable for 10 s")
            view = view[os.write(self._master, view) :]

    def boot(self) -> None:
        self.write(self.shell.boot())

    def _run(self) -> None:
        while True:
            ready, _, _ = select.select([self._master, self._stop_r], [], [], 30)
            if self._stop_r in ready:
                return
            if self._master in ready:
                try:
                    data = os.read(self._master, 4096)
                except OSError:
                    return
                reply = self.shell.feed(data)
                if reply:
                    self.write(reply)

    def stop(self) -> None:
        os.write(self._stop_w, b"x")
        self._thread.join(timeout=10)
        for fd in (self._master, self._slave, self._stop_r, self._stop_w):
            os.close(fd)


class TcpServer:
    """A loopback TCP server on a free port running ``handler(conn)`` per client in a thread."""

    def __init__(self, handler: Callable[[socket.socket, threading.Event], None]) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._handler = handler
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self._accept = threading.Thread(target=self._accept_loop, daemon=True)
        self._accept.start()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._conns.append(conn)
            thread = threading.Thread(target=self._handler, args=(conn, self._stop), daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._accept.join(timeout=10)
        self._listener.close()
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        for thread in self._threads:
            thread.join(timeout=10)


def serve_shell(conn: socket.socket, stop: threading.Event) -> None:
    """TCP handler: the fake shell, booted as soon as the client connects."""
    shell = FakeShell()
    conn.sendall(shell.boot())
    conn.settimeout(0.2)
    while not stop.is_set():
        try:
            data = conn.recv(4096)
        except TimeoutError:
            continue
        except OSError:
            return
        if not data:
            return
        conn.sendall(shell.feed(data))


class FakeSupply:
    """A SCPI supply's state and command parser (all four dialects' forms)."""

    def __init__(self, channels: int = 3) -> None:
        self.selected = 1
        self.output = dict.fromkeys(range(1, channels + 1), False)
        self.volts = dict.fromkeys(range(1, channels + 1), 0.0)
        self.amps = dict.fromkeys(range(1, channels + 1), 0.0)
        self.errors: list[tuple[int, str]] = []
        self.log: list[str] = []

    def handle(self, line: str) -> str | None:
        self.log.append(line)
        cmd = line.strip()
        upper = cmd.upper().lstrip(":")
        try:
            return self._dispatch(upper)
        except (KeyError, ValueError, IndexError):
            self.errors.append((-113, "Undefined header"))
            return None

    def _dispatch(self, c: str) -> str | None:
        if c == "*IDN?":
            return "FAKE,PSU-3,0001,1.0"
        if c == "SYST:ERR?":
            return '{},"{}"'.format(*self.errors.pop(0)) if self.errors else '0,"No error"'
        if m := re.fullmatch(r"INST:NSEL (\d+)", c):
            self._channel(int(m.group(1)))
            self.selected = int(m.group(1))
            return None
        if m := re.fullmatch(r"OUTP (ON|OFF|1|0)(?:,\(@(\d+)\))?", c):
            ch = self._channel(int(m.group(2) or self.selected))
            self.output[ch] = m.group(1) in ("ON", "1")
            return None
        if m := re.fullmatch(r"OUTP CH(\d+),(ON|OFF)", c):
            self.output[self._channel(int(m.group(1)))] = m.group(2) == "ON"
            return None
        if m := re.fullmatch(r"OUTP\? ?(?:CH(\d+)|\(@(\d+)\))?", c):
            ch = self._channel(int(m.group(1) or m.group(2) or self.selected))
            on = self.output[ch]
            return ("ON" if on else "OFF") if m.group(1) else ("1" if on else "0")
        if m := re.fullmatch(r"APPL CH(\d+),([-\d.]+),([-\d.]+)", c):
            ch = self._channel(int(m.group(1)))
            self.volts[ch], self.amps[ch] = float(m.group(2)), float(m.group(3))
            return None
        if c == "SYST:STAT?":
            return hex(self.output[1] << 4 | self.output[2] << 5)
        if m := re.fullmatch(r"(?:CH(\d+):|SOUR(\d+):)?(VOLT|CURR) ([-\d.]+)(?:,\(@(\d+)\))?", c):
            ch = self._channel(int(m.group(1) or m.group(2) or m.group(5) or self.selected))
            value = float(m.group(4))
            if value < 0 or value > 30:
                self.errors.append((-222, "Data out of range"))
                return None
            (self.volts if m.group(3) == "VOLT" else self.amps)[ch] = value
            return None
        if m := re.fullmatch(r"MEAS:(VOLT|CURR)\? ?(?:CH(\d+)|\(@(\d+)\))?", c):
            ch = self._channel(int(m.group(2) or m.group(3) or self.selected))
            if not self.output[ch]:
                return "0.000"
            return f"{self.volts[ch]:.3f}" if m.group(1) == "VOLT" else f"{min(self.amps[ch], 0.05):.4f}"
        raise KeyError(c)

    def _channel(self, ch: int) -> int:
        if ch not in self.output:
            raise IndexError(ch)
        return ch


def scpi_handler(supply: FakeSupply) -> Callable[[socket.socket, threading.Event], None]:
    """TCP handler answering newline-terminated SCPI commands for ``supply``."""

    def handle(conn: socket.socket, stop: threading.Event) -> None:
        conn.settimeout(0.2)
        pending = b""
        while not stop.is_set():
            try:
                data = conn.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            pending += data
            while b"\n" in pending:
                raw, pending = pending.split(b"\n", 1)
                reply = supply.handle(raw.decode())
                if reply is not None:
                    conn.sendall(reply.encode() + b"\n")

    return handle
