"""The same console over socket://, over our RFC 2217 forwarder, and through Debian's ser2net."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from drivers_fakes import PROMPT, PtyDevice, TcpServer

from harness.drivers.console import Console
from harness.drivers.rfc2217_server import Rfc2217Server
from harness.errors import ConsoleError


def check_shell(con: Console) -> None:
    assert con.command("version", timeout=20) == "fw 1.0.0 slot=A fake"
    con.sendline("dump 64000")
    end = con.expect(r"DUMP-END lines=(\d+) bytes=(\d+) crc32=(\w+)\r\n", timeout=60, regex=True)
    assert end.groups()[:2] == ("1000", "64000")
    body = con.before.split("\r\n", 1)[1]
    assert [int(line[:8]) for line in body.split("\r\n")[:-1]] == list(range(1000))


def test_socket_url(tcp_shell: TcpServer) -> None:
    # pyserial's socket:// open() discards input already received, so the banner may be gone
    with Console(f"socket://127.0.0.1:{tcp_shell.port}", prompt=PROMPT) as con:
        check_shell(con)


@pytest.fixture
def rfc2217(pty_device: PtyDevice) -> Iterator[Rfc2217Server]:
    server = Rfc2217Server(pty_device.path).start()
    try:
        yield server
    finally:
        server.stop()


def test_rfc2217_url_through_our_forwarder(pty_device: PtyDevice, rfc2217: Rfc2217Server) -> None:
    assert rfc2217.url == f"rfc2217://127.0.0.1:{rfc2217.port}" and rfc2217.port > 0
    with Console(rfc2217.url, prompt=PROMPT) as con:
        pty_device.boot()
        con.expect("BOOT-DONE", timeout=20)
        check_shell(con)
    stats = rfc2217.statistics()
    assert stats["clients"] == 1 and stats["bytes_to_client"] > 64000


def test_rfc2217_forwarder_serves_clients_one_after_another(pty_device: PtyDevice, rfc2217: Rfc2217Server) -> None:
    for _ in range(2):
        with Console(rfc2217.url, prompt=PROMPT) as con:
            assert con.command("version", timeout=20) == "fw 1.0.0 slot=A fake"


def test_rfc2217_forwarder_refuses_a_second_concurrent_client(rfc2217: Rfc2217Server) -> None:
    with Console(rfc2217.url, prompt=PROMPT) as con:
        assert con.command("version", timeout=20) == "fw 1.0.0 slot=A fake"
        with pytest.raises(ConsoleError, match=re.escape(f"cannot open {rfc2217.url}")):
            Console(rfc2217.url).open()
    assert rfc2217.statistics()["refused"] == 1


def test_rfc2217_forwarder_on_missing_device_names_it(tmp_path: Path) -> None:
    with pytest.raises(ConsoleError, match=r"rfc2217 server: cannot open .*no-tty"):
        Rfc2217Server(str(tmp_path / "no-tty")).start()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"ser2net exited with {proc.returncode}: {proc.stderr.read()!r}")  # type: ignore[union-attr]
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            pass
        try:  # a foreign daemon has no readiness event: poll, noticing if it exits
            proc.wait(timeout=0.05)
        except subprocess.TimeoutExpired:
            continue
    raise AssertionError(f"ser2net did not listen on 127.0.0.1:{port} within {timeout}s")


@pytest.fixture
def ser2net(pty_device: PtyDevice, tmp_path: Path) -> Iterator[str]:
    binary = shutil.which("ser2net") or ("/usr/sbin/ser2net" if Path("/usr/sbin/ser2net").exists() else None)
    if binary is None:
        pytest.skip("ser2net is not installed (Debian package 'ser2net')")
    port = _free_port()
    config = tmp_path / "ser2net.yaml"
    config.write_text(
        "%YAML 1.1\n---\n"
        "connection: &con\n"
        f"    accepter: telnet(rfc2217),tcp,127.0.0.1,{port}\n"
        "    enable: on\n"
        f"    connector: serialdev,{pty_device.path},115200n81,local\n"
    )
    proc = subprocess.Popen(
        [binary, "-n", "-u", "-c", str(config), "-P", str(tmp_path / "ser2net.pid")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_listening(port, proc, timeout=20)
        # ser2net does not acknowledge modem-line control on a pty: pyserial's ign_set_control
        yield f"rfc2217://127.0.0.1:{port}?ign_set_control"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        assert proc.stderr is not None
        proc.stderr.close()
    assert proc.poll() is not None


def test_rfc2217_url_through_ser2net(pty_device: PtyDevice, ser2net: str) -> None:
    with Console(ser2net, prompt=PROMPT) as con:
        pty_device.boot()
        con.expect("BOOT-DONE", timeout=20)
        check_shell(con)
