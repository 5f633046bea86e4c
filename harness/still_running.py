"""A long Python test is never silent for a minute: ``[tests/x.py::test_y] still running: 2m``.

Scenario items print their own progress line (:mod:`harness.scenario.progress`); every other test
that runs past the first interval (ini ``scenario_progress_every``, default a minute) gets this one,
written the same way: through pytest's terminal reporter with capture suspended, redrawn in place on
a terminal, one line per interval in a log (CI). Timed by a clock it is given (the real one for a
process twin), never by a clock of its own; the thread ends when the test does.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

from harness.run.clock import Clock, RealClock
from harness.units import format_duration


class StillRunning:
    """Around one test's call: after ``first`` seconds a line, then one per the progress's interval."""

    def __init__(self, progress: Any, nodeid: str, *, first: float, clock: Clock | None = None) -> None:
        self.progress = progress  # a harness.scenario.progress.ScenarioProgress (its writer and finish)
        self.nodeid = nodeid
        self.first = first
        self.clock = clock or RealClock()
        self.lines = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="harness-still-running", daemon=True)

    def line(self, elapsed: float) -> str:
        return f"[{self.nodeid}] still running: {format_duration(float(round(elapsed)))}"

    def _beat(self) -> None:
        t0 = self.clock.now()
        due = self.first
        while self.clock.wait(max(0.0, t0 + due - self.clock.now()), self._stop):
            with self.progress._lock:
                self.progress._write(self.line(self.clock.now() - t0))
            self.lines += 1
            due += self.progress.every

    def __enter__(self) -> StillRunning:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.progress.finish(self.nodeid)  # pytest's own result letter goes on below the last line


def still_running(config: Any, nodeid: str) -> StillRunning | None:
    """The heartbeat for a test under this pytest config; None where nothing is shown (no terminal
    reporter, an xdist worker, ``-qq``)."""
    from harness.scenario.progress import make_progress

    progress = make_progress(config, nodeid)
    if progress is None:
        return None
    from harness.scenario.progress import LOG_EVERY
    from harness.units import parse_duration

    first = max(1.0, parse_duration(str(config.getini("scenario_progress_every") or "1m"))) if not progress.tty \
        else LOG_EVERY
    return StillRunning(progress, nodeid, first=first)
