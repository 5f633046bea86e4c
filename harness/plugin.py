"""The pytest plugin: ``--rig``, the ``rig``/``console``/``power``/``dut`` fixtures, the
``requires`` marker, per-test rig health checks and console logs on failed tests.

Shaped like pytest's own plugins: options in one group, each with an ini twin; run state in
``config.stash``; heavy imports (drivers, pyserial, pyvisa) only when a test needs a rig.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.errors import ConfigError, HarnessError
from harness.session import HarnessSession, HealthEvent, check_capabilities

STATE = pytest.StashKey[HarnessSession]()
_CONSOLE_MARK = pytest.StashKey[Any]()
_TEST_RECORD = pytest.StashKey[dict[str, Any]]()  # the test's journal record: started?, outcome so far
RIG_FIXTURES = frozenset({"rig", "console", "power", "dut"})


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "IoT device harness")
    group.addoption(
        "--rig",
        dest="harness_rig",
        metavar="NAME|PATH",
        help="rig to run against: rigs/NAME.yaml, a built-in rig, or a path to a rig file "
        "(ini: rig; default: twin)",
    )
    group.addoption(
        "--rig-lock-dir",
        dest="harness_rig_lock_dir",
        metavar="DIR",
        help="where bench claims lock, shared by every run on the machine "
        "(ini: rig_lock_dir; default: <tmp>/iot-harness-locks)",
    )
    group.addoption(
        "--rig-claim-timeout",
        dest="harness_rig_claim_timeout",
        metavar="DURATION",
        type=_duration_option,
        help="how long a worker waits for a free bench (ini: rig_claim_timeout; default: the pool's "
        "claim_timeout, 30m)",
    )
    group.addoption(
        "--reports-dir",
        dest="harness_reports_dir",
        metavar="DIR",
        help="where runs write their folder (ini: reports_dir; default: reports)",
    )
    group.addoption(
        "--run-id", dest="harness_run_id", metavar="ID",
        help="name of this run's folder (default: time-based)",
    )
    group.addoption(
        "--scenario-duration",
        dest="harness_scenario_duration",
        metavar="DURATION",
        type=_duration_option,
        help="run soak scenarios for this long instead of their own duration (e.g. 2m, 1h30m)",
    )
    group.addoption(
        "--scenario-seed",
        dest="harness_scenario_seed",
        metavar="N",
        type=int,
        help="replace every scenario's seed (replay a failed run with the seed its report names)",
    )
    group.addoption(
        "--no-rig-health",
        dest="harness_no_health",
        action="store_true",
        help="skip the per-test rig health check (ini: rig_health = false)",
    )
    group.addoption(
        "--build-reports",
        dest="harness_build_reports",
        action="store_true",
        default=None,
        help="at the end of the run, build the soak report, summary and data export in the run folder "
        "(ini: build_reports; 'harness run' always does)",
    )
    parser.addini("build_reports", "build the run's reports when it ends", type="bool", default=False)
    parser.addini("rig", "rig to run against (name or path)", default="twin")
    parser.addini("scenario_progress_every", "how often a running scenario prints a progress line when the "
                  "output is not a terminal (CI logs; e.g. 5m)", default="1m")  # fmt: skip
    parser.addini("scenario_dirs", "folders whose *.yaml files are scenarios", type="args", default=["scenarios"])
    parser.addini("reports_dir", "where runs write their folder", default="reports")
    parser.addini("rig_lock_dir", "where bench claims lock (default: <tmp>/iot-harness-locks)", default="")
    parser.addini("rig_claim_timeout", "how long a worker waits for a free bench (e.g. 30m)", default="")
    parser.addini("rig_health", "check (and recover) the device before each test that uses it",
                  type="bool", default=True)


def _duration_option(text: str) -> float:
    import argparse

    from harness.errors import UnitError
    from harness.units import parse_duration

    try:
        return parse_duration(text)
    except UnitError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """``scenarios/**/*.yaml`` are tests, and so is a YAML file named on the command line (as pytest
    collects a Python file given by name whatever ``python_files`` says)."""
    if file_path.suffix not in (".yaml", ".yml"):
        return None
    from harness.scenario.items import ScenarioFile

    if parent.session.isinitpath(file_path):
        return ScenarioFile.from_parent(parent, path=file_path)
    dirs = set(parent.config.getini("scenario_dirs"))
    try:
        parts = file_path.parent.relative_to(parent.config.rootpath).parts
    except ValueError:
        parts = file_path.parent.parts
    if not dirs & set(parts):
        return None
    return ScenarioFile.from_parent(parent, path=file_path)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "requires(*capabilities): skip unless the rig has every named capability "
        "(console, power, network, telemetry, ota)",
    )
    from harness.rig.loader import resolve_choice
    from harness.runfolder import pick_run_id

    ref = config.getoption("harness_rig") or config.getini("rig") or "twin"
    try:
        choice = resolve_choice(str(ref), config.rootpath)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    claim_timeout = config.getoption("harness_rig_claim_timeout")
    if claim_timeout is None and config.getini("rig_claim_timeout"):
        import argparse

        try:
            claim_timeout = _duration_option(str(config.getini("rig_claim_timeout")))
        except argparse.ArgumentTypeError as exc:
            raise pytest.UsageError(f"ini rig_claim_timeout: {exc}") from None
    lock_dir = config.getoption("harness_rig_lock_dir") or config.getini("rig_lock_dir") or None
    reports = config.getoption("harness_reports_dir") or config.getini("reports_dir") or "reports"
    reports_dir = Path(reports)
    if not reports_dir.is_absolute():
        reports_dir = config.rootpath / reports_dir
    workerinput = getattr(config, "workerinput", None)
    run_id = workerinput["harness_run_id"] if workerinput else pick_run_id(config.getoption("harness_run_id"))
    worker = workerinput["workerid"] if workerinput else "main"
    health = not config.getoption("harness_no_health") and bool(config.getini("rig_health"))
    from harness import interrupt
    from harness.runfolder import sweep_scratch

    interrupt.install()  # SIGTERM (CI cancel, timeout(1)) ends the run like Ctrl-C
    if workerinput is None:
        sweep_scratch()  # temp folders of harness runs that were killed
    state = HarnessSession(choice.first.spec, choice.first.source, reports_dir, run_id, worker, health,
                           choice=choice, lock_dir=Path(lock_dir) if lock_dir else None,
                           claim_timeout=claim_timeout)  # fmt: skip
    config.stash[STATE] = state
    config.pluginmanager.register(_Interrupts(state), "harness-interrupts")
    if workerinput is None:
        config.pluginmanager.register(_ResultsRecorder(state), "harness-results")


class _Interrupts:
    """SIGTERM and Ctrl-C end the run like Ctrl-C and leave a ``run interrupted`` record (harness.interrupt)."""

    def __init__(self, state: HarnessSession) -> None:
        self.state = state

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        from harness import interrupt

        interrupt.record(self.state.journal, reason=str(excinfo.value))
        self.state.journal.flush()


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist: every worker writes into the controller's run folder."""
    node.workerinput["harness_run_id"] = node.config.stash[STATE].run_id


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop this process's rig and services and close its journal before reports are built."""
    state = session.config.stash.get(STATE, None)
    if state is not None:
        state.close()


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is not None:
        state.close()  # a run interrupted before sessionfinish


# -- markers and health -----------------------------------------------------------------------


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``requires(...)``: mark tests the rig cannot serve as skipped, before any rig is started."""
    state = config.stash[STATE]
    for item in items:
        for marker in item.iter_markers("requires"):
            unknown, missing = check_capabilities(marker.args, state.capabilities)
            if unknown:
                raise pytest.UsageError(
                    f"{item.nodeid}: requires(): unknown capability {', '.join(map(repr, unknown))}; "
                    f"expected some of console, power, network, telemetry, ota"
                )
            if missing:
                reason = f"rig {state.spec.name!r} lacks {', '.join(missing)} (requires {marker.args})"
                item.add_marker(pytest.mark.skip(reason=reason))
                break


def pytest_collection_finish(session: pytest.Session) -> None:
    """A bench the collected tests use is opened now: one that cannot be opened fails the run (exit 4,
    one line) instead of every test skipping for a capability it lacks (harness.rig.preflight)."""
    from harness.rig.preflight import bench_problem, fail_instead_of_skipping

    state = session.config.stash.get(STATE, None)
    if state is None or session.config.option.collectonly:
        return
    ref = session.config.getoption("harness_rig") or session.config.getini("rig") or "twin"
    problem = bench_problem(state, session.items, str(ref))
    if problem and hasattr(session.config, "workerinput"):
        fail_instead_of_skipping(state, session.items)
    elif problem:
        raise pytest.UsageError(problem)


@pytest.fixture(autouse=True)
def _harness_rig_health(request: pytest.FixtureRequest) -> Iterator[None]:
    """Before a test that uses the device: check it answers, recover it if not, fail fast if dead."""
    state = request.config.stash[STATE]
    if not RIG_FIXTURES & set(request.fixturenames):
        yield
        return
    if state.broken:
        pytest.fail(f"rig is out of service: {state.broken}", pytrace=False)
    rig = request.getfixturevalue("rig")
    try:
        message = state.health_check(request.node.nodeid)
    except HarnessError:
        message = None  # state.broken says why; failed outside the handler, as one line
    if state.broken:
        pytest.fail(f"rig is out of service: {state.broken}", pytrace=False)
    if message:
        request.node.user_properties.append(("rig_health", message))
    if rig._console is not None:
        request.node.stash[_CONSOLE_MARK] = (rig.console, rig.console.mark())
    yield


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def rig(request: pytest.FixtureRequest) -> Any:
    """The live rig of this process (one per xdist worker): a started twin or an opened bench."""
    state = request.config.stash[STATE]
    with contextlib.suppress(HarnessError):  # failed below, outside the handler: one line, not a chain of two
        return state.rig()
    pytest.fail(f"rig is out of service: {state.broken}", pytrace=False)


@pytest.fixture
def console(rig: Any) -> Any:
    """The device's console (harness.drivers.console.Console) — expect, command, send."""
    return rig.console


@pytest.fixture
def power(rig: Any) -> Any:
    """The device's power supply (harness.drivers.power.PowerSupply) — on, off, cycle, measure."""
    return rig.power


@pytest.fixture
def dut(rig: Any) -> Any:
    """The device under test, at its prompt: boot, version, reboot, power_cycle, command."""
    rig.dut.ensure_ready()
    return rig.dut


def _services(request: pytest.FixtureRequest, what: str) -> Any:
    state = request.config.stash[STATE]
    if state.broken:
        pytest.fail(f"rig is out of service: {state.broken}", pytrace=False)
    problem = ""
    try:
        services = state.services()
    except HarnessError as exc:
        problem = str(exc)
    if problem:
        pytest.fail(f"could not start the rig's services: {problem}", pytrace=False)
    if services is None:
        pytest.skip(f"rig {state.spec.name!r} has no services section: no {what}")
    return services


@pytest.fixture
def network(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The impairment point between the device and its services (harness.drivers.netem.ImpairmentPoint).

    Whatever a test applies is cleared when it ends, so conditions never leak into the next test.
    """
    services = _services(request, "network")
    if services.network is None:
        pytest.skip("the rig's services run without an impairment point (services.network: false)")
    yield services.network
    services.network.heal()
    services.network.clear()


@pytest.fixture
def telemetry(request: pytest.FixtureRequest) -> Any:
    """The device's telemetry since this test began: wait_for, frame, summary, assert_no_unexplained_loss."""
    from harness.rig.services import TelemetryView

    services = _services(request, "telemetry")
    state = request.config.stash[STATE]
    device = state.spec.twin.device_id if state.spec.twin else None
    return TelemetryView(services.collector, device)


@pytest.fixture
def broker(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The run's MQTT broker: stop(), start_again(), restart(), outage(duration). Restarted if a test leaves it down."""
    services = _services(request, "broker")
    yield services.broker
    if hasattr(services.broker, "running") and not services.broker.running:
        services.broker.start_again()


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The run's OTA artifact server (harness.services.artifacts.ArtifactServer): publish, replace, set_fault.

    The device reaches it through the impairment point at ``rig_services.artifacts_url``; faults a
    test switches on are cleared when it ends.
    """
    services = _services(request, "artifact server")
    yield services.artifacts
    services.artifacts.clear_faults()


@pytest.fixture
def ota(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Updates for the device (harness.rig.ota.OtaService): build(version, variant=, corrupt=), deploy(image, expect=).

    Images are signed with a key made for this run and provisioned on the device before the first update.
    A job a test started and never finished (``start()`` without ``finish()``, a failure in between) is
    cleared from the broker when the test ends, so it cannot install itself during the next test.
    """
    services = _services(request, "ota")
    if services.ota is None:
        pytest.skip("the device profile takes no update (neither ota_delivery: mqtt nor an ota_apply command)")
    yield services.ota
    services.ota.clear_open_jobs()


@pytest.fixture(scope="session")
def journal(request: pytest.FixtureRequest) -> Any:
    """This run's journal (harness.report.journal.Journal): record(kind, **fields)."""
    return request.config.stash[STATE].journal


# -- reporting -----------------------------------------------------------------------------


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
    marked = item.stash.get(_CONSOLE_MARK, None)
    if marked is not None and report.failed:
        console, mark = marked
        text = _format_console(console.timed_lines_since(mark)) or "<no console output during the test>"
        report.sections.append((f"Captured console {console.name}", text))
        if item.config.pluginmanager.hasplugin("allure_listener"):
            import allure

            allure.attach(text, name=f"console {console.name}", attachment_type=allure.attachment_type.TEXT)
    return report


CONSOLE_REPORT_LINES = 200


def _format_console(lines: list[tuple[float, str]]) -> str:
    import time

    omitted = len(lines) - CONSOLE_REPORT_LINES
    head = f"... {omitted} earlier lines omitted (all are in the run journal)\n" if omitted > 0 else ""
    lines = lines[-CONSOLE_REPORT_LINES:]
    return head + "\n".join(
        f"{time.strftime('%H:%M:%S', time.localtime(t))}.{int(t * 1000) % 1000:03d}  {line}"
        for t, line in lines
    )


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
        from harness.report.pytest_support import add_junit_properties, allure_report

        add_junit_properties(item, tap)
        if allure:
            marked = item.stash.get(_CONSOLE_MARK, None)
            text = _format_console(marked[0].timed_lines_since(marked[1])) if marked else None
            allure_report(tap, rig=state.spec.name, console_text=text)


class _ResultsRecorder:
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
        config = session.config
        wanted = config.getoption("harness_build_reports")
        if wanted is None:
            wanted = bool(config.getini("build_reports"))
        if wanted:
            from harness.report.pytest_support import finish_run

            self.state.built = finish_run(self.state.folder, None)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is None or hasattr(config, "workerinput"):
        return
    for event in state.health_events:
        terminalreporter.write_line(f"rig health before {event.nodeid}: {event.message}", yellow=True)
    from harness.rig.preflight import out_of_service_summary

    ref = config.getoption("harness_rig") or config.getini("rig") or "twin"
    for line in out_of_service_summary(terminalreporter.stats, str(ref)):
        terminalreporter.write_line(line, red=True)
    if state.folder.is_dir() and (state.built is None or isinstance(state.built, str)):
        terminalreporter.write_line(f"harness: run {state.run_id} recorded in {state.folder}")
    if state.built is not None:
        from harness.report.pytest_support import terminal_lines

        for line in terminal_lines(state.built):
            terminalreporter.write_line(line)
