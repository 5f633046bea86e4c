"""Open a bench before its tests run, so a rig that cannot be opened fails the run.

A bench is opened lazily, by the first test that uses it. When every such test is skipped (the
rig lacks a capability they need) nothing ever opens it, and a bench whose tty does not exist or
whose supply is off reports "40 skipped", exit 0. So once collection is done, a bench that the
collected tests use is opened; if it cannot be, the run stops with one line saying why.

A bench another process holds and has open (another xdist worker of this run, or another run) is
left alone: this process's tests wait for it at their turn as they always did. A holder still
*opening* it is waited for (bounded): if the bench is dead, its holder gives the claim back at once
and this process tries it too, so every xdist worker fails its tests with the bench's own problem —
none skips them for a capability the rig lacks, none waits for a claim that frees only at the end.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable
from typing import Any

from harness.errors import HarnessError
from harness.rig.claim import POLL_MAX, POLL_MIN
from harness.rig.kinds import kind_of
from harness.session import RIG_FIXTURES

OPENING_WAIT = 60.0  # seconds a collection waits for another process to finish opening a bench


def uses_rig(item: Any) -> bool:
    """A test item that needs the device: a rig fixture, a ``requires`` marker, or a scenario."""
    if RIG_FIXTURES & set(getattr(item, "fixturenames", ()) or ()):
        return True
    if item.get_closest_marker("requires") is not None:
        return True
    from harness.scenario.items import ScenarioItem

    return isinstance(item, ScenarioItem)


def bench_problem(state: Any, items: Iterable[Any], rig_ref: str) -> str | None:
    """Open the session's bench now if ``items`` use it; the one-line problem when it cannot be."""
    if not kind_of(state.spec).claimed or (state.broken is None and state._rig is not None):
        return None
    if not any(uses_rig(item) for item in items):
        return None
    if state.broken is None and not _claim_unless_in_use(state):
        return None  # its holder opened it; the tests here wait for it at their turn
    with contextlib.suppress(HarnessError):  # state.broken says why
        state.rig()
    if state.broken is None:
        return None
    return f"rig is out of service: {state.broken} ({check_hint(rig_ref)})"


def check_hint(rig_ref: str) -> str:
    return f"harness rig check {rig_ref} opens each part and reports it"


def _claim_unless_in_use(state: Any) -> bool:
    """Claim a free bench now; False when every bench is held by a process that has it open (or says
    nothing of its state: another run, ``harness rig check``). A holder still opening the bench is
    waited for, up to OPENING_WAIT: it either opens it, or finds it dead and gives it back, and then
    this process tries it too and reports the same problem instead of skipping or waiting at its tests."""
    if not state.needs_claim():
        return True
    pause = threading.Event()  # never set: a bounded wait between looks (no event says "claim changed")
    began = time.monotonic()
    poll = POLL_MIN
    while True:
        if state.claim_bench_now():
            return True
        opening = [h for h in state.bench_holders() if h.opening]
        left = began + OPENING_WAIT - time.monotonic()
        if not opening or left <= 0:
            if opening:
                state.journal.record("rig", action="waiting", busy="; ".join(h.describe() for h in opening),
                                     note=f"still being opened after {OPENING_WAIT:g}s; left to its holder")
            return False
        pause.wait(min(poll, left))
        poll = min(POLL_MAX, poll * 2)


def fail_instead_of_skipping(state: Any, items: Iterable[Any]) -> None:
    """Under pytest-xdist a worker cannot stop the run from collection: drop the "rig lacks ..."
    skips of the tests that use the broken bench, so each fails with the rig's problem instead."""
    lacks = f"rig {state.spec.name!r} lacks "
    for item in items:
        if uses_rig(item):
            item.own_markers[:] = [
                m for m in item.own_markers
                if not (m.name == "skip" and str(m.kwargs.get("reason", "")).startswith(lacks))
            ]  # fmt: skip


OUT_OF_SERVICE = "rig is out of service: "


def out_of_service_summary(stats: dict[str, list[Any]], rig_ref: str) -> list[str]:
    """One line per distinct rig problem the failed tests of a run report (from every xdist worker),
    with how many tests it failed: what the run ends with, so the cause is not lost among the tests."""
    tests: dict[str, set[tuple[str, str]]] = {}
    for key in ("failed", "error"):
        for report in stats.get(key, ()):
            text = str(getattr(report, "longreprtext", "") or "")
            line = next((ln.strip() for ln in text.splitlines() if ln.strip().startswith(OUT_OF_SERVICE)), None)
            if line is not None:  # a test once per worker that ran it (--dist each), not once per phase
                worker = getattr(getattr(getattr(report, "node", None), "gateway", None), "id", "main")
                tests.setdefault(line, set()).add((str(getattr(report, "nodeid", "")), str(worker)))
    hint = check_hint(rig_ref)
    return [
        f"harness: {len(ids)} test{'s' if len(ids) != 1 else ''} failed: {line}"
        + ("" if hint in line else f" ({hint})")
        for line, ids in tests.items()
    ]
