"""One notion of time, passed in: the scenario runner asks a clock, never ``time`` directly.

:class:`RealClock` is wall time for boards and process twins; the simulated clock in
``harness.sim`` runs the same scenario in simulated time.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds on this clock (monotonic)."""
        ...

    def wait(self, seconds: float, cancel: threading.Event) -> bool:
        """Let ``seconds`` pass; returns False early if ``cancel`` is set."""
        ...


class RealClock:
    def now(self) -> float:
        return time.monotonic()

    def wait(self, seconds: float, cancel: threading.Event) -> bool:
        # Waiting for time itself to pass (a soak's duration, an injection instant): the event lets
        # Ctrl-C or a failed step end the wait at once.
        return not cancel.wait(max(0.0, seconds))
