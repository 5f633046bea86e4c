"""The run's clocks: the real one sleeps, the manual one jumps between scheduled actions."""

from __future__ import annotations

import threading
import time

import pytest

from harness.run.clock import RealClock
from harness.run.journal import Journal, read_journal
from harness.run.manual_clock import DEFAULT_EPOCH, ManualClock


def test_real_clock_is_monotonic_and_wall_time() -> None:
    clock = RealClock()
    before_wall, before = time.time(), time.monotonic()
    now, wall = clock.now(), clock.wall()
    assert before <= now <= time.monotonic()
    assert before_wall <= wall <= time.time()


def test_real_clock_wait_lets_time_pass_and_a_cancel_ends_it_at_once() -> None:
    clock, cancel = RealClock(), threading.Event()
    t0 = clock.now()
    assert clock.wait(0.05, cancel) is True
    assert clock.now() - t0 >= 0.05
    threading.Timer(0.05, cancel.set).start()
    t0 = clock.now()
    assert clock.wait(30.0, cancel) is False
    assert clock.now() - t0 < 5.0


def test_real_clock_condition_wakes_its_waiter_and_times_out_on_real_time() -> None:
    clock = RealClock()
    cond, lines = clock.condition(), []

    def feed() -> None:
        with cond:
            lines.append("BOOT-DONE")
            cond.notify_all()

    threading.Timer(0.05, feed).start()
    with cond:
        assert cond.wait_for(lambda: "BOOT-DONE" in lines, timeout=10.0) is True
        t0 = clock.now()
        assert cond.wait_for(lambda: "never" in lines, timeout=0.05) is False
    assert clock.now() - t0 >= 0.05


def test_manual_clock_wall_is_its_epoch_plus_now() -> None:
    clock = ManualClock(start=10.0)
    assert (clock.now(), clock.wall()) == (10.0, DEFAULT_EPOCH + 10.0)
    clock.advance(3600.0)
    assert (clock.now(), clock.wall()) == (3610.0, DEFAULT_EPOCH + 3610.0)
    assert ManualClock(epoch=100.0).wall() == 100.0


def test_manual_wait_runs_the_actions_due_in_time_order_at_their_instants() -> None:
    clock, seen = ManualClock(), []
    clock.call_at(5.0, lambda: seen.append(("b", clock.now())))
    clock.call_at(2.0, lambda: seen.append(("a", clock.now())))
    clock.call_at(5.0, lambda: seen.append(("c", clock.now())))  # same instant: in the order scheduled
    clock.call_at(50.0, lambda: seen.append(("late", clock.now())))
    assert clock.wait(10.0, threading.Event()) is True
    assert seen == [("a", 2.0), ("b", 5.0), ("c", 5.0)]
    assert clock.now() == 10.0 and clock.pending() == 1


def test_manual_wait_returns_false_at_the_instant_an_action_cancels_it() -> None:
    clock, cancel = ManualClock(), threading.Event()
    clock.call_at(7.0, cancel.set)
    clock.call_at(8.0, lambda: pytest.fail("ran after the cancel"))
    assert clock.wait(3600.0, cancel) is False
    assert clock.now() == 7.0
    assert clock.wait(1.0, cancel) is False  # already cancelled: no time passes
    assert clock.now() == 7.0


def test_manual_condition_runs_actions_until_the_predicate_holds() -> None:
    clock, lines = ManualClock(), []
    cond = clock.condition()

    def feed(line: str) -> None:
        with cond:
            lines.append(line)
            cond.notify_all()

    clock.call_at(1.0, lambda: feed("booting"))
    clock.call_at(4.5, lambda: feed("BOOT-DONE"))
    clock.call_at(9.0, lambda: feed("after"))
    with cond:
        assert cond.wait_for(lambda: "BOOT-DONE" in lines, timeout=60.0) is True
    assert clock.now() == 4.5 and lines == ["booting", "BOOT-DONE"]


def test_manual_condition_times_out_at_its_deadline_on_the_clock() -> None:
    clock, lines = ManualClock(start=100.0), []
    cond = clock.condition()
    clock.call_at(200.0, lambda: lines.append("too late"))
    with cond:
        assert cond.wait_for(lambda: bool(lines), timeout=30.0) is False
    assert clock.now() == 130.0 and lines == []


def test_manual_condition_without_timeout_refuses_to_wait_forever() -> None:
    cond = ManualClock().condition()
    with cond, pytest.raises(RuntimeError, match="wait forever"):
        cond.wait_for(lambda: False)


def test_the_journal_stamps_t_and_mono_from_the_clock_it_is_given(tmp_path) -> None:
    clock = ManualClock(start=5.0, epoch=1_000_000.0)
    with Journal(tmp_path / "journal.jsonl", clock=clock) as journal:
        journal.record("console", line="one")
        clock.advance(2.5)
        journal.record("console", line="two")
        journal.record("power", t=42.0, action="off")  # an explicit t (when it happened) is kept
    recs = list(read_journal(tmp_path / "journal.jsonl"))
    assert [(r["t"], r["mono"]) for r in recs] == [(1_000_005.0, 5.0), (1_000_007.5, 7.5), (42.0, 7.5)]
    assert list(recs[0]) == ["t", "mono", "kind", "line"]  # the record schema is unchanged


def test_a_journal_without_a_clock_stamps_real_time(tmp_path) -> None:
    before = time.time()
    with Journal(tmp_path / "journal.jsonl") as journal:
        rec = journal.record("step", name="one")
    assert before <= rec["t"] <= time.time()
    assert rec["mono"] <= time.monotonic()
