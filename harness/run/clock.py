"""One notion of time, passed in: every wait, timer and journal stamp asks the run's clock.

A :class:`Clock` has four things:

``now()``
    monotonic seconds: what durations, deadlines and ``mono`` stamps are measured on;
``wall()``
    the epoch time of ``now()`` (Unix seconds): what the journal's ``t`` is. The real clock's is the
    wall clock; a simulated clock's is its simulated epoch (the run's start epoch plus simulated time);
``wait(seconds, cancel)``
    let time pass (a soak's duration, an injection's instant); False as soon as ``cancel`` is set;
``condition()``
    a :class:`Condition` for waiting on state that other parts of the run change (a console line, a
    telemetry message, a power reading): the waiter holds it and calls ``wait_for(predicate, timeout)``,
    whoever changes the state holds it and calls ``notify_all()``. The timeout runs on this clock.

:class:`RealClock` is wall time for boards and process twins: it sleeps, and its condition is a
:class:`threading.Condition`. A simulated clock (``harness.sim``) advances simpy instead: its ``wait``
runs the simulation to ``now() + seconds``, and its condition's ``wait_for`` steps the simulation one
event at a time, checking the predicate after each, until it holds or the timeout's simulated instant
comes (so ``notify_all`` has nothing to wake: state only changes inside a step).
:class:`harness.run.manual_clock.ManualClock` is that shape without simpy, for tests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Protocol, TypeVar

T = TypeVar("T")


class Condition(Protocol):
    """A condition variable whose timeouts run on a :class:`Clock` (:class:`threading.Condition` is one)."""

    def __enter__(self) -> bool: ...

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    def notify_all(self) -> None:
        """The state a waiter may be waiting on changed (call holding the condition)."""
        ...

    def wait_for(self, predicate: Callable[[], T], timeout: float | None = None) -> T:
        """Until ``predicate()`` is true or ``timeout`` seconds of this clock passed (call holding the
        condition); the predicate's last value, so a falsy result means the wait timed out."""
        ...


class Clock(Protocol):
    def now(self) -> float:
        """Seconds on this clock (monotonic)."""
        ...

    def wall(self) -> float:
        """The epoch time (Unix seconds) of :meth:`now`: wall time, or the simulated epoch time."""
        ...

    def wait(self, seconds: float, cancel: threading.Event) -> bool:
        """Let ``seconds`` pass; returns False early if ``cancel`` is set."""
        ...

    def condition(self) -> Condition:
        """A new condition variable whose ``wait_for`` timeouts run on this clock."""
        ...


class RealClock:
    """Real time: ``time.monotonic``, ``time.time``, and waits that block the calling thread."""

    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    def wait(self, seconds: float, cancel: threading.Event) -> bool:
        # Waiting for time itself to pass (a soak's duration, an injection instant): the event lets
        # Ctrl-C or a failed step end the wait at once.
        return not cancel.wait(max(0.0, seconds))

    def condition(self) -> Condition:
        return threading.Condition()
