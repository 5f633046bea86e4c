"""Scenario items as other plugins and pytest itself see them: fixture support (labgrid, autouse
fixtures) and node ids that name the file wherever it lives."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

MARKS = "scenario: marks\nrequires: [console]\nsteps:\n  - mark: one\n"
LOOP_RIG = 'name: loop\nconsole:\n  url: "loop://"\nprofile: twin-reference\n'


def _scenario(folder: Path, name: str = "marks.yaml", text: str = MARKS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.skipif(
    importlib.util.find_spec("labgrid") is None,
    reason="labgrid is not installed (pip install 'labgrid>=26,<27'; CI's scenario job installs it)",
)
def test_scenario_items_run_with_labgrids_plugin_active(pytester: pytest.Pytester, labgrid_in_inner_runs: None) -> None:
    """labgrid's pytest_runtest_setup reads item.fixturenames: every scenario item errored without it."""
    pytester.makefile(".yaml", loop=LOOP_RIG)
    _scenario(pytester.path / "scenarios")
    pytester.makeconftest(
        "def pytest_report_header(config):\n"
        "    return f\"labgrid plugin active: {config.pluginmanager.hasplugin('labgrid')}\"\n"
    )
    # In a subprocess: labgrid's plugin cannot be configured twice in one process (its StepLogger asserts).
    result = pytester.runpytest_subprocess("scenarios", "--rig", "loop.yaml", "--no-rig-health",
                                           "-p", "no:cacheprovider")  # fmt: skip
    result.stdout.fnmatch_lines(["labgrid plugin active: True"])
    result.assert_outcomes(passed=1)
    assert "AttributeError" not in result.stdout.str()


def test_autouse_fixtures_run_for_scenario_and_invalid_scenario_items(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", loop=LOOP_RIG)
    _scenario(pytester.path / "scenarios")
    _scenario(pytester.path / "scenarios", "bad.yaml", "scenario: bad\nsteps:\n  - pwoer: on\n")
    pytester.makeconftest(
        "import pytest\n"
        "SEEN = []\n"
        "@pytest.fixture(autouse=True)\n"
        "def lab_log(request):\n"
        "    SEEN.append((request.node.name, 'lab_log' in request.node.fixturenames))\n"
        "    yield\n"
        "def pytest_runtest_teardown(item):\n"
        "    print(f'fixtures of {item.name}: {sorted(item.funcargs)}')\n"
        "def pytest_sessionfinish(session):\n"
        "    print(f'autouse ran for: {SEEN}')\n"
    )
    result = pytester.runpytest("scenarios", "--rig", "loop.yaml", "--no-rig-health", "-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*autouse ran for: *('marks', True)*"])
    result.stdout.fnmatch_lines(["*autouse ran for: *('bad', True)*"])
    result.stdout.fnmatch_lines(["*fixtures of marks: *'lab_log'*"])


def test_scenario_outside_the_rootdir_is_named_by_its_path(pytester: pytest.Pytester) -> None:
    """`pytest /some/where/scenarios/x.yaml` with the project's rootdir: the id names the file
    (rootdir-relative, with ``..``), not ``::marks`` shown as ``../../<project>::marks``."""
    project = pytester.mkdir("project")
    (project / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    (project / "loop.yaml").write_text(LOOP_RIG, encoding="utf-8")
    outside = _scenario(pytester.path / "elsewhere" / "scenarios", "x.yaml")
    inside = _scenario(project / "scenarios", "y.yaml", MARKS.replace("marks", "y"))
    (project / "conftest.py").write_text(
        "def pytest_collection_modifyitems(items):\n"
        "    print('ids:', ' '.join(item.nodeid for item in items))\n", encoding="utf-8",
    )
    # Started from a third folder, as a lab's CI job does: ids are still rootdir-relative.
    cwd = pytester.mkdir("cwd")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(cwd)
        result = pytester.runpytest(
            "--rootdir", str(project), "-c", str(project / "pytest.ini"), str(outside), str(inside),
            "--rig", str(project / "loop.yaml"), "--no-rig-health", "--junitxml", str(pytester.path / "j.xml"),
            "-v", "-s", "-p", "no:cacheprovider",
        )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*ids: ../elsewhere/scenarios/x.yaml::marks scenarios/y.yaml::y"])
    # Shown relative to where pytest was started, as pytest shows every id (pytest joins without normalizing).
    result.stdout.fnmatch_lines(["../project/../elsewhere/scenarios/x.yaml::marks PASSED*",
                                 "../project/scenarios/y.yaml::y PASSED*"])
    import xml.etree.ElementTree as ET

    cases = {(c.get("classname"), c.get("name")) for c in ET.parse(pytester.path / "j.xml").iter("testcase")}
    assert ("...elsewhere.scenarios.x.yaml", "marks") in cases, cases
    assert ("scenarios.y.yaml", "y") in cases, cases


def test_scenario_named_on_the_command_line_is_collected_outside_a_scenarios_folder(
    pytester: pytest.Pytester,
) -> None:
    """As pytest collects a Python file given by name: with no ini file above it, the rootdir is the file's
    own folder, and the file used to be 'not found'."""
    pytester.makefile(".yaml", loop=LOOP_RIG)
    path = _scenario(pytester.path / "somewhere", "x.yaml")
    result = pytester.runpytest(str(path), "--rig", str(pytester.path / "loop.yaml"), "--no-rig-health", "-v",
                                "-p", "no:cacheprovider")  # fmt: skip
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*somewhere/x.yaml::marks PASSED*"])
