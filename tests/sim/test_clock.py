"""SimClock: the run's Clock and the twin's Scheduler on simpy, with nested drives and a paced mode."""

from __future__ import annotations

import threading
import time
from collections.abc import Generator
from typing import Any

import pytest
import simpy

from harness.run.clock import Clock
from harness.run.manual_clock import DEFAULT_EPOCH
from harness.sim.clock import NothingLeftToHappen, SimClock
from harness.twin.executors import Scheduler


def never() -> threading.Event:
    return threading.Event()


def test_it_is_both_a_run_clock_and_a_twin_scheduler() -> None:
    clock = SimClock(epoch=1000.0)
    run_clock: Clock = clock
    scheduler: Scheduler = clock
    assert run_clock.now() == 0.0 and run_clock.wall() == 1000.0
    assert scheduler.wall_offset() == 1000.0
    assert SimClock().wall() == DEFAULT_EPOCH


def test_wait_runs_what_is_due_up_to_and_including_its_instant_then_stands_there() -> None:
    clock = SimClock()
    seen: list[tuple[str, float]] = []
    clock.call_at(3.0, lambda: seen.append(("a", clock.now())))
    clock.call_at(5.0, lambda: seen.append(("at-end", clock.now())))
    clock.call_at(5.000001, lambda: seen.append(("after", clock.now())))
    assert clock.wait(5.0, never()) is True
    assert seen == [("a", 3.0), ("at-end", 5.0)]
    assert clock.now() == 5.0 and clock.wall() == DEFAULT_EPOCH + 5.0


def test_callbacks_at_one_instant_run_in_the_order_scheduled_and_past_ones_run_next_not_inside_call_at() -> None:
    clock = SimClock()
    clock.wait(10.0, never())
    order: list[str] = []
    clock.call_at(12.0, lambda: order.append("b"))
    clock.call_at(11.0, lambda: order.append("a"))
    clock.call_at(12.0, lambda: order.append("c"))
    clock.call_at(2.0, lambda: order.append(f"past@{clock.now():g}"))
    assert order == []  # nothing runs inside call_at
    clock.wait(5.0, never())
    assert order == ["past@10", "a", "b", "c"]


def test_cancel_forgets_a_pending_callback_and_ignores_one_that_ran() -> None:
    clock = SimClock()
    ran: list[str] = []
    first = clock.call_at(1.0, lambda: ran.append("first"))
    second = clock.call_at(2.0, lambda: ran.append("second"))
    clock.cancel(second)
    clock.wait(3.0, never())
    clock.cancel(first)
    clock.cancel(object())
    assert ran == ["first"]


def test_call_soon_runs_after_the_current_callback_before_time_moves_on() -> None:
    clock = SimClock()
    order: list[tuple[str, float]] = []

    def first() -> None:
        clock.call_soon(lambda: order.append(("soon", clock.now())))
        order.append(("first", clock.now()))

    clock.call_at(1.0, first)
    clock.call_at(1.5, lambda: order.append(("later", clock.now())))
    clock.wait(2.0, never())
    assert order == [("first", 1.0), ("soon", 1.0), ("later", 1.5)]


def test_a_wait_with_nothing_scheduled_jumps_straight_to_its_end() -> None:
    clock = SimClock()
    assert clock.wait(90 * 86400.0, never()) is True
    assert clock.now() == 90 * 86400.0
    assert clock.steps == 0  # no stepping through empty time


def test_wait_returns_false_at_the_instant_a_callback_sets_cancel() -> None:
    clock = SimClock()
    cancel = threading.Event()
    clock.call_at(4.0, cancel.set)
    clock.call_at(6.0, lambda: pytest.fail("ran past the cancel"))
    assert clock.wait(10.0, cancel) is False
    assert clock.now() == 4.0


def test_wait_for_steps_until_the_predicate_holds_and_returns_its_value() -> None:
    clock = SimClock()
    state = {"n": 0}

    def bump() -> None:
        state["n"] += 1

    for t in (1.0, 2.0, 3.0, 4.0):
        clock.call_at(t, bump)
    with (condition := clock.condition()):
        value = condition.wait_for(lambda: state["n"] >= 3 and f"n={state['n']}", timeout=100.0)
        condition.notify_all()  # a no-op, but part of the protocol
    assert value == "n=3" and clock.now() == 3.0


def test_wait_for_that_times_out_stands_at_the_timeout_and_returns_the_falsy_value() -> None:
    clock = SimClock()
    clock.call_at(1.0, lambda: None)
    clock.call_at(500.0, lambda: None)
    assert clock.condition().wait_for(lambda: 0, timeout=20.0) == 0
    assert clock.now() == 20.0


def test_simpy_processes_on_the_env_are_stepped_and_seen_by_predicates() -> None:
    env = simpy.Environment()
    clock = SimClock(env)
    ticks: list[float] = []

    def ticker() -> Generator[simpy.Event, Any, None]:
        while True:
            yield env.timeout(10)
            ticks.append(env.now)

    env.process(ticker())
    assert clock.condition().wait_for(lambda: len(ticks) == 3, timeout=1000.0) is True
    assert clock.now() == 30.0


def test_waiting_forever_with_nothing_scheduled_is_an_error_not_a_hang() -> None:
    clock = SimClock()
    clock.call_at(5.0, lambda: None)

    def console_says_ready() -> bool:
        return False

    with pytest.raises(NothingLeftToHappen, match=r"nothing left to happen: waiting forever for .*console_says_ready"):
        clock.condition().wait_for(console_says_ready)
    assert clock.now() == 5.0


def test_a_callback_may_drive_the_clock_itself_and_the_outer_wait_ends_at_its_own_instant() -> None:
    clock = SimClock()
    log: list[tuple[str, float]] = []
    clock.call_at(3.0, lambda: log.append(("tick", clock.now())))
    clock.call_at(7.0, lambda: log.append(("tock", clock.now())))

    def injection() -> None:  # e.g. deploy an update, then wait for its outcome
        log.append(("inject", clock.now()))
        assert clock.wait(4.0, never()) is True
        log.append(("outcome", clock.now()))

    clock.call_at(2.0, injection)
    assert clock.wait(10.0, never()) is True
    assert log == [("inject", 2.0), ("tick", 3.0), ("outcome", 6.0), ("tock", 7.0)]
    assert clock.now() == 10.0


def test_an_outer_wait_that_a_nested_drive_overran_ends_later_never_earlier() -> None:
    clock = SimClock()
    clock.call_at(1.0, lambda: clock.wait(50.0, never()))
    assert clock.wait(10.0, never()) is True
    assert clock.now() == 51.0


def test_an_outer_wait_for_sees_a_predicate_that_became_true_during_a_nested_drive() -> None:
    clock = SimClock()
    flag = {"set": False}

    def set_flag() -> None:
        flag["set"] = True

    def injection() -> None:
        clock.call_at(clock.now() + 1.0, set_flag)
        assert clock.condition().wait_for(lambda: False, timeout=6.0) is False  # times out at 8.0

    clock.call_at(2.0, injection)
    clock.call_at(20.0, lambda: pytest.fail("the outer wait stepped past the instant it was satisfied"))
    assert clock.condition().wait_for(lambda: flag["set"], timeout=100.0) is True
    # The flag went up at 3.0 inside the nested drive, which ran on to 8.0: the outer wait returns
    # right after the injection, at 8.0.
    assert clock.now() == 8.0


def test_a_nested_wait_for_inside_a_condition_wait_checks_both_predicates() -> None:
    clock = SimClock()
    events: list[float] = []
    for t in (1.0, 2.0, 3.0, 4.0, 5.0):
        clock.call_at(t, lambda: events.append(clock.now()))

    def injection() -> None:
        assert clock.condition().wait_for(lambda: len(events) >= 3, timeout=10.0)
        assert clock.now() == 3.0

    clock.call_at(1.5, injection)
    assert clock.condition().wait_for(lambda: len(events) >= 4, timeout=10.0)
    assert clock.now() == 4.0


def test_factor_must_be_positive() -> None:
    with pytest.raises(ValueError, match="factor: expected a number > 0"):
        SimClock(factor=0)


def test_paced_mode_holds_simulated_time_to_factor_times_wall_time_and_reports_lag() -> None:
    # The one test here that takes wall time: about 0.3 s.
    clock = SimClock(factor=50.0)
    fired: list[float] = []
    clock.call_at(5.0, lambda: fired.append(time.monotonic()))
    start = time.monotonic()
    assert clock.wait(10.0, never()) is True
    elapsed = time.monotonic() - start
    assert elapsed >= 10.0 / 50.0 - 0.005  # 10 simulated seconds take at least 0.2 wall seconds
    assert fired and fired[0] - start >= 5.0 / 50.0 - 0.005
    assert clock.lag() < 10.0  # an idle machine keeps up within a few simulated seconds
    cancel = threading.Event()
    cancel.set()
    assert clock.wait(100.0, cancel) is False  # a paced wait still ends at once on cancel

    def slow() -> None:  # 50 ms of work: 2.5 simulated seconds of pace
        deadline = time.monotonic() + 0.05
        while time.monotonic() < deadline:
            pass

    clock.sync()
    clock.call_at(clock.now() + 0.01, slow)
    clock.call_at(clock.now() + 0.02, lambda: None)
    clock.wait(0.03, never())
    assert clock.lag() >= 2.0  # the simulation fell behind the pace by the work's worth
