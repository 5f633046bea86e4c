"""Start and stop the digital twin's rig process (``python -m harness.twin serve``).

The rig process owns a pseudo-terminal (the console) and a SCPI power supply on loopback; it
prints one JSON line when ready. This module starts it in its own process group, reads that
line, and on close makes sure the process and its firmware child are gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import RigError
from harness.procs import spawn
from harness.rig.spec import PowerSpec, TwinSpec

READY_TIMEOUT = 30.0


@dataclass(frozen=True)
class TwinEndpoints:
    console: str
    scpi: str
    channel: int
    flash: str
    pid: int


class TwinProcess:
    """One running twin rig process."""

    def __init__(self, proc: subprocess.Popen[bytes], endpoints: TwinEndpoints, log_path: Path) -> None:
        self.proc = proc
        self.endpoints = endpoints
        self.log_path = log_path

    @classmethod
    def start(
        cls, twin: TwinSpec, power: PowerSpec, workdir: Path, *, name: str = "twin"
    ) -> TwinProcess:
        workdir.mkdir(parents=True, exist_ok=True)
        log_path = workdir / f"{name}.log"
        argv = [
            sys.executable, "-m", "harness.twin", "serve",
            "--flash", str(workdir / f"{name}-flash.bin"),
            "--host", "127.0.0.1",
            "--scpi-port", "0",
            "--power", "off",
            "--device-id", twin.device_id,
            "--boot-time", f"{twin.boot_time * 1000:g}ms",
            "--seed", str(twin.seed),
            "--slot-pages", str(twin.slot_pages),
            "--channel", str(power.channel),
        ]  # fmt: skip
        log = open(log_path, "ab")  # noqa: SIM115 - handed to the child
        try:
            proc = spawn(  # dies with the harness, even on SIGKILL (PR_SET_PDEATHSIG)
                argv,
                stdout=subprocess.PIPE,
                stderr=log,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            log.close()
        try:
            ready = _read_ready(proc, READY_TIMEOUT, log_path)
        except BaseException:
            _terminate(proc)
            raise
        endpoints = TwinEndpoints(
            console=str(ready["console"]),
            scpi=str(ready["scpi"]),
            channel=int(ready.get("channel", power.channel)),
            flash=str(ready.get("flash", "")),
            pid=int(ready.get("pid", proc.pid)),
        )
        return cls(proc, endpoints, log_path)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        _terminate(self.proc)


def _read_ready(proc: subprocess.Popen[bytes], timeout: float, log_path: Path) -> dict[str, Any]:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    buf = b""
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RigError(
                    f"twin did not report ready within {timeout:g}s; its log {log_path}: {_tail(log_path)}"
                )
            if not sel.select(left):
                continue
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                code = proc.wait(timeout=5)
                raise RigError(f"twin exited with status {code} before it was ready: {_tail(log_path)}")
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                try:
                    msg = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(msg, dict) and msg.get("event") == "ready":
                    return msg


def _tail(path: Path, n: int = 5) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()[-n:]
    except OSError:
        return "<no log>"
    return " | ".join(lines) or "<empty log>"


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the twin's process group, then SIGKILL whatever is left; reap it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
    # The firmware child dies with its parent (PDEATHSIG); sweep the group regardless.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    if proc.poll() is None:
        proc.wait(timeout=5)
    if proc.stdout is not None:
        proc.stdout.close()
