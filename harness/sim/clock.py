"""The simulated clock: the run's :class:`~harness.run.clock.Clock` and the twin's ``Scheduler`` on simpy.

One object is both. The harness side waits on it (``wait``, a condition's ``wait_for``); the twin's
runtime and the simulated services schedule on it (``call_at``, ``call_soon``, ``cancel``) or put simpy
processes on its ``env``. Time moves only while somebody drives it:

* ``wait(seconds, cancel)`` runs the simulation to ``now() + seconds`` (events at that instant
  included) and stands there; False at once when ``cancel`` gets set;
* ``condition().wait_for(predicate, timeout)`` steps the simulation event by event, checking the
  predicate after each, until it holds or the timeout's instant comes; it returns the predicate's last
  value (``notify_all`` is a no-op: state only changes inside a step).

**Callbacks run at the top level of the driving loop.** A ``call_at`` callback is a simpy event whose
only effect, inside ``env.step()``, is to put the callback on a ready queue; the loop runs the queue
between steps. So a callback may itself drive the clock (a scenario injection that deploys an update
and waits for its outcome): that nested drive steps the same simulation; when it returns, the outer
drive goes on from wherever time now is. An outer wait therefore ends at its own instant or later,
never earlier, and its predicate is checked right after the callback returns.

A drive with nothing scheduled jumps straight to its timeout; without a timeout it raises
:class:`NothingLeftToHappen` instead of hanging.

**Paced mode** (``factor``): like ``simpy.rt``, simulated time advances at most ``factor`` times as
fast as the ``pace`` clock (a :class:`~harness.run.clock.RealClock` unless one is passed); a simulation
that cannot keep up runs as fast as it can and :meth:`SimClock.lag` says how far behind the pace it
fell (the most seen, in simulated seconds), for the journal.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import TypeVar, cast

import simpy

from harness.errors import HarnessError
from harness.run.clock import Clock, Condition, RealClock, SteppedCondition
from harness.run.manual_clock import DEFAULT_EPOCH

T = TypeVar("T")
INFINITY = float("inf")


class NothingLeftToHappen(HarnessError):
    """A wait without a timeout on a simulation with nothing scheduled: it would wait forever."""


class Call:
    """The handle of one scheduled callback (what ``call_at`` returns and ``cancel`` takes)."""

    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[], object]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def __repr__(self) -> str:
        state = " cancelled" if self.cancelled else ""
        return f"<Call at {self.when:g}{state} {getattr(self.callback, '__qualname__', self.callback)!r}>"


class SimClock:
    """Simulated time on ``env`` (a new ``simpy.Environment`` by default); ``wall()`` is ``epoch + now()``."""

    def __init__(self, env: simpy.Environment | None = None, *, epoch: float = DEFAULT_EPOCH,
                 factor: float | None = None, pace: Clock | None = None) -> None:  # fmt: skip
        if factor is not None and not factor > 0:
            raise ValueError(f"factor: expected a number > 0 (simulated seconds per wall second), got {factor}")
        self.env = env if env is not None else simpy.Environment()
        self.epoch = float(epoch)
        self.factor = factor
        self._wall: Clock = pace if pace is not None else RealClock()  # what paced mode keeps up with
        self.steps = 0  # simpy events processed by this clock's drives
        self._ready: deque[Call] = deque()
        self._pace: tuple[float, float] | None = None  # (wall monotonic, sim time) the pace counts from
        self._lag = 0.0

    # ------------------------------------------------------------------ Clock

    def now(self) -> float:
        return float(self.env.now)

    def wall(self) -> float:
        return self.epoch + self.env.now

    def wait(self, seconds: float, cancel: threading.Event) -> bool:
        """Run the simulation to ``now() + seconds``; False as soon as ``cancel`` is set."""
        target = self.env.now + max(0.0, seconds)
        return self._drive(target, cancel.is_set, f"{seconds:g} s to pass", cancel=cancel) is not True

    def condition(self) -> Condition:
        return SimCondition(self)

    # ------------------------------------------------------------------ Scheduler

    def wall_offset(self) -> float:
        return self.epoch

    def call_at(self, when: float, callback: Callable[[], object]) -> Call:
        """Run ``callback()`` at ``when`` (at once, on the next step, if that is past), at the top level of
        the driving loop; callbacks due at the same instant run in the order they were scheduled."""
        call = Call(float(when), callback)
        event = self.env.timeout(max(0.0, call.when - self.env.now), call)
        event.callbacks.append(self._due)  # type: ignore[union-attr]
        return call

    def call_later(self, delay: float, callback: Callable[[], object]) -> Call:
        return self.call_at(self.env.now + max(0.0, delay), callback)

    def call_soon(self, callback: Callable[[], object]) -> None:
        """Run ``callback()`` after the current callback (or step) returns, before time moves on."""
        self._ready.append(Call(self.env.now, callback))

    def cancel(self, handle: object) -> None:
        """Forget a callback that has not run yet (one that ran, or an unknown handle, is ignored)."""
        if isinstance(handle, Call):
            handle.cancelled = True

    # ------------------------------------------------------------------ paced mode

    def lag(self) -> float:
        """Paced mode: the most simulated time ever fell behind ``factor`` x wall time (0 unpaced)."""
        return self._lag

    def sync(self) -> None:
        """Paced mode: count the pace from here (the setup before a run is not lag)."""
        self._pace = None

    # ------------------------------------------------------------------ the driving loop

    def _due(self, event: simpy.Event) -> None:
        # Inside env.step(): only queue the callback, the loop runs it once the step returned.
        self._ready.append(cast(Call, event.value))

    def _run_ready(self, check: Callable[[], object]) -> object:
        """Run every ready callback (those they make ready too), checking after each; the first true check."""
        ready = self._ready
        while ready:
            call = ready.popleft()
            if call.cancelled:
                continue
            call.cancelled = True  # ran: a later cancel is a no-op
            call.callback()
            if value := check():
                return value
        return None

    def _drive(self, until: float | None, check: Callable[[], T], what: str,
               cancel: threading.Event | None = None) -> T:  # fmt: skip
        """Step until ``check()`` is true or the simulation reached ``until`` (None: no limit)."""
        env = self.env
        limit = INFINITY if until is None else until
        while True:
            if value := check():
                return value
            if self._ready:
                if value := self._run_ready(check):  # type: ignore[assignment]
                    return value
                continue
            upcoming = env.peek()
            if upcoming > limit or upcoming == INFINITY:
                if until is None:
                    raise NothingLeftToHappen(
                        f"nothing left to happen: waiting forever for {what} (no timeout, and nothing is "
                        f"scheduled at simulated t={env.now:g} s)"
                    )
                if self.factor is not None and not self._pace_to(until, cancel):
                    return check()
                if until > env.now:
                    env.run(until=until)
                return check()
            if self.factor is not None and not self._pace_to(upcoming, cancel):
                return check()
            env.step()
            self.steps += 1

    def _pace_to(self, sim_time: float, cancel: threading.Event | None) -> bool:
        """Paced mode: hold until wall time allows ``sim_time``; False if ``cancel`` got set meanwhile."""
        assert self.factor is not None
        now_wall = self._wall.now()
        if self._pace is None:
            self._pace = (now_wall, float(self.env.now))
        wall0, sim0 = self._pace
        ahead = (sim_time - sim0) / self.factor - (now_wall - wall0)
        if ahead <= 0:
            self._lag = max(self._lag, -ahead * self.factor)
            return True
        return self._wall.wait(ahead, cancel if cancel is not None else threading.Event())


class SimCondition(SteppedCondition):
    """A condition on a :class:`SimClock`: ``wait_for`` steps the simulation until the predicate holds."""

    def __init__(self, clock: SimClock) -> None:
        super().__init__()
        self.clock = clock

    def wait_for(self, predicate: Callable[[], T], timeout: float | None = None) -> T:
        clock = self.clock
        until = None if timeout is None else clock.now() + max(0.0, timeout)
        what = getattr(predicate, "__qualname__", repr(predicate))
        return clock._drive(until, predicate, f"{what} to hold")
