"""One notion of time, passed in: every wait, timer and journal stamp asks the run's clock.

A :class:`Clock` has these things:

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
    whoever changes the state holds it and calls ``notify_all()``. The timeout runs on this clock;
``call_at(when, callback)`` and ``cancel(handle)``
    run a callback once at an instant of ``now()`` (a scenario's injections, its recurring checks and
    samples), or forget it. The semantics are those of the twin's ``Scheduler``: a past instant runs at
    once but never from inside ``call_at``; callbacks of the same instant run in the order scheduled.

:class:`RealClock` is wall time for boards and process twins: it sleeps, and its condition is a
:class:`threading.Condition`. Its callbacks run one at a time on one scheduler thread the clock owns
(started on the first ``call_at``, stopped by ``close()``): the only thread of the harness that keeps
time. A simulated clock (``harness.sim``) advances simpy instead: its ``wait``
runs the simulation to ``now() + seconds``, and its condition's ``wait_for`` steps the simulation one
event at a time, checking the predicate after each, until it holds or the timeout's simulated instant
comes (so ``notify_all`` has nothing to wake: state only changes inside a step).
:class:`harness.run.manual_clock.ManualClock` is that shape without simpy, for tests.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Protocol, TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)

#: How many failed callbacks a :class:`RealClock` keeps (the oldest are dropped, the count goes on).
KEPT_ERRORS = 20


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

    def call_at(self, when: float, callback: Callable[[], None]) -> object:
        """Run ``callback()`` once at ``when`` (on the scale of :meth:`now`; at once, but not from inside
        this call, if ``when`` is past); callbacks due at the same time run in the order they were
        scheduled. Returns a handle for :meth:`cancel`."""
        ...

    def cancel(self, handle: object) -> None:
        """Forget a callback that has not run yet (a handle of one that ran, or is running, is ignored)."""
        ...


class Timer:
    """A callback scheduled on a clock: the handle ``call_at`` returns. Orders by instant, then by
    when it was scheduled."""

    __slots__ = ("callback", "seq", "state", "when")

    def __init__(self, when: float, seq: int, callback: Callable[[], object]) -> None:
        self.when, self.seq, self.callback = float(when), seq, callback
        self.state = "pending"  # pending | cancelled | ran

    def __lt__(self, other: Timer) -> bool:
        return (self.when, self.seq) < (other.when, other.seq)

    def __repr__(self) -> str:
        return f"Timer(at={self.when:g}, {self.state}, {getattr(self.callback, '__qualname__', self.callback)})"


class RealClock:
    """Real time: ``time.monotonic``, ``time.time``, and waits that block the calling thread.

    Scheduled callbacks run on the clock's own scheduler thread (a daemon, started on the first
    :meth:`call_at`), one at a time, in time order. A callback that raises is logged and kept in
    :meth:`statistics` (``errors``); the thread goes on with the next one. :meth:`close` stops the
    thread and forgets what is still pending (a later ``call_at`` starts it again).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._due: list[Timer] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self._generation = 0  # a scheduler thread runs while its generation is the clock's
        self._ran = 0
        self._failed = 0
        self._errors: list[str] = []

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

    # -- scheduling --------------------------------------------------------------------------------
    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        timer = Timer(when, next(self._order), callback)
        with self._cond:
            heapq.heappush(self._due, timer)
            if self._thread is None:
                self._generation += 1
                self._thread = threading.Thread(target=self._run, args=(self._generation,), name="clock-scheduler",
                                                daemon=True)  # fmt: skip
                self._thread.start()
            elif self._due[0] is timer:
                self._cond.notify_all()  # earlier than what the thread sleeps towards
        return timer

    def cancel(self, handle: object) -> None:
        if isinstance(handle, Timer):
            with self._cond:
                if handle.state == "pending":
                    handle.state = "cancelled"  # dropped from the heap when it comes up

    def close(self, timeout: float = 10.0) -> None:
        """Stop the scheduler thread (after the callback it runs, if any) and forget what is pending."""
        with self._cond:
            thread, self._thread = self._thread, None
            self._generation += 1
            for timer in self._due:
                timer.state = "cancelled"
            self._due.clear()
            self._cond.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def pending(self) -> int:
        """How many callbacks are still scheduled."""
        with self._cond:
            return sum(1 for t in self._due if t.state == "pending")

    def statistics(self) -> dict[str, object]:
        """A snapshot: callbacks pending, run and failed, the last failures (``errors``)."""
        with self._cond:
            return {"pending": sum(1 for t in self._due if t.state == "pending"), "ran": self._ran,
                    "failed": self._failed, "errors": list(self._errors),
                    "running": self._thread is not None}  # fmt: skip

    def _next(self, generation: int) -> Timer | None:
        """The next callback once it is due (None: the clock was closed)."""
        with self._cond:
            while generation == self._generation:
                while self._due and self._due[0].state != "pending":
                    heapq.heappop(self._due)
                if not self._due:
                    self._cond.wait()
                    continue
                left = self._due[0].when - time.monotonic()
                if left <= 0:
                    timer = heapq.heappop(self._due)
                    timer.state = "ran"
                    return timer
                self._cond.wait(left)
            return None

    def _run(self, generation: int) -> None:
        while (timer := self._next(generation)) is not None:
            try:
                timer.callback()
            except BaseException as exc:  # a failing callback never stops the clock
                log.exception("clock callback %r failed", timer)
                with self._cond:
                    self._failed += 1
                    self._errors = [*self._errors, f"{timer!r}: {type(exc).__name__}: {exc}"][-KEPT_ERRORS:]
            with self._cond:
                self._ran += 1


class SteppedCondition:
    """The lock and the no-op ``notify_all`` of a condition on a clock that one thread steps (manual or
    simulated): state changes only inside a step, so the waiter checks its predicate after each one
    instead of being woken. Subclasses give ``wait_for``."""

    def __init__(self) -> None:
        self._lock = threading.RLock()

    def __enter__(self) -> bool:
        return self._lock.acquire()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._lock.release()

    def notify_all(self) -> None:
        """Nothing to wake: the waiter checks its predicate after every step of the clock."""
