"""A serial console over any pyserial URL, with a background reader and pexpect-style ``expect``.

``Console("/dev/pts/7")``, ``Console("rfc2217://lab3:4001")``, ``Console("socket://127.0.0.1:4000")``
and ``Console("loop://")`` all behave the same. A reader thread drains the port continuously (so
no byte is lost while the test is busy elsewhere), splits the stream into timestamped lines for the
journal and an in-memory log, and keeps the unconsumed text for :meth:`Console.expect`, which waits
on a condition variable and searches only what arrived since its last look.

    with Console(url, prompt="twin> ", journal=journal) as con:
        con.expect("BOOT-DONE", timeout=30)
        version = con.command("version")
"""

from __future__ import annotations

import codecs
import contextlib
import os
import re
import select
import threading
import time
from collections import deque
from typing import Any, overload

import serial

from harness.drivers.console_buffer import Hit, Stage, StagedSearch, TextBuffer
from harness.errors import ConsoleError, ExpectTimeout
from harness.run.journal import Journal

Pattern = str | re.Pattern[str]

#: How far back (characters) a regex search looks into text it has already scanned.
DEFAULT_LOOKBACK = 8192
#: A line longer than this without a newline is logged as a line anyway.
MAX_LINE = 8192
#: A write that cannot complete in this long (device not reading) raises ConsoleError.
WRITE_TIMEOUT = 10.0
#: What a failing port raises while reading (pyserial's handlers are not uniform).
READ_ERRORS = (serial.SerialException, OSError, TypeError, AttributeError)
#: After an expecting thread read the port itself, the reader thread resumes this much later.
RESUME_AFTER = 0.02
#: Largest single read from a local tty fd.
FD_READ_SIZE = 1 << 16
#: Compiled patterns kept for repeated expects and commands.
STAGE_CACHE = 256
#: Journal lines written per idle moment of the port (about half a millisecond of work).
JOURNAL_STEP = 32
#: While waiting on the device, journal once this many lines are backlogged (until none are).
JOURNAL_MIN_LINES = 256
#: Journal lines at most this late (seconds) even when nobody waits on the console.
JOURNAL_LAG = 0.5
#: Above this many unjournaled lines the reader journals before reading on (backpressure).
MAX_BACKLOG = 200_000
#: How long the reader's blocking read waits before re-checking whether it should stop.
READ_POLL = 0.2


class Console:
    """One serial console: open/close, send, expect, command, and a log of every line received.

    ``prompt`` is needed by :meth:`command`. ``echo`` says the device echoes what is typed, so
    :meth:`command` strips the echoed command from its output. ``lookback`` bounds how far a
    *regex* search re-reads already scanned text; literal patterns are always found exactly.
    """

    def __init__(
        self,
        url: str,
        *,
        baudrate: int = 115200,
        name: str = "dut",
        journal: Journal | None = None,
        prompt: Pattern | None = None,
        line_ending: str = "\r",
        echo: bool = True,
        encoding: str = "utf-8",
        log_lines: int = 10000,
        lookback: int = DEFAULT_LOOKBACK,
    ) -> None:
        self.url = url
        self.baudrate = baudrate
        self.name = name
        self.journal = journal
        self.prompt = prompt
        self.line_ending = line_ending
        self.echo = echo
        self.encoding = encoding
        self.lookback = lookback
        self.before = ""
        self.match: re.Match[str] | None = None
        self._serial: serial.SerialBase | None = None
        self._reader: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()  # guards buffer, log, waiters; taken directly on the hot path
        self._cond = threading.Condition(self._lock)
        self._stage_cache: dict[tuple[object, ...], Stage] = {}
        self._read_lock = threading.Lock()  # held by whichever thread is reading the port
        self._direct = False  # an expecting thread is reading the port itself
        self._direct_capable = False
        self._fd = -1
        self._socket_port = False
        self._direct_until = 0.0  # the reader stays parked until then (monotonic)
        self._reader_parked = False
        self._write_lock = threading.Lock()
        self._buffer = TextBuffer()
        self._waiters: list[StagedSearch] = []
        self._backlog: deque[tuple[float, list[str]]] = deque()
        self._backlog_lines = 0
        self._draining = False  # journaling a backlog that reached JOURNAL_MIN_LINES
        self._log: deque[tuple[float, str]] = deque(maxlen=log_lines)
        self._lines_total = 0
        self._partial = ""
        self._decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        self._failure: BaseException | None = None
        self._stats = {"bytes_received": 0, "bytes_sent": 0, "expects": 0, "timeouts": 0}

    # -- lifecycle -------------------------------------------------------------------------

    def open(self) -> Console:
        """Open the port and start the reader thread. Raises :class:`ConsoleError` naming the URL."""
        if self._serial is not None:
            return self
        try:
            port = serial.serial_for_url(self.url, do_not_open=True, baudrate=self.baudrate)
            port.timeout = READ_POLL
            local_tty = isinstance(port, serial.Serial)
            if not local_tty and not self.url.startswith("rfc2217://"):  # rfc2217 refuses one
                port.write_timeout = WRITE_TIMEOUT
            port.open()
        except (serial.SerialException, OSError, ValueError, NotImplementedError) as exc:
            raise ConsoleError(f"console {self.name}: cannot open {self.url}: {exc}") from exc
        self._serial = port
        # A local tty can be read by the waiting thread itself (select on its fd, cancellable
        # reader); network and loop ports are read by the reader thread only.
        self._direct_capable = local_tty and hasattr(port, "cancel_read")
        self._fd = port.fileno() if self._direct_capable else -1
        self._socket_port = self.url.startswith("socket://")
        self._direct, self._direct_until, self._reader_parked = False, 0.0, False
        self._decoder.reset()
        self._stop.clear()
        self._failure = None
        self._reader = threading.Thread(target=self._read_loop, name=f"console-{self.name}", daemon=True)
        self._reader.start()
        return self

    def close(self) -> None:
        """Stop the reader, close the port, and log any incomplete last line."""
        port, self._serial = self._serial, None
        if port is None:
            return
        self._stop.set()
        with self._cond:
            self._cond.notify_all()  # a parked reader
        cancel = getattr(port, "cancel_read", None)
        if cancel is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                cancel()
        if self._reader is not None:
            self._reader.join(timeout=READ_POLL * 10)
            self._reader = None
        with contextlib.suppress(serial.SerialException, OSError):
            port.close()
        with self._cond:
            tail, self._partial = self._partial, ""
            if tail:
                self._log_lines([tail], time.time())
            self._cond.notify_all()
        self._journal_some(None)

    @property
    def is_open(self) -> bool:
        return self._serial is not None

    def __enter__(self) -> Console:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------------------

    def send(self, data: str | bytes) -> None:
        """Write raw text or bytes to the port."""
        port = self._port()
        raw = data.encode(self.encoding) if isinstance(data, str) else bytes(data)
        try:
            with self._write_lock:
                if self._direct_capable:
                    _write_fd(self._fd, raw, WRITE_TIMEOUT)
                else:
                    port.write(raw)
        except (serial.SerialException, OSError) as exc:
            raise ConsoleError(f"console {self.name}: write to {self.url} failed: {exc}") from exc
        self._stats["bytes_sent"] += len(raw)

    def sendline(self, text: str = "") -> None:
        """Write ``text`` followed by the line ending (``\\r`` unless configured otherwise)."""
        self.send(text + self.line_ending)

    # -- expecting -------------------------------------------------------------------------

    @overload
    def expect(self, pattern: Pattern, timeout: float = 10.0, *, regex: bool = False) -> re.Match[str]: ...

    @overload
    def expect(
        self, pattern: list[Pattern] | tuple[Pattern, ...], timeout: float = 10.0, *, regex: bool = False
    ) -> int: ...

    def expect(
        self,
        pattern: Pattern | list[Pattern] | tuple[Pattern, ...],
        timeout: float = 10.0,
        *,
        regex: bool = False,
    ) -> re.Match[str] | int:
        """Wait until ``pattern`` appears in the unconsumed output and consume up to its end.

        A ``str`` is a literal unless ``regex=True``; a compiled pattern is a regex. Returns the
        match; for a list of patterns returns the index of the one matching earliest (the match
        is then in :attr:`match`). The text before the match is in :attr:`before`. Raises
        :class:`ExpectTimeout` with the last lines seen.
        """
        single = isinstance(pattern, str | re.Pattern)
        items: list[Pattern] = [pattern] if isinstance(pattern, str | re.Pattern) else list(pattern)
        if not items:
            raise ValueError("expect: pattern list is empty")
        hits, self.before = self._wait([self._stage(items, regex)], timeout)
        self.match = hits[-1].match
        return self.match if single else hits[-1].index

    def command(self, cmd: str, timeout: float = 10.0) -> str:
        """Send ``cmd``, wait for the next prompt, and return the output in between.

        Output already buffered before the command is discarded (it stays in the log). With
        ``echo`` the prompt is looked for only after the echoed command line, which is not part
        of the output. Lines are joined with ``\\n``.
        """
        if self.prompt is None:
            raise ConsoleError(f"console {self.name}: command() needs a prompt (Console(..., prompt=...))")
        stages = [self._stage([self.prompt], regex=False)]
        if self.echo:
            stages.insert(0, self._echo_stage(cmd))
        _, output = self._wait(stages, timeout, send=cmd + self.line_ending)
        return _clean_output(output)

    def read_available(self) -> str:
        """Consume and return all unconsumed text received so far."""
        with self._cond:
            return self._buffer.consume(self._buffer.end)

    def flush_input(self) -> int:
        """Discard the unconsumed text (it stays in the line log and journal); returns its length."""
        with self._cond:
            return len(self._buffer.consume(self._buffer.end))

    # -- the line log ----------------------------------------------------------------------

    def mark(self) -> int:
        """A position in the line log: the number of complete lines received so far."""
        with self._cond:
            return self._lines_total

    def lines_since(self, mark: int) -> list[str]:
        """The complete lines received since :meth:`mark` (as many as the log still holds)."""
        return [line for _, line in self.timed_lines_since(mark)]

    def timed_lines_since(self, mark: int) -> list[tuple[float, str]]:
        """Like :meth:`lines_since`, with each line's receive time (Unix seconds)."""
        with self._cond:
            count = min(self._lines_total - mark, len(self._log))
            if count <= 0:
                return []
            return list(self._log)[-count:]

    def flush_journal(self) -> None:
        """Journal every line received so far now (lines are otherwise journaled in the port's idle time).

        Each record keeps its receive time, so readers that order by ``t`` see the true order.
        """
        self._journal_some(None)

    def log_tail(self, n: int = 50) -> list[str]:
        """The last ``n`` lines received, the incomplete current line (e.g. a prompt) last."""
        with self._cond:
            return self._tail_locked(n)

    def statistics(self) -> dict[str, Any]:
        """A snapshot of counters: bytes/lines received and sent, expects, timeouts, buffer size."""
        with self._cond:
            return {
                **self._stats,
                "lines_received": self._lines_total,
                "buffered_chars": len(self._buffer),
                "discarded_chars": self._buffer.discarded,
                "open": self._serial is not None,
                "reader_alive": self._reader is not None and self._reader.is_alive(),
                "url": self.url,
            }

    # -- internals -------------------------------------------------------------------------

    def _stage(self, items: list[Pattern], regex: bool) -> Stage:
        key = (regex, self.lookback, *items)
        stage = self._stage_cache.get(key)
        if stage is None:
            if len(self._stage_cache) >= STAGE_CACHE:
                self._stage_cache.clear()
            stage = self._stage_cache[key] = self._build_stage(items, regex)
        return stage

    def _echo_stage(self, cmd: str) -> Stage:
        key = ("echo", cmd)
        stage = self._stage_cache.get(key)
        if stage is None:
            if len(self._stage_cache) >= STAGE_CACHE:
                self._stage_cache.clear()
            echo = re.compile(re.escape(cmd) + r"\r*\n")
            stage = self._stage_cache[key] = Stage([echo], len(cmd) + 8, f"echo of {cmd!r}")
        return stage

    def _build_stage(self, items: list[Pattern], regex: bool) -> Stage:
        compiled = [_compile(item, regex) for item in items]
        lookback = max(len(i) - 1 if isinstance(i, str) and not regex else self.lookback for i in items)
        return Stage(compiled, lookback, _describe(items))

    def _wait(self, stages: list[Stage], timeout: float, send: str | None = None) -> tuple[list[Hit], str]:
        """Wait until every stage matched in order; consume through the last; return hits and
        the text between the previous stage (or the unconsumed start) and the last match.

        With ``send``, unconsumed output is discarded and ``send`` written once the wait is set
        up, so nothing but blocking happens between the write and the device's reply.
        """
        deadline = time.monotonic() + timeout
        self._stats["expects"] += 1
        lock = self._lock  # the condition's lock, taken directly on this hot path
        with lock:
            buffer = self._buffer
            if send is not None:
                buffer.consume(buffer.end)
            search = StagedSearch(stages, buffer.start)
            ready = send is None and search.advance(buffer)
            direct = not ready and self._direct_capable and not self._direct
            if not ready:
                self._waiters.append(search)
                self._direct = self._direct or direct
        try:
            if send is not None:
                self.send(send)
            if direct:
                self._wait_direct(search, deadline, timeout)
            elif not ready:
                self._wait_notified(search, deadline, timeout)
        except BaseException:
            if not ready:
                with lock:
                    self._end_wait(search, direct)
            raise
        with lock:
            if not ready:
                self._end_wait(search, direct)
            hits = search.hits
            last = hits[-1]
            before = buffer.text(hits[-2].end if len(hits) > 1 else buffer.start, last.start)
            buffer.consume(last.end)
            return hits, before

    def _end_wait(self, search: StagedSearch, direct: bool) -> None:
        self._waiters.remove(search)
        if direct:  # the reader resumes by itself after RESUME_AFTER
            self._direct = False
            self._direct_until = time.monotonic() + RESUME_AFTER

    def _matched(self, search: StagedSearch, timeout: float, deadline: float) -> float:
        """With the lock held: 0 if ``search`` is complete, else the time left; raises when there is
        none left or the port died."""
        if search.done and search.hits[0].start < self._buffer.start:
            search.advance(self._buffer)  # another thread consumed the text we matched: look again
        if search.done:
            return 0.0
        if self._failure is not None or self._serial is None:
            raise self._dead_error(search.pending.label)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            self._stats["timeouts"] += 1
            raise ExpectTimeout(search.pending.label, timeout, self._tail_locked(20), self.url)
        return remaining

    def _wait_notified(self, search: StagedSearch, deadline: float, timeout: float) -> None:
        """Sleep until the reader thread, which runs the search on every chunk, completes it."""
        with self._cond:
            while remaining := self._matched(search, timeout, deadline):
                self._cond.wait(remaining)

    def _wait_direct(self, search: StagedSearch, deadline: float, timeout: float) -> None:
        """Read the port in this thread while it waits (no thread hand-off on the reply path).

        The reader thread is asked to step aside (its blocking read is cancelled) and resumes when
        this wait ends; only one thread reads the port at any time (``_read_lock``).
        """
        port = self._serial
        if port is None:
            raise self._dead_error(search.pending.label)
        if not self._reader_parked:
            with contextlib.suppress(serial.SerialException, OSError):
                port.cancel_read()
        fd, lock = self._fd, self._lock
        remaining = max(deadline - time.monotonic(), 0.0)
        with self._read_lock:
            while True:
                try:
                    self._pump_fd(fd, min(remaining, READ_POLL))
                except READ_ERRORS as exc:
                    self._fail(exc)
                with lock:
                    remaining = self._matched(search, timeout, deadline)
                if not remaining:
                    return

    def _port(self) -> serial.SerialBase:
        port = self._serial
        if port is None:
            raise ConsoleError(f"console {self.name}: {self.url} is not open (call open() first)")
        return port

    def _read_loop(self) -> None:
        """Drain the port, except while (and shortly after) an expecting thread reads it itself.

        Staying parked for :data:`RESUME_AFTER` after a direct wait keeps a burst of commands
        free of thread hand-offs; the kernel's tty buffer holds what arrives meanwhile.
        """
        port = self._serial
        assert port is not None
        stop = self._stop
        cond = self._cond
        while not stop.is_set():
            with cond:
                while not stop.is_set():
                    pause = RESUME_AFTER if self._direct else self._direct_until - time.monotonic()
                    if pause <= 0:
                        break
                    self._reader_parked = True
                    cond.wait(pause)
                self._reader_parked = False
            with self._read_lock:
                if not self._direct and not self._pump(port):
                    break
        self._journal_some(None)

    def _pump(self, port: serial.SerialBase) -> bool:
        """One step of the reader thread (holding ``_read_lock``): journal a batch if the port is
        idle and journaling is due, else a pyserial read (cancellable by ``cancel_read``) of what
        arrives, fed to the buffer. False once the port has failed."""
        try:
            waiting = port.in_waiting
            if waiting == 0 and self._backlog and self._journal_now():
                self._journal_some(JOURNAL_STEP)
                return True
            data = port.read(waiting if waiting > 0 else 1)
        except READ_ERRORS as exc:
            self._fail(exc)
            return False
        if data and waiting == 0:  # woke on the first byte of a burst: take the rest too
            try:
                if self._socket_port:  # its in_waiting is only 0 or 1: drain without blocking
                    port.timeout = 0
                    data += port.read(FD_READ_SIZE)
                    port.timeout = READ_POLL
                elif more := port.in_waiting:
                    data += port.read(more)
            except READ_ERRORS as exc:
                self._feed(data)  # keep what arrived before the port failed
                self._fail(exc)
                return False
        if data:
            self._feed(data)
        return True

    def _pump_fd(self, fd: int, wait: float) -> None:
        """One step of an expecting thread reading a local tty: journal a batch if the fd is idle
        and journaling is due, else select up to ``wait`` s, ``os.read`` what is there, feed it."""
        if self._backlog and self._journal_now() and not select.select([fd], [], [], 0)[0]:
            self._journal_some(JOURNAL_STEP)
            return
        if not select.select([fd], [], [], wait)[0]:
            return
        try:
            data = os.read(fd, FD_READ_SIZE)
        except BlockingIOError:
            return
        if not data:
            raise serial.SerialException("device reports readiness to read but returned no data (hung up?)")
        self._feed(data)

    def _fail(self, exc: BaseException) -> None:
        if not self._stop.is_set():
            with self._cond:
                self._failure = exc
                self._cond.notify_all()

    def _feed(self, data: bytes) -> None:
        now = time.time()
        text = self._decoder.decode(data)
        self._stats["bytes_received"] += len(data)
        if not text:
            return
        lines = (self._partial + text).split("\n")
        partial = lines.pop()
        if len(partial) > MAX_LINE:
            lines.append(partial)
            partial = ""
        with self._lock:
            buffer = self._buffer
            buffer.append(text)
            self._partial = partial
            if lines:
                self._log_lines(lines, now)
            wake = False
            for search in self._waiters:
                if not search.done and search.advance(buffer):
                    wake = True
            if wake:
                self._cond.notify_all()
        if self._backlog_lines > MAX_BACKLOG:
            self._journal_some(None)  # the journal cannot keep up: slow the reader, lose nothing

    def _log_lines(self, lines: list[str], now: float) -> None:
        """Add complete lines to the in-memory log now, and to the journal backlog (caller locks)."""
        clean = [line[:-1] if line.endswith("\r") else line for line in lines]
        self._log.extend([(now, line) for line in clean])
        self._lines_total += len(clean)
        if self.journal is not None:
            self._backlog.append((now, clean))
            self._backlog_lines += len(clean)

    def _journal_now(self) -> bool:
        """Whether to journal now, the port being idle: while a waiter is parked on the device (its
        time is free), from :data:`JOURNAL_MIN_LINES` backlogged lines until the backlog is empty
        (few large batches rather than a little after every command), or once the backlog got old.

        Never right after a match: that would make the caller pay for journaling its own output.
        """
        if self._backlog_lines >= JOURNAL_MIN_LINES:
            self._draining = True
        if self._draining and any(not search.done for search in self._waiters):
            return True
        return time.time() - self._backlog[0][0] > JOURNAL_LAG

    def _journal_some(self, max_lines: int | None) -> None:
        """Write up to ``max_lines`` backlogged lines to the journal (all if None), oldest first."""
        journal = self.journal
        backlog = self._backlog
        budget = max_lines
        while backlog and (budget is None or budget > 0):
            now, lines = backlog[0]
            if budget is not None and len(lines) > budget:
                backlog[0] = (now, lines[budget:])
                lines = lines[:budget]
            else:
                backlog.popleft()
            self._backlog_lines -= len(lines)
            if budget is not None:
                budget -= len(lines)
            if journal is not None:
                record, source = journal.record, self.name
                for line in lines:
                    record("console", t=now, source=source, line=line)
        self._draining = bool(backlog)

    def _tail_locked(self, n: int) -> list[str]:
        lines = [line for _, line in list(self._log)[-n:]] if n > 0 else []
        if self._partial:
            lines = [*lines[1:], self._partial] if len(lines) >= n else [*lines, self._partial]
        return lines

    def _dead_error(self, label: str) -> ConsoleError:
        what = f"console {self.name}: {self.url}"
        if self._failure is not None:
            return ConsoleError(f"{what} failed while waiting for {label!r}: {self._failure}")
        return ConsoleError(f"{what} was closed while waiting for {label!r}")


def _write_fd(fd: int, data: bytes, timeout: float) -> None:
    """Write all of ``data`` to a non-blocking tty fd, waiting for room at most ``timeout`` s.

    pyserial's own write waits for the tty to be writable again after every write, which on a
    pty means waiting for the other side to read: a round trip added to every command.
    """
    view = memoryview(data)
    deadline = time.monotonic() + timeout
    while view:
        try:
            view = view[os.write(fd, view) :]
            continue
        except BlockingIOError:
            pass
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([], [fd], [], remaining)[1]:
            raise serial.SerialTimeoutException(
                f"write timed out after {timeout:g}s with {len(view)} of {len(data)} bytes unsent"
            )


def _compile(item: Pattern, regex: bool) -> re.Pattern[str]:
    if isinstance(item, re.Pattern):
        return item
    return re.compile(item if regex else re.escape(item))


def _describe(items: list[Pattern]) -> str:
    names = [item.pattern if isinstance(item, re.Pattern) else item for item in items]
    return names[0] if len(names) == 1 else " | ".join(names)


def _clean_output(text: str) -> str:
    lines = text.replace("\r\n", "\n").replace("\r", "").split("\n")
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)
