"""Console behaviour over pyserial's loop:// and over a fake shell on a real pseudo-terminal."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import threading
import tty
from collections.abc import Iterator
from pathlib import Path

import pytest
from drivers_fakes import PROMPT, PtyDevice, TcpServer

from harness.drivers import console as console_module
from harness.drivers.console import Console
from harness.errors import ConsoleError, ExpectTimeout
from harness.run.journal import Journal, read_journal


@pytest.fixture
def loop() -> Iterator[Console]:
    """A console on loop://: everything sent comes straight back."""
    con = Console("loop://", name="loop", prompt=PROMPT)
    con.open()
    try:
        yield con
    finally:
        con.close()


@pytest.fixture
def shell(pty_device: PtyDevice) -> Iterator[Console]:
    """A console on the fake shell's pty, booted to its prompt."""
    con = Console(pty_device.path, prompt=PROMPT)
    con.open()
    try:
        pty_device.boot()
        con.expect("BOOT-DONE", timeout=20)
        con.expect(PROMPT, timeout=20)
        yield con
    finally:
        con.close()


def test_literal_pattern_is_not_a_regex(loop: Console) -> None:
    loop.send("value (a+b) = 3\r\n")
    match = loop.expect("(a+b)", timeout=10)
    assert match.group(0) == "(a+b)"
    assert loop.before == "value "


def test_regex_pattern_compiled_or_flagged(loop: Console) -> None:
    loop.send("temp=21.5C\r\nrssi=-67\r\n")
    assert loop.expect(re.compile(r"temp=([\d.]+)C"), timeout=10).group(1) == "21.5"
    assert loop.expect(r"rssi=(-?\d+)", timeout=10, regex=True).group(1) == "-67"


def test_expect_consumes_so_the_same_text_is_not_matched_twice(loop: Console) -> None:
    loop.send("OK\r\n")
    loop.expect("OK", timeout=10)
    with pytest.raises(ExpectTimeout):
        loop.expect("OK", timeout=0.3)


def test_list_returns_index_of_earliest_match(loop: Console) -> None:
    loop.send("booting\r\nERR flash\r\nBOOT-DONE\r\n")
    index = loop.expect(["BOOT-DONE", re.compile(r"ERR (\w+)")], timeout=10)
    assert index == 1
    assert loop.match is not None and loop.match.group(1) == "flash"
    assert loop.expect(["BOOT-DONE", "ERR"], timeout=10) == 0


def test_pattern_split_across_many_writes_is_found(loop: Console) -> None:
    for piece in ("BO", "OT", "-D", "ON", "E\r\n"):
        loop.send(piece)
    assert loop.expect("BOOT-DONE", timeout=10).group(0) == "BOOT-DONE"


def test_timeout_names_pattern_timeout_port_and_last_lines(loop: Console) -> None:
    loop.send("line one\r\nline two\r\nprompt> ")
    with pytest.raises(ExpectTimeout) as info:
        loop.expect("never", timeout=0.3)
    err = info.value
    assert err.pattern == "never"
    assert err.timeout == 0.3
    assert err.port == "loop://"
    assert err.last_lines[-3:] == ["line one", "line two", "prompt> "]
    assert "timed out after 0.3s waiting for 'never' on loop://" in str(err)
    assert loop.statistics()["timeouts"] == 1


def test_lines_mark_tail_and_statistics(loop: Console) -> None:
    loop.send("a\r\n")
    loop.expect("a\r\n", timeout=10)
    mark = loop.mark()
    loop.send("b\r\nc\r\npartial")
    loop.expect("partial", timeout=10)
    assert loop.lines_since(mark) == ["b", "c"]
    assert loop.log_tail(2) == ["c", "partial"]
    timed = loop.timed_lines_since(mark)
    assert [line for _, line in timed] == ["b", "c"] and all(t > 0 for t, _ in timed)
    stats = loop.statistics()
    assert stats["lines_received"] == 3
    assert stats["bytes_received"] == stats["bytes_sent"] == len("a\r\nb\r\nc\r\npartial")


def test_read_available_and_flush_input(loop: Console) -> None:
    loop.send("abc\r\n")
    loop.expect("\n", timeout=10)
    loop.send("xyz")
    loop.expect("z", timeout=10)
    loop.send("123\r\n")
    loop.expect("3\r\n", timeout=10)
    loop.send("tail")
    loop.expect("tail", timeout=10)
    loop.send("more")
    loop.expect(re.compile("mo"), timeout=10)
    assert loop.read_available() == "re"
    loop.send("junk")
    loop.expect("junk", timeout=10)
    assert loop.flush_input() == 0


def test_every_line_is_journaled_with_source(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.jsonl")
    try:
        with Console("loop://", name="dut7", journal=journal) as con:
            con.send("hello\r\nworld\r\n")
            con.expect("world\r\n", timeout=10)
    finally:
        journal.close()
    records = [r for r in read_journal(tmp_path / "journal.jsonl") if r["kind"] == "console"]
    assert [(r["source"], r["line"]) for r in records] == [("dut7", "hello"), ("dut7", "world")]


def test_command_strips_echo_and_prompt(shell: Console) -> None:
    assert shell.command("version", timeout=20) == "fw 1.0.0 slot=A fake"
    assert shell.command("frobnicate", timeout=20) == "ERR unknown command: frobnicate"


def test_command_ignores_stale_prompt_already_buffered(pty_device: PtyDevice, shell: Console) -> None:
    pty_device.write(b"\r\nasync log line\r\n" + PROMPT.encode())
    shell.expect("async log line", timeout=20)
    assert shell.command("version", timeout=20) == "fw 1.0.0 slot=A fake"


def test_command_without_prompt_is_a_clear_error(loop: Console) -> None:
    loop.prompt = None
    with pytest.raises(ConsoleError, match="needs a prompt"):
        loop.command("version")


def test_dump_over_pty_loses_no_byte(shell: Console) -> None:
    mark = shell.mark()
    shell.sendline("dump 320000")
    end = shell.expect(re.compile(r"DUMP-END lines=(\d+) bytes=(\d+) crc32=(\w+)\r\n"), timeout=60)
    assert end.groups()[:2] == ("5000", "320000")
    body = shell.before.split("\r\n", 1)[1]  # after the echoed command
    assert len(body) == 320000
    assert [int(line[:8]) for line in body.split("\r\n")[:-1]] == list(range(5000))
    numbered = [line for line in shell.lines_since(mark) if re.fullmatch(r"\d{8} x{53}", line)]
    assert [int(line[:8]) for line in numbered] == list(range(5000))


def test_silence_of_a_dead_device_is_a_timeout_not_an_error(pty_device: PtyDevice, shell: Console) -> None:
    with pytest.raises(ExpectTimeout):
        shell.expect("BOOT-DONE", timeout=0.5)
    pty_device.boot()
    shell.expect("BOOT-DONE", timeout=20)


def test_open_failure_names_the_url(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-tty"
    with pytest.raises(ConsoleError, match=re.escape(f"cannot open {missing}")):
        Console(str(missing)).open()
    with pytest.raises(ConsoleError, match="cannot open bogus://x"):
        Console("bogus://x").open()


def test_use_before_open_is_a_clear_error() -> None:
    with pytest.raises(ConsoleError, match="is not open"):
        Console("loop://").send("x")


def test_peer_going_away_fails_waiting_expect_with_console_error() -> None:
    def hang_up(conn: socket.socket, stop: object) -> None:
        conn.settimeout(20)
        with contextlib.suppress(OSError):
            conn.recv(1)  # socket:// open() discards early input: speak only when spoken to
            conn.sendall(b"bye\r\n")
        conn.close()

    server = TcpServer(hang_up)
    con = Console(f"socket://127.0.0.1:{server.port}")
    try:
        con.open()
        con.send("hello\r")
        con.expect("bye", timeout=10)
        with pytest.raises(ConsoleError, match="failed while waiting for 'never'") as info:
            con.expect("never", timeout=20)
        assert not isinstance(info.value, ExpectTimeout)
    finally:
        con.close()
        server.stop()


def test_every_line_of_a_dump_reaches_the_journal_in_order(pty_device: PtyDevice, tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.jsonl")
    try:
        with Console(pty_device.path, prompt=PROMPT, journal=journal, name="dut") as con:
            pty_device.boot()
            con.expect(PROMPT, timeout=20)
            assert con.command("version", timeout=20) == "fw 1.0.0 slot=A fake"
            con.sendline("dump 128000")
            con.expect(re.compile(r"DUMP-END lines=2000 [^\r]*\r\n"), timeout=60)
    finally:
        journal.close()
    lines = [r["line"] for r in read_journal(tmp_path / "journal.jsonl") if r["kind"] == "console"]
    numbered = [int(line[:8]) for line in lines if re.fullmatch(r"\d{8} x{53}", line)]
    assert numbered == list(range(2000))
    assert lines.index("fw 1.0.0 slot=A fake") < lines.index("00000000 " + "x" * 53)
    assert lines[-1] == PROMPT  # the incomplete last line is logged on close


def test_write_to_a_device_that_never_reads_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    monkeypatch.setattr(console_module, "WRITE_TIMEOUT", 0.5)
    con = Console(os.ttyname(slave))
    try:
        con.open()
        with pytest.raises(ConsoleError, match=r"write to .* failed: write timed out after 0.5s"):
            for _ in range(1000):  # the pty's buffer is far smaller than 1000 x 64 KiB
                con.send(b"x" * 65536)
    finally:
        con.close()
        os.close(master)
        os.close(slave)


def test_expect_from_a_second_thread_is_woken_by_the_first(shell: Console) -> None:
    found: list[str] = []
    errors: list[BaseException] = []

    def wait_for_version() -> None:
        try:
            found.append(shell.expect(re.compile(r"fw ([\d.]+)"), timeout=20).group(1))
        except BaseException as exc:  # reported below, in the test thread
            errors.append(exc)

    waiter = threading.Thread(target=wait_for_version)
    waiter.start()
    try:
        shell.sendline("version")
        waiter.join(timeout=30)
    finally:
        waiter.join(timeout=30)
    assert not errors and found == ["1.0.0"]


def test_a_console_can_be_reopened(pty_device: PtyDevice) -> None:
    con = Console(pty_device.path, prompt=PROMPT)
    try:
        for _ in range(2):
            con.open()
            assert con.command("version", timeout=20) == "fw 1.0.0 slot=A fake"
            con.close()
            assert not con.statistics()["reader_alive"]
    finally:
        con.close()
