"""No Python test is silent for a minute: a line per interval while it runs, none for a short one."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from harness.still_running import StillRunning


class StepClock:
    """A clock whose waits pass at once (time jumps), ending the heartbeat after ``beats`` waits."""

    def __init__(self, beats: int) -> None:
        self.t = 100.0
        self.beats = beats
        self.waits: list[float] = []

    def now(self) -> float:
        return self.t

    def wait(self, seconds: float, cancel: threading.Event) -> bool:
        self.waits.append(seconds)
        if len(self.waits) > self.beats:
            cancel.wait(5)  # the test ends: __exit__ sets it
            return False
        self.t += seconds
        return True


class Writer:
    every = 60.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.lines: list[str] = []
        self.finished: list[str] = []

    def _write(self, text: str) -> None:
        self.lines.append(text)

    def finish(self, nodeid: str, result: Any = None) -> None:
        self.finished.append(nodeid)


def test_first_line_after_the_first_interval_then_one_per_interval() -> None:
    clock, writer = StepClock(beats=3), Writer()
    with StillRunning(writer, "t.py::test_long", first=60.0, clock=clock):
        deadline = threading.Event()
        for _ in range(200):  # bounded: the heartbeat thread writes its three lines
            if len(writer.lines) == 3:
                break
            deadline.wait(0.01)
    assert writer.lines == [
        "[t.py::test_long] still running: 1m",
        "[t.py::test_long] still running: 2m",
        "[t.py::test_long] still running: 3m",
    ]
    assert clock.waits[:3] == [60.0, 60.0, 60.0]
    assert writer.finished == ["t.py::test_long"]


def test_a_long_test_prints_a_line_per_interval_and_a_short_one_none(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nscenario_progress_every = 1s\n")
    pytester.makepyfile(
        test_times="""
import threading

def test_long():
    threading.Event().wait(2.6)  # the test's own work: it takes this long

def test_short():
    pass
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    out = result.stdout.str()
    result.stdout.fnmatch_lines(["*[[]test_times.py::test_long[]] still running: 1s*",
                                 "*[[]test_times.py::test_long[]] still running: 2s*"])  # fmt: skip
    assert "test_short] still running" not in out
