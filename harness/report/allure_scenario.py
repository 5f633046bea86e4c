"""A scenario's result in Allure and JUnit: what the scenario item reports about itself.

Allure (when allure-pytest is active): labels rig / firmware / scenario / seed; every step as an
Allure step (repeats nested, a failed one failed with observed against expected); the events that
fired; each check as a step with its measured value against its limit; attachments: the console
log, the scenario's journal excerpt and a plot of its slice. JUnit: each check's measured value,
limit and verdict as ``<property>`` elements.

    props = check_properties(result)            # -> item.user_properties
    allure_scenario(result, records, rig="twin", console_text=text)
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

JOURNAL_EXCERPT_LINES = 400
_REPEAT = re.compile(r"^(?P<head>.*?\.repeat#(?P<n>\d+))\.(?P<rest>steps\[\d+\].*)$")


def check_properties(result: Any) -> list[tuple[str, str]]:
    """``check.<metric>`` = measured value, ``.limit`` and ``.verdict`` for each check (``#2`` on a repeated
    metric), plus the continuous check that stopped the run early, if one did."""
    out: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    for c in result.checks:
        seen[c.metric] = seen.get(c.metric, 0) + 1
        key = f"check.{c.metric}" + (f"#{seen[c.metric]}" if seen[c.metric] > 1 else "")
        skipped = getattr(c, "skipped", "")  # a check that could not be judged says why
        verdict = "skipped" if skipped else "pass" if c.passed else "fail"
        out += [(key, str(c.observed)), (f"{key}.limit", str(c.expected)), (f"{key}.verdict", verdict)]
        if skipped:
            out.append((f"{key}.skipped", str(skipped)))
    if result.stopped_by is not None:
        out += [("check.stopped_by", result.stopped_by.text), ("check.stopped_by.measured", result.stopped_by.observed),
                ("check.stopped_at_s", f"{result.stopped_at or 0.0:.3f}")]  # fmt: skip
    return out


# -- Allure ------------------------------------------------------------------------------------------


class _Failed(AssertionError):
    """How a failed Allure step carries its message."""


@contextmanager
def _step(title: str, params: dict[str, str] | None = None) -> Iterator[list[str]]:
    """An Allure step around the body; the body appends a message to the yielded list to fail it."""
    from allure_commons import plugin_manager

    step_id = str(uuid.uuid4())
    failure: list[str] = []
    plugin_manager.hook.start_step(uuid=step_id, title=title, params=params or {})
    try:
        yield failure
    finally:
        error = _Failed("; ".join(failure)) if failure else None
        plugin_manager.hook.stop_step(uuid=step_id, title=title, exc_type=type(error) if error else None,
                                      exc_val=error, exc_tb=None)  # fmt: skip


def _step_title(r: dict[str, Any]) -> str:
    title = f"{r.get('index', '')} {r.get('name', '')}".strip()
    if r.get("duration") is not None:
        from harness.units import format_duration

        title += f" ({format_duration(float(r['duration']))})"
    return title


def _replay(steps: Sequence[dict[str, Any]], depth: int = 0) -> bool:
    """Allure steps for step records, repeats nested under 'steps[i] repeat n'; True if any failed."""
    any_failed = False
    i = 0
    while i < len(steps):
        r = steps[i]
        m = _REPEAT.match(str(r.get("index", "")))
        if m is None or depth > 20:
            params = {k: str(r[k]) for k in ("observed", "expected") if r.get(k) not in (None, "")}
            with _step(_step_title(r), params) as failure:
                if r.get("status") == "failed":
                    any_failed = True
                    failure.append(str(r.get("message") or "failed"))
                    if r.get("expected"):
                        failure.append(f"expected: {r['expected']}")
                    if r.get("observed"):
                        failure.append(f"observed: {r['observed']}")
            i += 1
            continue
        head = m["head"]
        group = []
        while i < len(steps):
            inner = _REPEAT.match(str(steps[i].get("index", "")))
            if inner is None or inner["head"] != head:
                break
            group.append({**steps[i], "index": inner["rest"]})
            i += 1
        title = f"{head.rsplit('.repeat#', 1)[0]} repeat {m['n']}"
        with _step(title) as failure:
            if _replay(group, depth + 1):
                any_failed = True
                failure.append("a step of this repeat failed")
    return any_failed


def _checks(result: Any) -> None:
    if not result.checks and result.stopped_by is None:
        return
    passed = sum(1 for c in result.checks if c.passed)
    with _step(f"checks: {passed} of {len(result.checks)} passed") as outer:
        stopped = result.stopped_by
        if stopped is not None:
            with _step(f"stopped at {result.stopped_at or 0.0:.1f}s by continuous check {stopped.text}",
                       {"measured": stopped.observed, "limit": stopped.expected}) as failure:  # fmt: skip
                failure.append(f"measured {stopped.observed}, limit {stopped.expected}")
            outer.append("the run was stopped early")
        for c in result.checks:
            skipped = getattr(c, "skipped", "")
            mark = "skipped" if skipped else "ok" if c.passed else "FAIL"
            params = {"measured": str(c.observed), "limit": str(c.expected)} | ({"skipped": skipped} if skipped else {})
            with _step(f"{mark} {c.text}: measured {c.observed}", params) as failure:
                if not c.passed:
                    failure.append(f"measured {c.observed}, limit {c.expected}")
        if passed < len(result.checks):
            outer.append(f"{len(result.checks) - passed} check(s) failed")


def _events(result: Any, records: Sequence[dict[str, Any]]) -> None:
    failed = [r for r in records if r.get("kind") == "injection" and r.get("failed")]
    if not result.fired and not failed:
        return
    with _step(f"events: {len(result.fired)} fired") as outer:
        for desc in result.fired:
            with _step(str(desc)):
                pass
        for r in failed:
            with _step(f"{r.get('action')} at {r.get('at')}s") as failure:
                failure.append(str(r["failed"]))
        if failed:
            outer.append(f"{len(failed)} event(s) failed")


def allure_scenario(
    result: Any,
    records: Sequence[dict[str, Any]],
    *,
    rig: str,
    firmware: Sequence[str] = (),
    console_text: str | None = None,
) -> list[str]:
    """Labels, steps, checks and attachments of one scenario run in the current Allure test; returns the
    attachment names."""
    import allure

    from harness.report.slice_plot import slice_png

    allure.dynamic.label("rig", rig)  # type: ignore[no-untyped-call]
    for fw in firmware:
        allure.dynamic.label("firmware", fw)  # type: ignore[no-untyped-call]
    allure.dynamic.label("scenario", result.name)  # type: ignore[no-untyped-call]
    allure.dynamic.label("seed", str(result.seed))  # type: ignore[no-untyped-call]
    _replay([r for r in records if r.get("kind") == "step"])
    _events(result, records)
    _checks(result)
    names = []
    if console_text:
        allure.attach(console_text, name="console", attachment_type=allure.attachment_type.TEXT)
        names.append("console")
    if records:
        lines = [json.dumps(r, default=str) for r in records[-JOURNAL_EXCERPT_LINES:]]
        omitted = len(records) - JOURNAL_EXCERPT_LINES
        note = {"omitted": omitted, "note": "earlier records are in the run journal"}
        head = [json.dumps(note)] if omitted > 0 else []
        allure.attach("\n".join(head + lines), name="journal excerpt", attachment_type=allure.attachment_type.TEXT,
                      extension="jsonl")  # fmt: skip
        names.append("journal excerpt")
    png = slice_png(records, f"scenario {result.name}")
    if png is not None:
        allure.attach(png, name="timeseries.png", attachment_type=allure.attachment_type.PNG)
        names.append("timeseries.png")
    return names
