"""Scenario files as pytest items, on the twin: passing, deliberately broken, skipped, invalid, replayed."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.run.journal import read_run

ROOT = Path(__file__).resolve().parents[2]
CI = ROOT / "scenarios" / "ci"


def _copy(pytester: pytest.Pytester, name: str, text: str) -> Path:
    folder = pytester.path / "scenarios"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_broken_smoke_variant_fails_with_the_step_observed_and_expected(pytester: pytest.Pytester):
    text = (CI / "smoke.yaml").read_text()
    broken = text.replace(r"expect: 'fw \d+\.\d+\.\d+'", r"expect: 'fw 9\.9\.9'")
    assert broken != text, "the smoke scenario no longer checks the version the way this test expects"
    _copy(pytester, "smoke-broken.yaml", broken)
    result = pytester.runpytest("scenarios", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "scenario 'smoke' failed (seed 1; replay with --scenario-seed 1)",
            "  step steps[[]1[]] at scenarios/smoke-broken.yaml:*: reports the factory version",
            "    output of 'version' does not match",
            r"    expected: fw 9\.9\.9",
            "    observed: fw 1.0.0 slot=A*",
            "  checks:",
            "    FAIL steps.failed == 0 * observed 1 (expected == 0)",
            "  console (last lines):",
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_check_that_must_fail_is_reported_observed_against_expected(pytester: pytest.Pytester):
    text = (CI / "power-cuts.yaml").read_text().replace("duration: 12s", "duration: 3s")
    text = text.replace("power_cuts > 2", "power_cuts == 0")
    _copy(pytester, "cuts-broken.yaml", text)
    result = pytester.runpytest("scenarios", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "scenario 'power-cuts' failed (seed 7; replay with --scenario-seed 7)",
            "  1 check(s) failed",
            "    ok   steps.failed == 0 *",
            "    FAIL power_cuts == 0 * observed * (expected == 0)",
            "  injections: power-cut@*",
        ]
    )


def test_shipped_ci_scenarios_validate(pytester: pytest.Pytester):
    from harness.cli import main

    files = sorted(str(p) for p in CI.glob("*.yaml"))
    assert files
    assert main(["scenario", "validate", *files]) == 0


def test_scenario_the_rig_cannot_serve_is_skipped_with_the_place_and_reason(pytester: pytest.Pytester):
    pytester.makefile(".yaml", loop='name: loop\nconsole:\n  url: "loop://"\nprofile: twin-reference\n')
    _copy(pytester, "cuts.yaml", (CI / "power-cuts.yaml").read_text())
    result = pytester.runpytest("scenarios", "--rig", "loop.yaml", "-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        ["SKIPPED [[]1[]] scenarios/cuts.yaml:1: scenarios/cuts.yaml:4:21: requires[[]1[]]: needs 'power', which rig 'loop' lacks (the rig has console)"]
    )


def test_invalid_file_fails_alone_with_one_line_and_the_rest_still_run(pytester: pytest.Pytester):
    pytester.makefile(".yaml", loop='name: loop\nconsole:\n  url: "loop://"\nprofile: twin-reference\n')
    _copy(pytester, "bad.yaml", "scenario: bad\nsteps:\n  - pwoer: on\n")
    _copy(pytester, "marks.yaml", "scenario: marks\nrequires: [console]\nsteps:\n  - mark: one\n  - wait: 10ms\n")
    result = pytester.runpytest("scenarios", "--rig", "loop.yaml", "--no-rig-health", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["invalid scenario file: scenarios/bad.yaml:3:5: steps[0].pwoer: unknown field 'pwoer'; did you mean 'power'?"]
    )
    assert "Traceback" not in result.stdout.str()


def test_same_seed_gives_the_same_injection_instants_on_two_runs(pytester: pytest.Pytester):
    _copy(
        pytester,
        "random.yaml",
        "scenario: random\nseed: 99\nduration: 2s\nrequires: [console, power]\n"
        "events:\n  - random: 400ms\n    do: power-cut\n    off: 50ms\n",
    )
    fired = []
    for run in ("a", "b"):
        result = pytester.runpytest("scenarios", "--run-id", run, "-p", "no:cacheprovider")
        result.assert_outcomes(passed=1)
        records = read_run(pytester.path / "reports" / run)
        start = next(r for r in records if r["kind"] == "scenario" and r["action"] == "start")
        injections = [r for r in records if r["kind"] == "injection" and r.get("action") == "power-cut"]
        assert [r["at"] for r in injections] == start["instants"], "fired instants differ from the plan"
        fired.append((start["instants"], [r["at"] for r in injections]))
    assert fired[0] == fired[1]
    assert len(fired[0][1]) >= 2
    other = pytester.runpytest("scenarios", "--run-id", "c", "--scenario-seed", "100", "-p", "no:cacheprovider")
    other.assert_outcomes(passed=1)
    records = read_run(pytester.path / "reports" / "c")
    start = next(r for r in records if r["kind"] == "scenario" and r["action"] == "start")
    assert start["instants"] != fired[0][0], "a different seed drew the same instants"
