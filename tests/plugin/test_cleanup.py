"""A run killed with SIGTERM still stops its twin: no rig process outlives the harness."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

TEST = """
import os

def test_waits(dut, tmp_path_factory):
    path = os.environ["HARNESS_TEST_PIDFILE"]
    with open(path, "w") as fh:
        fh.write(str(dut.console.url))
    import threading
    threading.Event().wait(120)
"""


def _twins_of(parent: int) -> list[int]:
    """Twin rig processes started by ``parent``, and their firmware children."""
    out = subprocess.run(["ps", "-eo", "pid,ppid,args"], capture_output=True, text=True, check=True).stdout
    rows = [line.split(None, 2) for line in out.splitlines()[1:]]
    rigs = {int(pid) for pid, ppid, args in rows if int(ppid) == parent and "harness.twin" in args}
    return sorted(rigs | {int(pid) for pid, ppid, args in rows if int(ppid) in rigs})


def _alive(pids: list[int]) -> list[int]:
    out = []
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        out.append(pid)
    return out


def test_sigterm_mid_test_stops_the_twin(pytester: pytest.Pytester, tmp_path: Path) -> None:
    pytester.makepyfile(test_sleepy=TEST)
    ready = tmp_path / "ready"
    env = {**os.environ, "HARNESS_TEST_PIDFILE": str(ready)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--basetemp", str(tmp_path / "base")],
        cwd=pytester.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            assert time.monotonic() < deadline, "the test never started"
            time.sleep(0.05)  # polling a file another process writes: no event to wait on
        twins = _twins_of(proc.pid)
        assert len(twins) >= 2, "no twin (rig process and firmware child) running while the test waits"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode != 0
        assert _alive(twins) == [], f"twin processes {twins} left running after SIGTERM:\n{out.decode()[-2000:]}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
