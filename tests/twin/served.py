"""Start and stop ``python -m harness.twin serve`` for tests: ready line, descendants, clean teardown."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

READY_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


@dataclass
class ServedTwin:
    process: subprocess.Popen[bytes]
    ready: dict[str, object]
    stderr_path: Path

    @property
    def console(self) -> str:
        return str(self.ready["console"])

    @property
    def scpi(self) -> str:
        return str(self.ready["scpi"])

    def log(self) -> str:
        return self.stderr_path.read_text(errors="replace")


def start_served(workdir: Path, args: list[str], *, flash: bool = True) -> ServedTwin:
    """Start a twin; unless told otherwise its flash file lives in ``workdir``."""
    stderr_path = workdir / f"twin-{len(list(workdir.glob('twin-*.log')))}.log"
    if flash and "--flash" not in args:
        args = ["--flash", str(workdir / "flash.bin"), *args]
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "harness.twin", "serve", "--seed", "7", *args],
            stdout=subprocess.PIPE,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, so a test may signal the whole group
        )
    assert process.stdout is not None
    line = b""
    deadline = time.monotonic() + READY_TIMEOUT
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while not line.endswith(b"\n") and time.monotonic() < deadline and process.poll() is None:
            if selector.select(timeout=0.2):
                line += os.read(process.stdout.fileno(), 4096)
    if not line.endswith(b"\n"):
        process.kill()
        process.wait()
        raise AssertionError(
            f"no ready line from twin serve within {READY_TIMEOUT} s (exit {process.returncode}); "
            f"stdout so far {line!r}; stderr: {stderr_path.read_text()[-2000:]}"
        )
    ready = json.loads(line)
    assert ready["event"] == "ready", ready
    return ServedTwin(process, ready, stderr_path)


def descendants(pid: int) -> set[int]:
    """All live descendants of ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_gone(pids: set[int], timeout: float) -> set[int]:
    deadline = time.monotonic() + timeout
    remaining = {p for p in pids if alive(p)}
    while remaining and time.monotonic() < deadline:
        time.sleep(0.02)
        remaining = {p for p in remaining if alive(p)}
    return remaining


def stop_served(twin: ServedTwin, signum: signal.Signals = signal.SIGTERM, *, group: bool = False) -> None:
    """Signal the rig (or its whole process group); assert it exits 0 and its children are gone."""
    process = twin.process
    children = descendants(process.pid)
    if process.poll() is None:
        if group:
            os.killpg(process.pid, signum)
        else:
            process.send_signal(signum)
    try:
        code = process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        for pid in children | {process.pid}:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        process.wait()
        raise AssertionError(
            f"twin serve ignored {signum.name} for {STOP_TIMEOUT} s; log: {twin.log()[-2000:]}"
        ) from None
    finally:
        if process.stdout is not None:
            process.stdout.close()
    leftover = wait_gone(children, STOP_TIMEOUT)
    for pid in leftover:
        os.kill(pid, signal.SIGKILL)
    assert not leftover, f"processes left behind by twin serve: {sorted(leftover)}"
    assert code == 0, f"twin serve exited {code}; log: {twin.log()[-2000:]}"
