"""What a run reports about its tests: ``test`` records in the journal, a failed test's console
lines, JUnit properties and Allure results from the test's slice of the journal, results.json
(controller side, every xdist worker's outcomes) and the terminal summary."""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from typing import Any

import pytest

from harness.plugin import options
from harness.session import STATE, HarnessSession, HealthEvent

CONSOLE_MARK = pytest.StashKey[Any]()
"""(console, mark) of a test that uses the device, set before it runs: its console lines since."""
_TEST_RECORD = pytest.StashKey[dict[str, Any]]()  # the test's journal record: started?, outcome so far


def _journal_test_start(item: pytest.Item) -> None:
    """A ``test`` start record once the run's journal is open (a rig fixture may open it during set-up).
    Scenario items journal their own ``scenario`` records."""
    if getattr(item, "harness_reports_itself", False):
        return
    state = item.config.stash.get(STATE, None)
    rec = item.stash.setdefault(_TEST_RECORD, {"started": False, "outcome": "passed"})
    if state is not None and state._journal is not None and not rec["started"]:
        rec["started"] = True
        state._journal.record("test", action="start", nodeid=item.nodeid)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, Any, Any]:
    _journal_test_start(item)
    try:
        return (yield)
    finally:
        _journal_test_start(item)


def _journal_test_outcome(item: pytest.Item, report: pytest.TestReport) -> None:
    """Note the phase's outcome; after teardown, the ``test`` end record (passed, failed, skipped, error)."""
    rec = item.stash.get(_TEST_RECORD, None)
    if rec is None:
        return
    if report.skipped and report.when != "teardown":
        rec["outcome"] = "skipped"
    elif report.failed and rec["outcome"] != "failed":
        rec["outcome"] = "failed" if report.when == "call" else "error"
    state = item.config.stash.get(STATE, None)
    if report.when == "teardown" and rec["started"] and state is not None and state._journal is not None:
        state._journal.record("test", action="end", nodeid=item.nodeid, outcome=rec["outcome"])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    _journal_test_outcome(item, report)
    marked = item.stash.get(CONSOLE_MARK, None)
    if marked is not None and report.failed:
        from harness.report.console_text import format_console

        console, mark = marked
        text = format_console(console.timed_lines_since(mark)) or "<no console output during the test>"
        report.sections.append((f"Captured console {console.name}", text))
        if item.config.pluginmanager.hasplugin("allure_listener"):
            import allure

            allure.attach(text, name=f"console {console.name}", attachment_type=allure.attachment_type.TEXT)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    """The test's slice of the journal: key metrics as JUnit properties, Allure labels/steps/attachments."""
    config = item.config
    if getattr(item, "harness_reports_itself", False):  # scenario items: their own progress and reports
        return (yield)
    from harness.still_running import still_running

    beat = still_running(config, item.nodeid)  # no test silent for a minute
    with beat if beat is not None else contextlib.nullcontext():
        return (yield from _reported_call(item))


def _reported_call(item: pytest.Item) -> Generator[None, Any, Any]:
    config = item.config
    state = config.stash[STATE]
    allure = config.pluginmanager.hasplugin("allure_listener")
    journal = state._journal
    if journal is None or not (getattr(config.option, "xmlpath", None) or allure):
        return (yield)
    tap = journal.tap()
    try:
        return (yield)
    finally:
        journal.untap(tap)
        from harness.report.console_text import format_console
        from harness.report.pytest_support import add_junit_properties, allure_report

        add_junit_properties(item, tap)
        if allure:
            marked = item.stash.get(CONSOLE_MARK, None)
            text = format_console(marked[0].timed_lines_since(marked[1])) if marked else None
            allure_report(tap, rig=state.spec.name, console_text=text)


class ResultsRecorder:
    """Controller-side: collects every test's outcome (from all xdist workers) for results.json."""

    def __init__(self, state: HarnessSession) -> None:
        self.state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or (report.when != "call" and report.failed):
            outcome = report.outcome if report.when == "call" else "error"
            if report.when == "setup" and report.skipped:
                outcome = "skipped"
            props = dict(report.user_properties)
            self.state.results.append(
                {
                    "test": report.nodeid,
                    "outcome": outcome,
                    "phase": report.when,
                    "duration": round(report.duration, 6),
                    "properties": {k: v for k, v in props.items() if isinstance(v, str | int | float)},
                }
            )
            if "rig_health" in props:
                self.state.health_events.append(HealthEvent(report.nodeid, str(props["rig_health"])))
        elif report.when == "setup" and report.skipped:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            self.state.results.append(
                {"test": report.nodeid, "outcome": "skipped", "phase": "setup", "duration": 0.0,
                 "reason": reason}
            )

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self.state.write_results(exitstatus)
        if options.build_reports(session.config):
            from harness.report.pytest_support import finish_run

            self.state.built = finish_run(self.state.folder, None)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is None or hasattr(config, "workerinput"):
        return
    for event in state.health_events:
        terminalreporter.write_line(f"rig health before {event.nodeid}: {event.message}", yellow=True)
    from harness.plugin.preflight import out_of_service_summary

    for line in out_of_service_summary(terminalreporter.stats, options.rig_ref(config)):
        terminalreporter.write_line(line, red=True)
    if state.folder.is_dir() and (state.built is None or isinstance(state.built, str)):
        terminalreporter.write_line(f"harness: run {state.run_id} recorded in {state.folder}")
    if state.built is not None:
        from harness.report.pytest_support import terminal_lines

        for line in terminal_lines(state.built):
            terminalreporter.write_line(line)
