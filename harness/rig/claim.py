"""Claiming a bench for one process, so two pytest-xdist workers (or two runs) never share a board.

A bench's hardware is its console and its supply channel. Each gets a lock file in a lock folder
shared by every run on the machine (``--rig-lock-dir``, default ``<tmp>/iot-harness-locks``),
named from the resource itself — a tty's real path (so ``/dev/serial/by-id/…`` and ``/dev/ttyUSB0``
are one board), a console URL, a VISA resource and channel — so two rig files that name the same
board still exclude each other. A claim takes every lock of one rig or none of them.

The locks are ``flock(2)`` locks: the kernel drops them when the holder's process ends, however it
ends, so a crashed run never leaves a board claimed. Each lock file holds a line of JSON saying who
holds it (pid, host, worker, run, since), which is what a waiting or timed-out claim reports, and,
for a pytest run, whether the holder is still ``opening`` the bench or has it ``open``: a holder that
is opening will soon either hold an open bench or give the claim back because the bench is dead, so
a run's collection waits for that answer (harness.plugin.preflight) instead of taking "busy" for "fine".

There is no event for "a lock became free", and a blocking ``flock`` cannot time out: a claim that
finds every candidate taken polls, with a bounded interval and an overall deadline, and journals
whom it waits for.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from harness.errors import RigError
from harness.rig.kinds import kind_of

if TYPE_CHECKING:
    from harness.rig.spec import RigSpec

DEFAULT_LOCK_DIR = Path(tempfile.gettempdir()) / "iot-harness-locks"
POLL_MIN, POLL_MAX = 0.05, 1.0

T = TypeVar("T")


class RigBusy(RigError):
    """No candidate rig could be claimed in time; the message names who holds each."""


def resource_keys(spec: RigSpec) -> list[str]:
    """The hardware a board rig uses, one key per lockable resource (none for a kind that is not
    claimed, as a twin: each process starts its own)."""
    if not kind_of(spec).claimed:
        return []
    keys: list[str] = []
    console = spec.console
    if console is not None and console.url and not console.url.startswith("loop://"):
        keys.append(f"console {_console_identity(console.url)}")  # loop:// is pyserial's, nothing behind it
    power = spec.power
    if power is not None and power.resource:
        keys.append(f"power {power.resource.strip()} channel {power.channel}")
    return keys


def _console_identity(url: str) -> str:
    if "://" in url:
        return url.strip().lower()
    try:
        return os.path.realpath(url)  # /dev/serial/by-id/usb-… and /dev/ttyUSB0: one board
    except OSError:
        return url


def _lock_name(key: str) -> str:
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", key)[:60].strip("_")
    return f"{readable}-{hashlib.sha256(key.encode()).hexdigest()[:12]}.lock"


@dataclass
class Claim:
    """Locks held on one rig's resources; ``release()`` (or the process's end) frees them."""

    candidate: Any
    keys: list[str]
    waited: float = 0.0
    _fds: list[int] = field(default_factory=list, repr=False)
    _record: dict[str, Any] = field(default_factory=dict, repr=False)

    def update(self, **fields: Any) -> None:
        """Say more about this claim in its lock files (``state="open"``); readers see the old record or
        the new one, never an empty file."""
        self._record = {**self._record, **fields}
        _write_record(self._fds, self._record)

    def release(self) -> None:
        fds, self._fds = self._fds, []
        for fd in fds:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            with contextlib.suppress(OSError):
                os.close(fd)  # closing the descriptor drops the flock

    @property
    def held(self) -> bool:
        return bool(self._fds)


def _write_record(fds: Sequence[int], record: dict[str, Any]) -> None:
    data = json.dumps(record).encode() + b"\n"
    for fd in fds:
        with contextlib.suppress(OSError):
            os.pwrite(fd, data, 0)  # then cut what a longer record left behind: no moment without a record
            os.ftruncate(fd, len(data))


@dataclass(frozen=True)
class Holder:
    key: str
    info: dict[str, Any]

    @property
    def opening(self) -> bool:
        """The holder is still bringing the bench up (or has not written who it is yet)."""
        return not self.info or self.info.get("state") == "opening"

    def describe(self) -> str:
        i = self.info
        if not i:
            return f"{self.key}: held (by a process that has not said who it is yet)"
        since = time.strftime("%H:%M:%S", time.localtime(float(i.get("since", 0))))
        return (f"{i.get('rig') or self.key} held by worker {i.get('worker', '?')} of run {i.get('run_id', '?')} "
                f"(pid {i.get('pid', '?')} on {i.get('host', '?')}, since {since})")  # fmt: skip


def try_claim(candidate: Any, keys: Sequence[str], lock_dir: Path, who: dict[str, Any]) -> Claim | None:
    """Every lock of ``keys`` or none: the claim, or None when one of them is held."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    fds: list[int] = []
    try:
        for key in sorted(set(keys)):  # one order for everybody: no two claims wait on each other
            fd = os.open(lock_dir / _lock_name(key), os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                for held in fds:
                    os.close(held)
                return None
            fds.append(fd)
    except OSError as exc:
        for held in fds:
            os.close(held)
        raise RigError(f"cannot lock rig resources in {lock_dir}: {exc}") from None
    record = {**who, "pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
    _write_record(fds, record)
    return Claim(candidate, list(keys), _fds=fds, _record=record)


def holders(keys: Sequence[str], lock_dir: Path) -> list[Holder]:
    """Who holds each of ``keys`` now (only those that are held)."""
    out = []
    for key in keys:
        path = lock_dir / _lock_name(key)
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                text = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
                try:
                    info = json.loads(text) if text else {}
                except ValueError:
                    info = {}
                out.append(Holder(key, info if isinstance(info, dict) else {}))
            else:
                fcntl.flock(fd, fcntl.LOCK_UN)  # free: we only looked
        finally:
            os.close(fd)
    return out


def claim_one(
    candidates: Sequence[T],
    keys_of: Callable[[T], list[str]],
    name_of: Callable[[T], str],
    *,
    lock_dir: Path = DEFAULT_LOCK_DIR,
    who: dict[str, Any] | None = None,
    timeout: float = 1800.0,
    start: int = 0,
    on_wait: Callable[[str], None] | None = None,
    what: str = "rig",
) -> Claim:
    """Claim the first free candidate, trying them from index ``start`` round (so workers spread over a
    pool); wait up to ``timeout`` seconds for one, calling ``on_wait`` once with whom it waits for."""
    if not candidates:
        raise RigError(f"{what}: no rigs to claim")
    order = [candidates[(start + i) % len(candidates)] for i in range(len(candidates))]
    began = time.monotonic()
    deadline = began + timeout
    poll = POLL_MIN
    told = False
    pause = threading.Event()  # never set: a bounded wait between polls (see the module docstring)
    while True:
        for candidate in order:
            claim = try_claim(candidate, keys_of(candidate), lock_dir, {**(who or {}), "rig": name_of(candidate)})
            if claim is not None:
                claim.waited = time.monotonic() - began
                return claim
        busy = "; ".join(h.describe() for c in order for h in holders(keys_of(c), lock_dir)) or "all busy"
        if not told and on_wait is not None:
            on_wait(busy)
            told = True
        left = deadline - time.monotonic()
        if left <= 0:
            raise RigBusy(f"{what}: no rig free after waiting {timeout:g}s: {busy} (lock folder {lock_dir}; "
                          "raise --rig-claim-timeout, or run no more workers than rigs)")  # fmt: skip
        pause.wait(min(poll, left))
        poll = min(POLL_MAX, poll * 2)
