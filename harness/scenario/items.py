"""Scenario files as pytest items: ``pytest scenarios/ --rig twin``.

An invalid file becomes an item that fails with its one-line error (the other scenarios still
run); a scenario the rig cannot serve is skipped with the reason; a failed one reports the
failing step or check, observed against expected, and the console lines around it — not a
traceback.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import pytest

from harness.errors import ConfigError, HarnessError
from harness.scenario.loader import LoadedScenario, load_scenario
from harness.scenario.runner import ScenarioContext, ScenarioResult, ScenarioRunner
from harness.session import run_state
from harness.units import format_duration

#: How long the firmware query for the Allure label may take after a scenario that showed no version.
VERSION_QUERY_TIMEOUT = 2.0


class ScenarioFailed(AssertionError):
    """The device did not do what the scenario expects: a test failure (Allure: failed, not broken)."""

    def __init__(self, result: ScenarioResult, console_lines: list[str]) -> None:
        self.result = result
        self.console_lines = console_lines
        super().__init__(result.name)


class InvalidScenario(Exception):
    """A scenario file that did not validate; its message is the one-line error."""


class ScenarioFile(pytest.File):
    """One scenario file. Its node id names the file relative to the rootdir, as pytest's own ids do; a file
    outside the rootdir keeps that rule with ``..`` segments (``../elsewhere/scenarios/x.yaml::x``) instead
    of pytest's fallback of a path relative to the command-line argument, which is empty when the
    argument is the file itself (``::x``: the file lost from its id)."""

    @classmethod
    def from_parent(cls, parent: pytest.Collector, **kw: Any) -> ScenarioFile:  # type: ignore[override]
        path = kw["path"]
        root = parent.config.rootpath
        if "nodeid" not in kw and not path.is_relative_to(root):
            kw["nodeid"] = Path(os.path.relpath(path, root)).as_posix()
        return super().from_parent(parent, **kw)  # type: ignore[no-any-return]

    def collect(self) -> Any:
        root = self.config.rootpath
        try:
            shown = str(self.path.relative_to(root))
        except ValueError:
            shown = str(self.path)
        try:
            loaded = load_scenario(self.path, display_name=shown)
        except ConfigError as exc:
            yield InvalidScenarioItem.from_parent(self, name=self.path.stem, error=str(exc))
            return
        yield ScenarioItem.from_parent(self, name=loaded.scenario.scenario, loaded=loaded)


class _FixtureSupport(pytest.Item):
    """What pytest's own non-Python item (``DoctestItem``) carries so that fixtures and other plugins work:
    ``fixturenames``, ``funcargs``, ``_fixtureinfo`` and a request. Autouse fixtures (a lab's conftest,
    labgrid's, allure's) run for scenario items, and plugins that read ``item.fixturenames`` (labgrid's
    ``pytest_runtest_setup``) find a list, not an AttributeError."""

    obj = None  # no test function (FixtureRequest.function and allure's title lookup read it)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        info = self.session._fixturemanager.getfixtureinfo(node=self, func=None, cls=None)
        self._fixtureinfo = info
        self.fixturenames = info.names_closure
        self._initrequest()

    def _initrequest(self) -> None:  # also called by pytest's runner when an item is run again
        from _pytest.fixtures import TopRequest

        self.funcargs: dict[str, object] = {}
        self._request = TopRequest(self, _ispytest=True)  # type: ignore[arg-type]

    def setup(self) -> None:
        self._request._fillfixtures()


class InvalidScenarioItem(_FixtureSupport):
    def __init__(self, *, error: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error = error

    def runtest(self) -> None:
        raise InvalidScenario(self.error)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, InvalidScenario):
            return f"invalid scenario file: {excinfo.value}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, 0, f"scenario file {self.path.name} (invalid)"


class ScenarioItem(_FixtureSupport):
    #: The plugin's generic per-test Allure/JUnit reporting leaves this item alone: it reports itself,
    #: from its own result, including the first scenario of a run (opened before the journal existed).
    harness_reports_itself = True

    def __init__(self, *, loaded: LoadedScenario, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.loaded = loaded

    def runtest(self) -> None:
        state = run_state(self.config)
        problem = self.loaded.rig_problem(state.capabilities, state.spec.name)
        if problem is not None:
            # Reported at the scenario file, like a skip marker, not at this line.
            raise pytest.skip.Exception(str(problem), _use_item_location=True)
        if state.broken:
            pytest.fail(f"rig is out of service: {state.broken}", pytrace=False)
        problem = None
        try:
            rig = state.rig()
            recovered = state.health_check(self.nodeid)
        except HarnessError as exc:
            problem = state.broken or str(exc)
        if problem is not None:  # failed outside the handler: one line, not a chain of exceptions
            pytest.fail(f"rig is out of service: {problem}", pytrace=False)
        if recovered:
            self.user_properties.append(("rig_health", recovered))
        needs = self.loaded.scenario.needed_capabilities()
        services = state.services() if needs & {"network", "telemetry", "ota"} else None
        telemetry = None
        if services is not None:
            from harness.rig.services import TelemetryView

            telemetry = TelemetryView(services.collector, state.spec.telemetry_device)
        ctx = ScenarioContext(
            journal=state.journal,
            dut=rig.dut,
            power=rig.power_if_any,
            console=rig.console_if_any,
            network=services.network if services is not None else None,
            telemetry=telemetry,
            broker=services.broker if services is not None else None,
            ota=services.ota if services is not None else None,
            rig_name=state.spec.name,
        )
        console = rig.console_if_any
        mark = console.mark() if console is not None else None
        duration = self.config.getoption("harness_scenario_duration", None)
        seed = self.config.getoption("harness_scenario_seed", None)
        from harness.scenario.progress import make_progress

        progress = make_progress(self.config, self.loaded.scenario.scenario, telemetry)
        runner = ScenarioRunner(self.loaded, ctx, duration=duration, seed=seed, progress=progress,
                                progress_every=progress.every if progress is not None else 10.0)  # fmt: skip
        if progress is not None:
            progress.runner = runner
        tap = state.journal.tap()  # the scenario's slice, for JUnit properties and Allure
        finished: ScenarioResult | None = None
        try:
            result = finished = runner.run()
        finally:
            records = state.journal.untap(tap)
            if progress is not None:
                progress.finish(self.nodeid, finished)
        for key, value in result.metrics.items():
            if isinstance(value, int | float | str) and value is not None:
                self.user_properties.append((f"metric.{key}", value))
        self.user_properties.append(("scenario.seed", result.seed))
        self.user_properties.append(("scenario.injections", " ".join(result.fired)))
        self._report(result, records, console, mark, state.spec.name, rig.dut)
        if not result.passed:
            lines = console.lines_since(mark) if console is not None and mark is not None else []
            raise ScenarioFailed(result, lines)

    def _report(self, result: ScenarioResult, records: list[dict[str, Any]], console: Any, mark: Any,
                rig: str, dut: Any) -> None:  # fmt: skip
        """JUnit properties (each check's measured value, the key metrics) and, with allure-pytest, the
        scenario's steps, checks, labels and attachments."""
        from harness.report.allure_scenario import allure_scenario, check_properties
        from harness.report.pytest_support import add_junit_properties, allure_active, firmware_of, versions_in

        self.user_properties.extend(check_properties(result))
        add_junit_properties(self, records)
        if allure_active(self.config):
            from harness.report.console_text import format_console

            text = None
            if console is not None and mark is not None:
                text = format_console(console.timed_lines_since(mark))
            profile = getattr(dut, "profile", None)
            pattern = profile.version.pattern if profile is not None and profile.version is not None else None
            firmware = firmware_of(records, pattern)
            if not firmware and result.passed and profile is not None and not state_broken(self):
                with contextlib.suppress(HarnessError):  # the label is worth one short command, not a failure
                    out = dut.command(profile.version.command, timeout=VERSION_QUERY_TIMEOUT, check=False)
                    firmware = sorted(versions_in(out.splitlines(), pattern or profile.version.pattern))
            allure_scenario(result, records, rig=rig, firmware=firmware, console_text=text)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ScenarioFailed):
            return format_failure(self.loaded, excinfo.value)
        if isinstance(excinfo.value, HarnessError):
            return f"scenario {self.loaded.scenario.scenario}: {excinfo.value}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, 0, f"scenario: {self.loaded.scenario.scenario}"


def state_broken(item: pytest.Item) -> bool:
    return bool(run_state(item.config).broken)


def format_failure(loaded: LoadedScenario, failure: ScenarioFailed) -> str:
    result = failure.result
    lines = [f"scenario {result.name!r} failed (seed {result.seed}; replay with --scenario-seed {result.seed})"]
    step = result.failed_step
    if step is not None:
        where = loaded.locate(_file_path(step.path))
        lines.append(f"  step {step.path} at {where}: {step.label}")
        lines.append(f"    {step.message}")
        if step.expected:
            lines.append(f"    expected: {step.expected}")
        if step.observed:
            lines.append(f"    observed: {step.observed}")
    stopped = result.stopped_by
    if stopped is not None:
        lines.append(f"  stopped at {format_duration(result.stopped_at or 0.0)} of the run by continuous check "
                     f"{stopped.text}: observed {stopped.observed} (expected {stopped.expected})")  # fmt: skip
    failed_checks = [c for c in result.checks if not c.passed]
    if result.checks:
        lines.append("  checks:")
        for c in result.checks:
            mark = "ok  " if c.passed else "FAIL"
            lines.append(f"    {mark} {c.text:<40} observed {c.observed} (expected {c.expected})")
    if failed_checks and step is None:
        lines.insert(1, f"  {len(failed_checks)} check(s) failed")
    if result.fired:
        lines.append(f"  injections: {' '.join(result.fired)}")
    if failure.console_lines:
        lines.append("  console (last lines):")
        lines += [f"    | {ln}" for ln in failure.console_lines[-15:]]
    return "\n".join(lines)


def _file_path(step_path: str) -> str:
    """``steps[2].repeat#3.steps[0]`` -> ``steps[2].repeat.steps[0]`` (the place in the file)."""
    import re

    return re.sub(r"#\d+", "", step_path)
