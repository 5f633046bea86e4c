"""Report pieces the pytest plugin calls: JUnit properties, Allure labels/steps/attachments, and the
reports built (and their path printed) at the end of a run.

Plain functions, no hooks: the plugin decides when to call them. allure is imported only when the
allure-pytest plugin is active, so a run without it pays nothing.

    # in pytest_runtest_makereport (call phase), with the test's start/end time:
    records = records_between(folder, start, end, worker)
    add_junit_properties(item, records)
    if allure_active(item.config):
        allure_report(records, rig=rig_name, console_text=text, pcaps=pcap_paths)
    # in pytest_sessionfinish (controller, after results.json is written):
    built = finish_run(folder, state._journal)
    # in pytest_terminal_summary:
    for line in terminal_lines(built): terminalreporter.write_line(line)
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from harness.errors import HarnessError
from harness.report.analysis import Analysis, analyze, metrics
from harness.report.rundata import RunData
from harness.run.journal import Journal, read_run

#: Metrics worth a JUnit property on every test that produced them.
KEY_METRICS = (
    "boot.time.p50",
    "boot.time.max",
    "reboots.total",
    "reboots.unexpected",
    "telemetry.received",
    "telemetry.loss.total",
    "telemetry.loss.unexplained",
    "telemetry.latency.p50",
    "telemetry.latency.p99",
    "heap.slope",
    "heap.min",
    "ota.outcome",
    "ota.duration.max",
    "power.current.mean",
)
PROPERTY_PREFIX = "harness."
JOURNAL_EXCERPT_LINES = 400


def records_between(
    folder: Path, start: float, end: float, worker: str | None = None
) -> list[dict[str, Any]]:
    """The run's records from ``start`` to ``end`` (Unix s), optionally of one xdist worker only."""
    if not folder.is_dir():
        return []
    return [
        r
        for r in read_run(folder)
        if start <= float(r.get("t", 0.0)) <= end and (worker is None or r.get("worker", worker) == worker)
    ]


def window_analysis(records: list[dict[str, Any]], folder: Path | None = None) -> Analysis:
    """The report analysis of just these records (a test's slice of the journal)."""
    return analyze(RunData(folder or Path("."), records, {}))


def junit_properties(values: Mapping[str, Any], keys: Sequence[str] = KEY_METRICS) -> list[tuple[str, str]]:
    """``[("harness.boot.time.p50", "1.21"), ...]`` for the key metrics that have a value."""
    out = []
    for key in keys:
        value = values.get(key)
        if value is None or value == "none":
            continue
        out.append((PROPERTY_PREFIX + key, f"{value:.6g}" if isinstance(value, float) else str(value)))
    return out


def add_junit_properties(item: pytest.Item, records: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Put the test's key metrics in ``item.user_properties`` (so junit.xml carries them); returns them."""
    if not any(r.get("kind") in ("boot", "telemetry", "ota", "power") for r in records):
        return []
    props = [
        p
        for p in junit_properties(metrics(window_analysis(records)))
        if p[0] not in {k for k, _ in item.user_properties}
    ]
    item.user_properties.extend(props)
    return props


def allure_active(config: pytest.Config) -> bool:
    """allure-pytest is writing results (``--alluredir``): its listener is registered. The plugin module
    itself is loaded whenever the package is installed, so its presence says nothing."""
    return bool(config.pluginmanager.hasplugin("allure_listener"))


def allure_labels(*, rig: str, firmware: Iterable[str] = (), scenario: str | None = None) -> None:
    """Labels for the current test: rig, each firmware version, scenario."""
    import allure

    allure.dynamic.label("rig", rig)  # type: ignore[no-untyped-call]
    for fw in firmware:
        allure.dynamic.label("firmware", fw)  # type: ignore[no-untyped-call]
    if scenario:
        allure.dynamic.label("scenario", scenario)  # type: ignore[no-untyped-call]


def allure_steps(steps: Iterable[Mapping[str, Any]]) -> int:
    """Replay recorded scenario ``step`` records as Allure steps (failed ones as failed); returns how many."""
    from allure_commons import plugin_manager

    count = 0
    for s in steps:
        title = f"{s.get('index', '')} {s.get('name', '')}".strip()
        if s.get("duration") is not None:
            title += f" ({float(s['duration']):.3g}s)"
        params = {k: str(s[k]) for k in ("observed", "expected") if s.get(k) is not None}
        step_id = str(uuid.uuid4())
        plugin_manager.hook.start_step(uuid=step_id, title=title, params=params)
        error = None
        if s.get("status") == "failed":
            error = AssertionError(
                str(s.get("message") or f"observed {s.get('observed')!r}, expected {s.get('expected')!r}")
            )
        plugin_manager.hook.stop_step(
            uuid=step_id, title=title, exc_type=type(error) if error else None, exc_val=error, exc_tb=None
        )
        count += 1
    return count


def allure_attachments(
    records: list[dict[str, Any]],
    *,
    console_text: str | None = None,
    pcaps: Iterable[Path] = (),
    a: Analysis | None = None,
) -> list[str]:
    """Attach console log, journal excerpt, time-series plot and pcaps to the current test; returns names."""
    import allure

    from harness.report.slice_plot import slice_png

    names = []
    if console_text:
        allure.attach(console_text, name="console", attachment_type=allure.attachment_type.TEXT)
        names.append("console")
    if records:
        lines = [json.dumps(r, default=str) for r in records[-JOURNAL_EXCERPT_LINES:]]
        allure.attach(
            "\n".join(lines),
            name="journal excerpt",
            attachment_type=allure.attachment_type.TEXT,
            extension="jsonl",
        )
        names.append("journal excerpt")
        png = slice_png(records, "test")  # the test's own slice; trend plots belong to the soak report
        if png is not None:
            allure.attach(png, name="timeseries.png", attachment_type=allure.attachment_type.PNG)
            names.append("timeseries.png")
    for pcap in pcaps:
        if Path(pcap).is_file():
            allure.attach.file(  # type: ignore[no-untyped-call]
                str(pcap), name=Path(pcap).name, extension="pcap"
            )
            names.append(Path(pcap).name)
    return names


def allure_report(
    records: list[dict[str, Any]], *, rig: str, console_text: str | None = None, pcaps: Iterable[Path] = ()
) -> None:
    """Labels, steps and attachments for the current test, from its slice of the journal."""
    a = window_analysis(records)
    versions = sorted({v for vs in _firmware(a).values() for v in vs})
    scenarios = [str(r["scenario"]) for r in records if r.get("kind") == "scenario" and r.get("scenario")]
    allure_labels(rig=rig, firmware=versions, scenario=scenarios[0] if scenarios else None)
    allure_steps(r for r in records if r.get("kind") == "step")
    allure_attachments(records, console_text=console_text, pcaps=pcaps, a=a)


def _firmware(a: Analysis) -> dict[str, list[str]]:
    from harness.report.analysis import firmware_versions

    return firmware_versions(a)


def firmware_of(records: list[dict[str, Any]], version_pattern: str | None = None) -> list[str]:
    """Every firmware version the slice shows, sorted: telemetry ``fw``, committed OTA versions, and console
    lines matching the device profile's version pattern (a ``version`` command a scenario ran)."""
    if not records:
        return []
    found = {v for vs in _firmware(window_analysis(records)).values() for v in vs}
    if version_pattern:
        lines = [str(r.get("line", "")) for r in records if r.get("kind") == "console"]
        found.update(versions_in(lines, version_pattern))
    return sorted(found)


def versions_in(lines: Iterable[str], version_pattern: str) -> set[str]:
    """The versions a device profile's version pattern finds in console lines (its group ``version``)."""
    import re

    pattern = re.compile(version_pattern)
    found = set()
    for line in lines:
        if m := pattern.search(line):
            found.add(m.group("version") if "version" in pattern.groupindex else m.group(0))
    return found


def finish_run(folder: Path, journal: Journal | None = None) -> Any:
    """Build every report of the finished run (controller side, after results.json); None without a folder.

    ``journal`` (this process's, if it was opened) is flushed first: records still in its buffer would
    be missing from the reports. Returns :class:`harness.report.build.Built`; a report that cannot be
    built never fails the run: the reason comes back as a string for ``terminal_lines``.
    """
    from harness.report.build import build

    if journal is not None:
        journal.flush()
    if not folder.is_dir():
        return None
    try:
        return build(folder)
    except (HarnessError, OSError, ValueError) as exc:
        return f"harness: reports for {folder} not built: {exc}"


def terminal_lines(built: Any) -> list[str]:
    """What to print at the end of the pytest run: the verdict, the report, and what else the run folder
    holds, each path once (the folder is named by the report's own path)."""
    if built is None:
        return []
    if isinstance(built, str):
        return [built]
    state = "complete run" if built.complete else "INCOMPLETE run (rebuilt from the journal as far as written)"
    verdict = "PASS" if built.soak.passed else "ATTENTION: " + "; ".join(built.soak.problems)
    beside = [p.name for p in (built.results, built.summary) if p.parent == built.folder]
    if built.exported:
        beside.append(f"{built.exported[0].parent.name}/ ({len(built.exported)} files)")
    pngs = f" (+{len(built.soak.pngs)} PNG)" if built.soak.pngs else ""
    return [
        f"harness: {state}; {verdict}",
        f"harness: report {built.soak.html}{pngs}",
        f"harness: beside it: {', '.join(beside)}",
    ]
