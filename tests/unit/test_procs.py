"""Children the harness spawns die with it, whichever thread asked for them (harness.procs)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from harness.procs import spawn

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


def _gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return True
        if state == "Z":
            return True
        threading.Event().wait(0.02)  # polling a process this test does not reap
    return False


def test_a_child_spawned_from_a_short_lived_thread_outlives_that_thread() -> None:
    """PR_SET_PDEATHSIG fires when the *forking thread* exits: spawn() forks from its own long-lived one."""
    made: list[subprocess.Popen[bytes]] = []
    asker = threading.Thread(target=lambda: made.append(spawn(SLEEPER)), name="short-lived")
    asker.start()
    asker.join(10)
    (child,) = made
    try:
        assert not _gone(child.pid, 0.5), "the child died with the thread that asked for it"
        assert child.poll() is None
    finally:
        child.kill()
        child.wait(5)


def test_a_child_dies_when_the_harness_is_sigkilled() -> None:
    script = (
        "import sys\n"
        "from harness.procs import spawn\n"
        f"child = spawn({SLEEPER!r})\n"
        "print(child.pid, flush=True)\n"
        "sys.stdin.read()\n"
    )
    harness = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert harness.stdout is not None
        child = int(harness.stdout.readline())
        assert not _gone(child, 0.2)
        os.kill(harness.pid, signal.SIGKILL)
        harness.wait(5)
        assert _gone(child, 5.0), f"child {child} outlived its SIGKILLed parent by 5 s"
    finally:
        if harness.poll() is None:
            harness.kill()
            harness.wait(5)


def test_spawn_errors_reach_the_caller() -> None:
    with pytest.raises(FileNotFoundError):
        spawn(["/nonexistent/binary"])
    with pytest.raises(TypeError, match="sets preexec_fn itself"):
        spawn(SLEEPER, preexec_fn=lambda: None)
