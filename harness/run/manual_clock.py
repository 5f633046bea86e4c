"""A deterministic :class:`~harness.run.clock.Clock` for tests: time moves only when someone waits.

``clock.call_at(5.0, lambda: console.feed("BOOT-DONE"))`` schedules what the world does at an instant
(and returns a handle for ``clock.cancel``);
``wait`` and a condition's ``wait_for`` jump from one scheduled action to the next (running each at its
instant) instead of sleeping, so a test of an hour-long wait runs in microseconds and always the same
way. It is the simulated clock's shape without simpy: one thread drives it, state changes only inside
scheduled actions, and a waiter's predicate is checked after each one.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable
from typing import TypeVar

from harness.run.clock import Condition, SteppedCondition, Timer

T = TypeVar("T")

DEFAULT_EPOCH = 1_767_225_600.0  # 2026-01-01T00:00:00Z: wall() of now() == 0


class ManualClock:
    """Time starts at ``start`` (``now()``) and ``epoch + start`` (``wall()``), and advances in waits."""

    def __init__(self, start: float = 0.0, *, epoch: float = DEFAULT_EPOCH) -> None:
        self._t = float(start)
        self.epoch = float(epoch)
        self._due: list[Timer] = []
        self._order = itertools.count()  # actions due at the same instant run in the order scheduled
        self._lock = threading.RLock()

    def now(self) -> float:
        return self._t

    def wall(self) -> float:
        return self.epoch + self._t

    def call_at(self, when: float, action: Callable[[], object]) -> Timer:
        """Run ``action`` when this clock reaches ``when`` (at once, on the next wait, if that is past);
        a handle for :meth:`cancel`."""
        timer = Timer(when, next(self._order), action)
        with self._lock:
            heapq.heappush(self._due, timer)
        return timer

    def call_later(self, delay: float, action: Callable[[], object]) -> Timer:
        return self.call_at(self._t + max(0.0, delay), action)

    def cancel(self, handle: object) -> None:
        """Forget an action that has not run yet (one that ran is ignored)."""
        if isinstance(handle, Timer):
            with self._lock:
                if handle.state == "pending":
                    handle.state = "cancelled"  # dropped from the heap when it comes up

    def wait(self, seconds: float, cancel: threading.Event) -> bool:
        """Run every action due within ``seconds``, then stand at the end; False at the instant an action
        (or another thread) sets ``cancel``."""
        target = self._t + max(0.0, seconds)
        while not cancel.is_set():
            if not self.step(target):
                self.reach(target)
                return True
        return False

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass, running what is due (a test's ``wait`` without a cancel event)."""
        self.wait(seconds, threading.Event())

    def step(self, until: float | None = None) -> bool:
        """Run the next scheduled action if it is due by ``until`` (None: whenever it is); whether one ran."""
        with self._lock:
            while self._due and self._due[0].state != "pending":
                heapq.heappop(self._due)
            if not self._due or (until is not None and self._due[0].when > until):
                return False
            timer = heapq.heappop(self._due)
            timer.state = "ran"
            self._t = max(self._t, timer.when)
        timer.callback()
        return True

    def reach(self, when: float) -> None:
        """Stand at ``when`` if it is later (nothing due before it is run: call :meth:`step` first)."""
        self._t = max(self._t, when)

    def pending(self) -> int:
        """How many actions are still scheduled."""
        with self._lock:
            return sum(1 for t in self._due if t.state == "pending")

    def condition(self) -> Condition:
        return ManualCondition(self)


class ManualCondition(SteppedCondition):
    """A condition on a :class:`ManualClock`: ``wait_for`` runs the clock's actions until the predicate holds."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__()
        self.clock = clock

    def wait_for(self, predicate: Callable[[], T], timeout: float | None = None) -> T:
        deadline = None if timeout is None else self.clock.now() + max(0.0, timeout)
        while not (value := predicate()):
            if self.clock.step(deadline):
                continue
            if deadline is None:
                raise RuntimeError(
                    "ManualClock: a wait without a timeout for a condition no scheduled action can change "
                    "(it would wait forever)"
                )
            self.clock.reach(deadline)
            return predicate()
        return value
