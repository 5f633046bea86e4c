"""The run journal: one append-only JSON Lines file of everything a run observes.

Console lines, telemetry, power events, injections, step results: each is one record with a
``kind``, the wall-clock time ``t`` (Unix seconds) and a monotonic ``mono`` time. Records are
flushed at least every :data:`FLUSH_INTERVAL` seconds by a background thread, so a crashed run
loses at most the last fraction of a second. Readers tolerate a torn last line.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

FLUSH_INTERVAL = 0.25


class Journal:
    """Thread-safe appender of journal records.

    ``record("console", source="dut", line="BOOT-DONE")`` appends
    ``{"t": ..., "mono": ..., "kind": "console", "source": "dut", "line": "BOOT-DONE"}``.
    """

    def __init__(self, path: str | os.PathLike[str], *, run_id: str = "", worker: str = "") -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.run_id = run_id
        self.worker = worker
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
            "t": time.time() if t is None else t,
            "mono": time.monotonic(),
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
        self._closed.set()
        with self._lock:
            if self._file is not None:
                self._file.flush()
                self._file.close()
                self._file = None
        if self._flusher.is_alive() and threading.current_thread() is not self._flusher:
            self._flusher.join(timeout=2)

    @property
    def closed(self) -> bool:
        return self._file is None

    def statistics(self) -> dict[str, Any]:
        return {"path": str(self.path), "records": self._count, "closed": self.closed}

    def _flush_loop(self) -> None:
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
    """Yield the records of one journal file, skipping a torn (partially written) last line."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        for raw in fh:
            if not raw.endswith("\n"):
                break  # the writer died mid-line: that record never completed
            try:
                rec = json.loads(raw)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict):
                yield rec


def read_run(folder: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """All records of a run folder (every worker's journal), merged in time order."""
    records: list[dict[str, Any]] = []
    for path in sorted(Path(folder).glob("journal*.jsonl")):
        records.extend(read_journal(path))
    records.sort(key=lambda r: r.get("t", 0.0))
    return records
