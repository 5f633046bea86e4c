"""Open a bench before its tests run, so a rig that cannot be opened fails the run.

A bench is opened lazily, by the first test that uses it. When every such test is skipped (the
rig lacks a capability they need) nothing ever opens it, and a bench whose tty does not exist or
whose supply is off reports "40 skipped", exit 0. So once collection is done, a bench that the
collected tests use is opened; if it cannot be, the run stops with one line saying why.

A bench another process holds (another xdist worker of this run, or another run) is left alone:
its holder has opened it, and this process's tests wait for it as they always did.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

from harness.errors import HarnessError


def uses_rig(item: Any) -> bool:
    """A test item that needs the device: a rig fixture, a ``requires`` marker, or a scenario."""
    from harness.plugin import RIG_FIXTURES

    if RIG_FIXTURES & set(getattr(item, "fixturenames", ()) or ()):
        return True
    if item.get_closest_marker("requires") is not None:
        return True
    from harness.scenario.items import ScenarioItem

    return isinstance(item, ScenarioItem)


def bench_problem(state: Any, items: Iterable[Any], rig_ref: str) -> str | None:
    """Open the session's bench now if ``items`` use it; the one-line problem when it cannot be."""
    from harness.rig.claim import DEFAULT_LOCK_DIR, resource_keys, try_claim

    if state.spec.is_twin or (state.broken is None and state._rig is not None):
        return None
    if not any(uses_rig(item) for item in items):
        return None
    if state.broken is None and state.claim is None:
        members = state.choice.members if state.choice is not None else []
        lock_dir = state.lock_dir or DEFAULT_LOCK_DIR
        free = False
        for member in members:
            probe = try_claim(member, resource_keys(member.spec), lock_dir, {"worker": state.worker, "run_id": "probe"})
            if probe is not None:
                probe.release()
                free = True
                break
        if members and not free:
            return None  # its holder opened it; the tests here wait for it at their turn
    with contextlib.suppress(HarnessError):  # state.broken says why
        state.rig()
    if state.broken is None:
        return None
    return f"rig is out of service: {state.broken} (harness rig check {rig_ref} opens each part and reports it)"


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
