"""Collection: scenario files become items, ``requires(...)`` skips what the rig cannot serve, and a
bench the collected tests use is opened before any of them runs (:mod:`harness.plugin.preflight`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.plugin import options
from harness.session import STATE, check_capabilities


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
    one line) instead of every test skipping for a capability it lacks (harness.plugin.preflight)."""
    from harness.plugin.preflight import bench_problem, fail_instead_of_skipping

    state = session.config.stash.get(STATE, None)
    if state is None or session.config.option.collectonly:
        return
    problem = bench_problem(state, session.items, options.rig_ref(session.config))
    if problem and hasattr(session.config, "workerinput"):
        fail_instead_of_skipping(state, session.items)
    elif problem:
        raise pytest.UsageError(problem)
