"""Scenario items in Allure and JUnit, read back from the files allure-pytest and --junitxml write."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SMOKE = (ROOT / "scenarios" / "ci" / "smoke.yaml").read_text(encoding="utf-8")


def test_scenario_allure_results_and_junit_properties(pytester: pytest.Pytester) -> None:
    """One run of two scenarios (the shipped smoke, and a copy whose version step and a check fail), then
    every promise of docs/reports.md about scenario items read back from the files."""
    broken = SMOKE.replace("scenario: smoke", "scenario: smoke-broken")
    broken = broken.replace(r"expect: 'fw \d+\.\d+\.\d+'", r"expect: 'fw 9\.9\.9'").replace("boot.time.p95 < 2s", "boot.time.p95 < 1ms")
    assert "9\\.9\\.9" in broken and "< 1ms" in broken, "smoke.yaml changed: update this test's edits"
    folder = pytester.path / "scenarios"
    folder.mkdir()
    (folder / "smoke.yaml").write_text(SMOKE, encoding="utf-8")
    (folder / "smoke-broken.yaml").write_text(broken, encoding="utf-8")
    # In a subprocess: allure keeps its listener process-wide, so an outer run with --alluredir would
    # collide with an in-process inner one.
    result = pytester.runpytest_subprocess("scenarios", "--alluredir=allure-results", "--junitxml=junit.xml",
                                           "-p", "no:cacheprovider", "-p", "no:xdist")  # fmt: skip
    result.assert_outcomes(passed=1, failed=1)
    run = (pytester.path, result)
    _labels_rig_firmware_scenario_seed(run)
    _each_step_is_an_allure_step_with_repeats_nested(run)
    _failed_step_shows_observed_against_expected(run)
    _checks_are_steps_with_measured_and_limit(run)
    _console_journal_excerpt_and_plot_are_attached(run)
    _junit_properties_carry_each_checks_measured_value(run)


def _allure(folder: Path) -> dict[str, dict]:
    out = {}
    for path in (folder / "allure-results").glob("*-result.json"):
        data = json.loads(path.read_text())
        out[data["name"]] = data
    return out


def _labels(data: dict) -> set[tuple[str, str]]:
    return {(label["name"], label["value"]) for label in data["labels"]}


def _walk(steps: list[dict]) -> list[dict]:
    out = []
    for s in steps:
        out.append(s)
        out += _walk(s.get("steps", []))
    return out


def _labels_rig_firmware_scenario_seed(run: tuple[Path, pytest.RunResult]) -> None:
    data = _allure(run[0])["smoke"]
    assert {("rig", "twin"), ("firmware", "1.0.0"), ("scenario", "smoke"), ("seed", "1")} <= _labels(data)


def _each_step_is_an_allure_step_with_repeats_nested(run: tuple[Path, pytest.RunResult]) -> None:
    steps = _allure(run[0])["smoke"]["steps"]
    names = [s["name"] for s in steps]
    assert names[0].startswith("steps[0] power action=cycle")
    assert names[1].startswith("steps[1] reports the factory version")
    repeats = [s for s in steps if s["name"].startswith("steps[6] repeat")]
    assert [s["name"] for s in repeats] == ["steps[6] repeat 1", "steps[6] repeat 2", "steps[6] repeat 3"]
    assert all(len(s["steps"]) == 2 and s["status"] == "passed" for s in repeats)
    observed = {p["name"]: p["value"] for p in steps[1]["parameters"]}
    assert observed["observed"].startswith("fw 1.0.0")


def _failed_step_shows_observed_against_expected(run: tuple[Path, pytest.RunResult]) -> None:
    data = _allure(run[0])["smoke-broken"]
    assert data["status"] == "failed"
    [failed] = [s for s in _walk(data["steps"]) if s["status"] == "failed" and s["name"].startswith("steps[1]")]
    message = failed["statusDetails"]["message"]
    assert "expected: fw 9\\.9\\.9" in message and "observed: fw 1.0.0" in message
    params = {p["name"]: p["value"] for p in failed["parameters"]}
    assert params["expected"] == "fw 9\\.9\\.9"


def _checks_are_steps_with_measured_and_limit(run: tuple[Path, pytest.RunResult]) -> None:
    ok = _allure(run[0])["smoke"]
    [checks] = [s for s in ok["steps"] if s["name"].startswith("checks:")]
    assert checks["name"] == "checks: 3 of 3 passed" and checks["status"] == "passed"
    boot = next(s for s in checks["steps"] if "boot.time.p95" in s["name"])
    params = {p["name"]: p["value"] for p in boot["parameters"]}
    assert params["limit"] == "< 2 s" and params["measured"].endswith("ms")
    broken = _allure(run[0])["smoke-broken"]
    [checks] = [s for s in broken["steps"] if s["name"].startswith("checks:")]
    assert checks["status"] == "failed"
    failed = {s["name"].split(":")[0] for s in checks["steps"] if s["status"] == "failed"}
    assert failed == {"FAIL steps.failed == 0", "FAIL boot.time.p95 < 1ms"}


def _console_journal_excerpt_and_plot_are_attached(run: tuple[Path, pytest.RunResult]) -> None:
    folder = run[0]
    data = _allure(folder)["smoke"]
    attachments = {a["name"]: folder / "allure-results" / a["source"] for a in data["attachments"]}
    assert {"console", "journal excerpt", "timeseries.png"} <= set(attachments)
    assert "BOOT-DONE" in attachments["console"].read_text()
    records = [json.loads(line) for line in attachments["journal excerpt"].read_text().splitlines()]
    kinds = {r["kind"] for r in records}
    assert {"scenario", "step", "check", "boot"} <= kinds
    assert {r["scenario"] for r in records if r["kind"] == "scenario"} == {"smoke"}, "another scenario's records"
    assert attachments["timeseries.png"].read_bytes().startswith(b"\x89PNG")


def _junit_properties_carry_each_checks_measured_value(run: tuple[Path, pytest.RunResult]) -> None:
    cases = {c.get("name"): c for c in ET.parse(run[0] / "junit.xml").iter("testcase")}
    props = {p.get("name"): p.get("value") for p in cases["smoke"].iter("property")}
    assert props["check.steps.failed"] == "0" and props["check.steps.failed.verdict"] == "pass"
    assert props["check.boot.time.p95.limit"] == "< 2 s" and props["check.boot.time.p95"].endswith("ms")
    assert props["check.reboots.unexpected"] == "0"
    assert props["harness.boot.time.p50"]  # the key metrics, as Python tests get them
    broken = {p.get("name"): p.get("value") for p in cases["smoke-broken"].iter("property")}
    assert broken["check.boot.time.p95.verdict"] == "fail" and broken["check.steps.failed"] == "1"
