"""The live progress line of a running scenario, through pytest's terminal reporter.

    [soak-wifi-weak] 1m12s of 3m (40%) | steps[2] wait until=telemetry | steps 2, events 4 | telemetry 61 msgs, 0 lost

On a terminal the line is redrawn in place every second of the runner's clock. In a log (not a tty:
CI) one line per minute of the run (ini ``scenario_progress_every``), so a long test is never silent
for a minute and a short one prints nothing. ``-q`` drops the live line on a terminal, ``-qq`` every
progress line. Output capture is suspended around each write, as pytest's live logging does, so the
line reaches the terminal and not the test's captured output. When the scenario ends, its final state
stays on screen and pytest's own line goes on below it. Paced by the ``elapsed`` the runner reports
(its clock), never by a clock of its own.
"""

from __future__ import annotations

import threading
from contextlib import nullcontext
from typing import Any

from harness.errors import ConfigError, HarnessError
from harness.units import format_duration

#: Seconds of the run between two lines in a log (not a tty).
LOG_EVERY = 60.0
#: Seconds of the run between two redraws on a terminal.
TTY_EVERY = 1.0
#: Seconds between two loss computations on a terminal (accounting walks the test's records).
LOSS_EVERY = 5.0


class ScenarioProgress:
    """A runner ``progress`` callback: ``(elapsed, duration, counters)``, plus the runner's ``phase``."""

    def __init__(self, reporter: Any, capture: Any, name: str, *, tty: bool, quiet: int = 0,
                 telemetry: Any = None, log_every: float = LOG_EVERY) -> None:  # fmt: skip
        self.reporter = reporter
        self.capture = capture
        self.name = name
        self.tty = tty
        self.quiet = quiet
        self.telemetry = telemetry
        self.runner: Any = None  # set once the runner exists: its ``phase`` names the running step
        self.every = TTY_EVERY if tty else log_every
        self.drawn = False
        self._next = self.every
        self._loss: tuple[float, str] = (float("-inf"), "")
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.quiet <= 0 if self.tty else self.quiet <= 1

    def __call__(self, elapsed: float, duration: float | None, counters: dict[str, int]) -> None:
        if not self.enabled:
            return
        with self._lock:
            if elapsed < self._next:
                return
            self._next = (elapsed // self.every + 1) * self.every
            self._write(self.line(elapsed, duration, counters))

    def line(self, elapsed: float, duration: float | None, counters: dict[str, int], phase: str = "") -> str:
        shown = float(round(elapsed)) if elapsed >= 10 else round(elapsed, 1)
        parts = [f"[{self.name}] {format_duration(shown)}"]
        if duration:
            parts[0] += f" of {format_duration(duration)} ({min(100.0, 100 * elapsed / duration):.0f}%)"
        phase = phase or getattr(self.runner, "phase", "")
        if phase:
            parts.append(phase if len(phase) <= 60 else phase[:57] + "...")
        parts.append(f"steps {counters.get('steps', 0)}, events {counters.get('injections', 0)}")
        if self.telemetry is not None:
            parts.append(f"telemetry {self.telemetry.count()} msgs, {self._lost(elapsed)}")
        return " | ".join(parts)

    def _lost(self, elapsed: float) -> str:
        at, text = self._loss
        if not text or elapsed - at >= (LOSS_EVERY if self.tty else 0.0):
            try:
                acc = self.telemetry.summary()
                lost, unexplained = acc.lost(), acc.lost("unexplained")
                text = f"{lost} lost" + (f" ({unexplained} unexplained)" if unexplained else "")
            except Exception as exc:  # a progress line never fails a test
                text = f"loss unknown ({type(exc).__name__})"
            self._loss = (elapsed, text)
        return text

    def _write(self, text: str) -> None:
        suspended = self.capture.global_and_fixture_disabled() if self.capture is not None else nullcontext()
        with suspended:
            if not self.drawn:
                self.reporter.ensure_newline()  # below pytest's "path " or "nodeid " of the running test
            elif not self.tty:
                self.reporter.line("")
            if self.tty:
                width = max(20, int(getattr(self.reporter._tw, "fullwidth", 80)) - 1)
                self.reporter.rewrite(text[:width], erase=True)  # one screen line: \r can redraw it
            else:
                self.reporter.write(text, flush=True)
            self.drawn = True

    def finish(self, nodeid: str, result: Any = None) -> None:
        """After the run: its final state (verdict, elapsed, counts) stays on screen when a line was shown,
        and pytest's own line goes on below it."""
        with self._lock:
            if not self.drawn:
                return
            if result is not None and self.runner is not None:
                verdict = "passed" if result.passed else "FAILED"
                self._write(self.line(result.elapsed, result.duration, dict(self.runner.counters), f"done: {verdict}"))
            self.drawn = False
            suspended = self.capture.global_and_fixture_disabled() if self.capture is not None else nullcontext()
            with suspended:
                if self.reporter.showlongtestinfo:
                    return  # -v: pytest writes "nodeid PASSED" on a line of its own
                if self.reporter.showfspath:
                    self.reporter.write_fspath_result(nodeid, "")  # "path " again, for the test's letter
                else:
                    self.reporter.line("")


def make_progress(config: Any, name: str, telemetry: Any = None) -> ScenarioProgress | None:
    """The progress line for a scenario run under this pytest config; None without a terminal reporter
    (xdist workers have none: their output is not shown)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or hasattr(config, "workerinput"):
        return None
    tty = bool(reporter.isatty())
    quiet = -int(config.getoption("verbose", 0)) if config.getoption("verbose", 0) < 0 else 0
    capture = config.pluginmanager.get_plugin("capturemanager")
    every = str(config.getini("scenario_progress_every") or "1m")
    from harness.units import parse_duration

    try:
        log_every = max(1.0, parse_duration(every))
    except HarnessError as exc:
        raise ConfigError(f"ini scenario_progress_every: {exc}") from None
    progress = ScenarioProgress(reporter, capture, name, tty=tty, quiet=quiet, telemetry=telemetry,
                                log_every=log_every)  # fmt: skip
    return progress if progress.enabled else None
