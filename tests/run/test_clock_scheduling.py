"""Callbacks at instants of the run's clock: ``call_at`` / ``cancel`` on the real and the manual clock."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from harness.run.clock import RealClock
from harness.run.manual_clock import ManualClock

WAIT = 10.0  # the longest any of these tests waits for an event that should come within milliseconds


@pytest.fixture
def clock() -> Iterator[RealClock]:
    clock = RealClock()
    yield clock
    clock.close()


def test_real_callbacks_run_in_time_order_and_same_instant_ones_in_scheduling_order(clock: RealClock) -> None:
    seen: list[str] = []
    done = threading.Event()
    t = clock.now() + 0.05
    clock.call_at(t + 0.02, lambda: (seen.append("late"), done.set()))
    clock.call_at(t, lambda: seen.append("b1"))
    clock.call_at(t - 0.01, lambda: seen.append("a"))
    clock.call_at(t, lambda: seen.append("b2"))
    assert done.wait(WAIT)
    assert seen == ["a", "b1", "b2", "late"]


def test_real_callback_runs_at_its_instant_not_before(clock: RealClock) -> None:
    ran: list[float] = []
    done = threading.Event()
    when = clock.now() + 0.05
    clock.call_at(when, lambda: (ran.append(clock.now()), done.set()))
    assert done.wait(WAIT)
    assert ran[0] >= when


def test_real_past_instant_runs_at_once_on_the_clock_thread_never_inside_call_at(clock: RealClock) -> None:
    where: list[str] = []
    done = threading.Event()
    caller = threading.current_thread().name
    clock.call_at(clock.now() - 100.0, lambda: (where.append(threading.current_thread().name), done.set()))
    assert done.wait(WAIT)
    assert where == ["clock-scheduler"] and caller != "clock-scheduler"


def test_real_an_earlier_callback_scheduled_later_wakes_the_scheduler(clock: RealClock) -> None:
    done = threading.Event()
    clock.call_at(clock.now() + 3600.0, lambda: pytest.fail("an hour passed"))
    t0 = clock.now()
    clock.call_at(clock.now() + 0.01, done.set)
    assert done.wait(WAIT)
    assert clock.now() - t0 < WAIT / 2
    assert clock.pending() == 1


def test_real_cancel_forgets_a_pending_callback_and_ignores_one_that_ran(clock: RealClock) -> None:
    seen: list[str] = []
    first, done = threading.Event(), threading.Event()
    ran = clock.call_at(clock.now(), lambda: (seen.append("ran"), first.set()))
    assert first.wait(WAIT)
    clock.cancel(ran)  # already ran: ignored
    forgotten = clock.call_at(clock.now() + 0.02, lambda: seen.append("cancelled one"))
    clock.call_at(clock.now() + 0.04, lambda: (seen.append("kept"), done.set()))
    clock.cancel(forgotten)
    clock.cancel(object())  # not a handle of this clock: ignored
    assert done.wait(WAIT)
    assert seen == ["ran", "kept"]
    assert clock.pending() == 0


def test_real_a_failing_callback_is_kept_and_the_next_one_still_runs(clock: RealClock, caplog) -> None:
    done = threading.Event()

    def broken() -> None:
        raise ValueError("bad reading")

    clock.call_at(clock.now(), broken)
    clock.call_at(clock.now(), done.set)
    assert done.wait(WAIT)
    stats = clock.statistics()
    assert stats["failed"] == 1 and stats["ran"] >= 1
    assert "ValueError: bad reading" in stats["errors"][0]  # type: ignore[index]
    assert "clock callback" in caplog.text


def test_real_callbacks_run_one_at_a_time_on_one_thread(clock: RealClock) -> None:
    threads: set[int] = set()
    active, overlap = [0], []
    done = threading.Event()
    lock = threading.Lock()

    def callback(last: bool) -> None:
        with lock:
            active[0] += 1
            overlap.append(active[0])
            threads.add(threading.get_ident())
        with lock:
            active[0] -= 1
        if last:
            done.set()

    now = clock.now()
    for i in range(50):
        clock.call_at(now + (i % 5) * 0.001, lambda last=(i == 49): callback(last))
    assert done.wait(WAIT)
    assert len(threads) == 1 and max(overlap) == 1


def test_real_close_stops_the_thread_forgets_pending_callbacks_and_can_start_again() -> None:
    clock = RealClock()
    assert clock.statistics()["running"] is False  # no thread until something is scheduled
    clock.call_at(clock.now() + 3600.0, lambda: pytest.fail("ran after close"))
    thread = clock._thread
    assert thread is not None and thread.is_alive() and clock.statistics()["running"] is True
    clock.close()
    assert clock.pending() == 0 and clock.statistics()["running"] is False
    assert not thread.is_alive(), "close() left the scheduler thread running"
    done = threading.Event()
    clock.call_at(clock.now(), done.set)  # scheduling again starts a new thread
    assert done.wait(WAIT)
    clock.close()
    clock.close()  # twice is harmless


def test_real_close_from_a_callback_does_not_wait_for_itself() -> None:
    clock = RealClock()
    done = threading.Event()
    clock.call_at(clock.now(), lambda: (clock.close(), done.set()))
    assert done.wait(WAIT)
    assert clock.statistics()["running"] is False


# -- the manual clock ----------------------------------------------------------------------------
def test_manual_call_at_returns_handles_and_cancel_forgets_one() -> None:
    clock, seen = ManualClock(), []
    keep = clock.call_at(2.0, lambda: seen.append("kept"))
    drop = clock.call_at(1.0, lambda: seen.append("dropped"))
    clock.cancel(drop)
    assert clock.pending() == 1
    clock.advance(5.0)
    clock.cancel(keep)  # ran already: ignored
    assert seen == ["kept"] and clock.pending() == 0


def test_manual_past_instant_runs_on_the_next_wait_not_inside_call_at() -> None:
    clock, seen = ManualClock(start=50.0), []
    clock.call_at(10.0, lambda: seen.append(clock.now()))
    assert seen == []
    clock.advance(0.0)
    assert seen == [50.0]  # time never goes back


def test_manual_recurring_callback_lands_on_exact_instants_for_90_days() -> None:
    clock, instants = ManualClock(), []
    every, days = 10.0, 90
    start = 0.0

    def tick(n: int) -> None:
        instants.append(clock.now())
        clock.call_at(start + (n + 1) * every, lambda: tick(n + 1))  # from the plan, never from now()

    clock.call_at(every, lambda: tick(1))
    clock.advance(days * 86_400.0)
    assert len(instants) == days * 8_640
    assert all(t == (i + 1) * every for i, t in enumerate(instants))
    assert clock.now() == days * 86_400.0
