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


class _Reporter:
    """What ScenarioProgress uses of pytest's TerminalReporter, recorded."""

    showlongtestinfo = False
    showfspath = True

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self._tw = type("TW", (), {"fullwidth": 60})()

    def ensure_newline(self) -> None:
        self.calls.append(("newline", ""))

    def rewrite(self, line: str, erase: bool = False) -> None:
        self.calls.append(("rewrite", line))

    def write(self, text: str, flush: bool = False) -> None:
        self.calls.append(("write", text))

    def line(self, text: str) -> None:
        self.calls.append(("line", text))

    def write_fspath_result(self, nodeid: str, res: str) -> None:
        self.calls.append(("fspath", nodeid))


class _Telemetry:
    def __init__(self) -> None:
        self.summaries = 0

    def count(self) -> int:
        return 5

    def summary(self) -> object:
        self.summaries += 1
        return type("Acc", (), {"lost": lambda self, cause=None: 1 if cause == "unexplained" else 2})()


def test_tty_line_is_redrawn_in_place_once_a_second_and_fits_the_terminal() -> None:
    from harness.scenario.progress import ScenarioProgress

    reporter, telemetry = _Reporter(), _Telemetry()
    progress = ScenarioProgress(reporter, None, "soak", tty=True, telemetry=telemetry)
    progress.runner = type("R", (), {"phase": "soaking until 3m", "counters": {"steps": 2, "injections": 1}})()
    for elapsed in (0.4, 1.0, 1.3, 2.0, 2.9, 3.1):
        progress(elapsed, 180.0, {"steps": 2, "injections": 1})
    assert [c[0] for c in reporter.calls] == ["newline", "rewrite", "rewrite", "rewrite"]
    assert all(len(text) <= 59 for kind, text in reporter.calls if kind == "rewrite")
    assert reporter.calls[1][1].startswith("[soak] 1s of 3m (1%) | soaking until 3m")
    progress.line(6.5, 180.0, {})
    assert telemetry.summaries == 2, "loss recomputed more often than every 5 s on a terminal"
    assert progress.line(7.0, 180.0, {}).endswith("telemetry 5 msgs, 2 lost (1 unexplained)")
    result = type("Res", (), {"passed": False, "elapsed": 4.0, "duration": 180.0})()
    progress.finish("scenarios/soak.yaml::soak", result)
    assert reporter.calls[-2][0] == "rewrite" and "done: FAILED" in reporter.calls[-2][1]
    assert reporter.calls[-1] == ("fspath", "scenarios/soak.yaml::soak")


def test_quiet_terminal_shows_no_live_line_but_a_log_keeps_its_minute_lines() -> None:
    from harness.scenario.progress import ScenarioProgress

    assert not ScenarioProgress(_Reporter(), None, "s", tty=True, quiet=1).enabled
    assert ScenarioProgress(_Reporter(), None, "s", tty=False, quiet=1).enabled
    assert not ScenarioProgress(_Reporter(), None, "s", tty=False, quiet=2).enabled
