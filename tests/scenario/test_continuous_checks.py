"""Continuous checks: judged while the scenario runs, they stop it at the first failure instead of
letting a soak run on for hours after its verdict is known; only checks that cannot recover may be."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.run.journal import read_run
from harness.scenario.checks import parse_check


@pytest.mark.parametrize(
    ("text", "judgeable"),
    [
        ("reboots.unexpected == 0", True),
        ("telemetry.loss.unexplained == 0", False),  # a message counted lost may still arrive late
        ("telemetry.duplicates == 0", True),
        ("power_cuts <= 2", True),
        ("boot.time.max < 5s", True),
        ("ota.duration.max <= 3m", True),
        ("heap.min > 16KiB", True),
        ("telemetry.received > 10", False),  # grows: fails early, passes later
        ("reboots.total == 3", False),
        ("heap.min < 1MiB", False),
        ("boot.time.p95 < 2s", False),  # a percentile of a few boots goes either way
        ("heap.trend != leak", False),  # judged again and again, a 99.9% verdict would cry wolf
        ("ota.outcome == committed", False),
    ],
)
def test_only_checks_that_cannot_recover_are_judged_early(text: str, judgeable: bool) -> None:
    why = parse_check(text).early_judgement()
    assert (why is None) == judgeable, why
    if why is not None:
        assert parse_check(text).metric.name in why


SCENARIO = """\
scenario: stop-early
requires: [console, power]
seed: 3
duration: 2m
steps:
  - power: on
events:
  - at: 2s
    do: power-cut
    off: 200ms
checks:
  - steps.failed == 0
  - check: power_cuts == 0
    continuous: true
"""


def test_a_failed_continuous_check_stops_the_run_at_once(pytester: pytest.Pytester, tmp_path: Path) -> None:
    folder = pytester.path / "scenarios"
    folder.mkdir()
    (folder / "stop.yaml").write_text(SCENARIO, encoding="utf-8")
    result = pytester.runpytest_subprocess("scenarios", "--reports-dir", str(tmp_path), "--run-id", "stop",
                                           "-p", "no:cacheprovider")  # fmt: skip
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "scenario 'stop-early' failed *",
            "  stopped at * of the run by continuous check power_cuts == 0: observed 1 (expected == 0)",
            "    ok   steps.failed == 0 *",
            "    FAIL power_cuts == 0 * observed 1 *",
        ]
    )
    records = read_run(tmp_path / "stop")
    stopped = next(r for r in records if r["kind"] == "scenario" and r["action"] == "stopped")
    end = next(r for r in records if r["kind"] == "scenario" and r["action"] == "end")
    assert stopped["check"] == "power_cuts == 0" and stopped["observed"] == 1
    assert 2.0 < stopped["at"] < 20.0, stopped  # judged every 5 s: the cut at 2 s is seen by ~7 s
    assert end["elapsed"] < 30.0, "the 2 min run went on after its verdict was known"
    assert end["passed"] is False
    assert [r["metric"] for r in records if r["kind"] == "check"] == ["steps.failed", "power_cuts"]
