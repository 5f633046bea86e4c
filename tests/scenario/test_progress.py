"""The progress line of a running scenario, as a CI log (not a tty) shows it, and the paths printed once
at the end of a run."""

from __future__ import annotations

import re
import sys

import pytest

LOOP_RIG = 'name: loop\nconsole:\n  url: "loop://"\nprofile: twin-reference\n'
TICKS = (
    "scenario: ticks\nrequires: [console]\nduration: 3500ms\n"
    "steps:\n  - mark: one\n  - wait: 1500ms\n  - mark: two\n"
)


@pytest.fixture
def ticks(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".yaml", loop=LOOP_RIG)
    folder = pytester.path / "scenarios"
    folder.mkdir()
    (folder / "ticks.yaml").write_text(TICKS, encoding="utf-8")
    pytester.makeini("[pytest]\nscenario_progress_every = 1s\n")
    return pytester


def test_log_gets_one_line_per_interval_with_phase_and_counts_then_the_final_state(ticks: pytest.Pytester) -> None:
    result = ticks.runpytest("scenarios", "--rig", "loop.yaml", "--no-rig-health", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    lines = [ln for ln in result.stdout.lines if ln.startswith("[ticks]")]
    # 1 s, 2 s, 3 s of the runner's clock, then the verdict: never more often than the interval.
    assert len(lines) == 4, lines
    assert re.fullmatch(r"\[ticks\] 1(\.\d)?s of 3\.5s \(\d+%\) \| steps\[1\] wait for=1\.5 \| steps 1, events 0", lines[0]), lines[0]
    assert "soaking until 3.5s" in lines[2]
    assert re.fullmatch(r"\[ticks\] 3\.5s of 3\.5s \(100%\) \| done: passed \| steps 3, events 0", lines[3]), lines[3]
    # pytest's own line goes on below the progress: the file's path again, then its result letter.
    after = result.stdout.lines[result.stdout.lines.index(lines[3]) + 1]
    assert re.match(r"scenarios/ticks\.yaml \.", after), after


def test_short_scenario_prints_no_progress(ticks: pytest.Pytester) -> None:
    ticks.makeini("[pytest]\nscenario_progress_every = 1m\n")
    result = ticks.runpytest("scenarios", "--rig", "loop.yaml", "--no-rig-health", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert not [ln for ln in result.stdout.lines if ln.startswith("[ticks]")]
    result.stdout.fnmatch_lines(["scenarios/ticks.yaml .*"])


def test_qq_silences_progress(ticks: pytest.Pytester) -> None:
    result = ticks.runpytest("scenarios", "--rig", "loop.yaml", "--no-rig-health", "-qq", "-p", "no:cacheprovider")
    assert result.ret == 0
    assert "[ticks]" not in result.stdout.str()


def test_progress_is_not_captured_as_test_output(ticks: pytest.Pytester) -> None:
    """Output capture is suspended around each line: it reaches the terminal, not the report's sections."""
    ticks.makeconftest(
        "def pytest_runtest_logreport(report):\n"
        "    if report.when == 'call':\n"
        "        print('captured stdout:', repr(report.capstdout))\n"
    )
    result = ticks.runpytest("scenarios", "--rig", "loop.yaml", "--no-rig-health", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["[[]ticks[]] 1*s of 3.5s*"])
    assert "captured stdout: ''" in result.stdout.str()


def test_harness_run_prints_each_path_once(pytester: pytest.Pytester) -> None:
    """The soak report's path was printed three times at the end of `harness run`."""
    pytester.makefile(".yaml", loop=LOOP_RIG)
    folder = pytester.path / "scenarios"
    folder.mkdir()
    (folder / "marks.yaml").write_text("scenario: marks\nrequires: [console]\nsteps:\n  - mark: one\n", encoding="utf-8")
    result = pytester.run(sys.executable, "-m", "harness", "run", "scenarios", "--rig", "loop.yaml", "--run-id", "r1",
                          "--", "--no-rig-health", "-p", "no:labgrid", timeout=120)  # fmt: skip
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    out = result.stdout.str()
    assert out.count("soak.html") == 1, out
    assert out.count("results.json") == 1, out
    assert out.count("summary.md") == 1, out
    result.stdout.fnmatch_lines(["harness: complete run; *", "harness: report *reports/r1/soak.html*",
                                 "harness: beside it: results.json, summary.md, export/ (* files)"])  # fmt: skip
