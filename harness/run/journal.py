"""The run journal: one append-only JSON Lines file of everything a run observes.

Console lines, telemetry, power events, injections, step results: each is one record with a
``kind``, the run's time ``t`` (Unix seconds: the clock's :meth:`~harness.run.clock.Clock.wall`, so
wall time on the real clock and the simulated epoch time in a virtual run) and the clock's monotonic
``mono`` time. The journal asks the run's clock it was given for both, never ``time`` itself. Records
are flushed at least every :data:`FLUSH_INTERVAL` seconds (real seconds: a crash loses real output) by
a background thread, so a crashed run loses at most the last fraction of a second. Readers tolerate a
torn last line.

While a run is going the journal is plain ``journal*.jsonl``; a journal opened with
``compress_on_close=True`` (the run's own) is gzipped when it closes, into ``journal*.jsonl.gz``
(:func:`compress_journal`). Every reader (:func:`read_journal`, :func:`read_run`,
:func:`journal_files`) takes either form, and a gzip stream cut short (a run killed while compressing,
a copy that stopped half-way) yields the records up to the cut.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, TextIO

from harness.run.clock import Clock, RealClock

FLUSH_INTERVAL = 0.25
PLAIN_SUFFIX = ".jsonl"
COMPRESSED_SUFFIX = ".jsonl.gz"
COMPRESS_LEVEL = 6  # gzip's default: ~10x on a journal, ~1 s per 50 MB


class Journal:
    """Thread-safe appender of journal records.

    ``record("console", source="dut", line="BOOT-DONE")`` appends
    ``{"t": ..., "mono": ..., "kind": "console", "source": "dut", "line": "BOOT-DONE"}``, both times
    from ``clock`` (the run's; the real clock when none is given).
    """

    def __init__(self, path: str | os.PathLike[str], *, run_id: str = "", worker: str = "",
                 compress_on_close: bool = False, clock: Clock | None = None) -> None:  # fmt: skip
        self.path = Path(path)
        self.clock: Clock = clock or RealClock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.run_id = run_id
        self.worker = worker
        self.compress_on_close = compress_on_close
        self._file: TextIO | None = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
        self._lock = threading.Lock()
        self._dirty = False
        self._closed = threading.Event()
        self._count = 0
        self._taps: list[list[dict[str, Any]]] = []
        self._flusher = threading.Thread(target=self._flush_loop, name="journal-flush", daemon=True)
        self._flusher.start()

    def record(self, kind: str, *, t: float | None = None, **fields: Any) -> dict[str, Any]:
        rec: dict[str, Any] = {
            "t": self.clock.wall() if t is None else t,
            "mono": self.clock.now(),
            "kind": kind,
        }
        if self.worker:
            rec["worker"] = self.worker
        rec.update(fields)
        line = _ENCODER.encode(rec)
        with self._lock:
            if self._file is None:
                return rec
            self._file.write(line + "\n")
            self._dirty = True
            self._count += 1
            for tap in self._taps:
                tap.append(rec)
        return rec

    def tap(self) -> list[dict[str, Any]]:
        """A list that receives every record written from now until :meth:`untap` (a test's slice)."""
        tap: list[dict[str, Any]] = []
        with self._lock:
            self._taps.append(tap)
        return tap

    def untap(self, tap: list[dict[str, Any]]) -> list[dict[str, Any]]:
        with self._lock:
            self._taps = [t for t in self._taps if t is not tap]
        return tap

    def flush(self) -> None:
        with self._lock:
            if self._file is not None and self._dirty:
                self._file.flush()
                self._dirty = False

    def close(self) -> None:
        """Flush and close; with ``compress_on_close`` gzip the file, and ``path`` names the ``.gz`` after."""
        self._closed.set()
        closed_now = False
        with self._lock:
            if self._file is not None:
                self._file.flush()
                self._file.close()
                self._file = None
                closed_now = True
        if self._flusher.is_alive() and threading.current_thread() is not self._flusher:
            self._flusher.join(timeout=2)
        if closed_now and self.compress_on_close and self.path.is_file():
            self.path = compress_journal(self.path)

    @property
    def closed(self) -> bool:
        return self._file is None

    def statistics(self) -> dict[str, Any]:
        return {"path": str(self.path), "records": self._count, "closed": self.closed}

    def _flush_loop(self) -> None:
        # Real seconds on purpose: durability is about what a crash of this process loses, not run time.
        while not self._closed.wait(FLUSH_INTERVAL):
            self.flush()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _json_default(obj: object) -> Any:
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "backslashreplace")
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "model_dump"):
        return obj.model_dump()  # pydantic models
    return repr(obj)


_ENCODER = json.JSONEncoder(default=_json_default, separators=(",", ":"))  # built once: record() is hot


def read_journal(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Yield the records of one journal file, plain or gzipped (by its ``.gz`` name), skipping a torn
    (partially written) last line; a gzip stream that ends early yields every line before the cut."""
    if str(path).endswith(".gz"):
        yield from _records(_gzip_lines(Path(path)))
        return
    with open(path, encoding="utf-8", errors="replace") as fh:
        yield from _records(fh)


def _records(lines: Iterator[str] | IO[str]) -> Iterator[dict[str, Any]]:
    for raw in lines:
        if not raw.endswith("\n"):
            break  # the writer died mid-line: that record never completed
        try:
            rec = json.loads(raw)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict):
            yield rec


def _gzip_lines(path: Path) -> Iterator[str]:
    """The lines of a gzip file; where the stream is torn (truncated, corrupt) the lines end there."""
    with gzip.open(path, "rt", encoding="utf-8", errors="replace", newline="") as fh:
        line_iter = iter(fh)
        while True:
            try:
                line = next(line_iter)
            except StopIteration:
                return
            except (EOFError, gzip.BadGzipFile, zlib.error, OSError):
                return  # a torn stream: the partial line it was in never completed either
            yield line


def journal_files(folder: str | os.PathLike[str]) -> list[Path]:
    """Every journal of a run folder: ``journal*.jsonl.gz`` (closed) and ``journal*.jsonl`` (still written,
    or from a run that died), in name order; a worker can have both when its run folder was reused."""
    root = Path(folder)
    found = [*root.glob("journal*" + PLAIN_SUFFIX), *root.glob("journal*" + COMPRESSED_SUFFIX)]
    return sorted((p for p in found if p.is_file()), key=lambda p: (_stem(p), p.name.endswith(PLAIN_SUFFIX)))


def _stem(path: Path) -> str:
    name = path.name
    return name[: -len(COMPRESSED_SUFFIX)] if name.endswith(COMPRESSED_SUFFIX) else name[: -len(PLAIN_SUFFIX)]


def compress_journal(path: str | os.PathLike[str]) -> Path:
    """Gzip a closed journal ``X.jsonl`` into ``X.jsonl.gz`` and remove the plain file; the ``.gz`` path.

    An existing ``X.jsonl.gz`` (the same worker of a reused run folder) keeps its records: the new ones
    are appended as another gzip member, which every gzip reader concatenates. The result is written
    beside it and renamed into place, so a kill mid-way leaves the plain journal and the old ``.gz`` whole.
    """
    plain = Path(path)
    target = plain.with_name(_stem(plain) + COMPRESSED_SUFFIX)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as raw:
            if target.is_file():
                with open(target, "rb") as old:
                    shutil.copyfileobj(old, raw)
            with open(plain, "rb") as src, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=COMPRESS_LEVEL,
                                                         mtime=0) as gz:  # fmt: skip
                shutil.copyfileobj(src, gz, 1024 * 1024)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    plain.unlink()
    return target


def read_run(folder: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """All records of a run folder (every worker's journal, plain or gzipped), merged in time order."""
    records: list[dict[str, Any]] = []
    for path in journal_files(folder):
        records.extend(read_journal(path))
    records.sort(key=lambda r: r.get("t", 0.0))
    return records
