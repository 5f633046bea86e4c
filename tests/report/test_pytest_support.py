"""The plugin-side pieces, through pytester: JUnit properties and Allure labels, steps and attachments."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.report.pytest_support import junit_properties, terminal_lines

CONFTEST = """
import time
from pathlib import Path

import pytest

from harness.report.pytest_support import add_junit_properties, allure_active, allure_report, records_between


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    start = time.time()
    try:
        return (yield)
    finally:
        records = records_between(Path("run"), start - 1, time.time() + 1)
        add_junit_properties(item, records)
        if allure_active(item.config):
            Path("capture.pcap").write_bytes(bytes(24))
            allure_report(records, rig="twin", console_text="BOOT-DONE\\n> ", pcaps=[Path("capture.pcap")])
"""

TEST = """
import time

from harness.run.journal import Journal


def test_device_boots_and_reports():
    now = time.time()
    with Journal("run/journal.jsonl") as j:
        j.record("scenario", action="start", scenario="boot-smoke", seed=1)
        j.record("boot", t=now, device="twin", reason="power-on", seconds=1.5)
        for i in range(5):
            j.record("telemetry", t=now + 0.01 * i, device="twin", topic="devices/twin/telemetry",
                     arrival=now + 0.01 * i, payload={"device": "twin", "boot_id": "b1", "seq": i + 1,
                     "uptime": 2.0 + i, "heap_free": 200000, "battery_v": 4.0, "rssi": -60, "temp_c": 25.0,
                     "fw": "1.2.3", "ts": now + 0.01 * i - 0.05, "dropped": 0})
        j.record("step", scenario="boot-smoke", index="steps[0]", name="power on", status="passed", duration=1.5)
        j.record("step", scenario="boot-smoke", index="steps[1]", name="check version", status="failed",
                 observed="1.2.3", expected="1.2.4")
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_suite=TEST)
    return pytester


def test_junit_xml_carries_the_key_metrics(suite: pytest.Pytester) -> None:
    result = suite.runpytest("--junitxml=junit.xml", "-p", "no:allure_pytest")
    result.assert_outcomes(passed=1)
    props = {p.get("name"): p.get("value") for p in ET.parse(suite.path / "junit.xml").iter("property")}
    assert props["harness.boot.time.p50"] == "1.5"
    assert props["harness.telemetry.received"] == "5"
    assert float(props["harness.telemetry.latency.p50"]) == pytest.approx(0.05, abs=0.01)
    assert "harness.ota.outcome" not in props  # no OTA in this test: no made-up value


def test_allure_gets_labels_steps_and_attachments(suite: pytest.Pytester) -> None:
    result = suite.runpytest_subprocess("--alluredir=allure-results")
    result.assert_outcomes(passed=1)
    [path] = list((suite.path / "allure-results").glob("*-result.json"))
    data = json.loads(path.read_text())
    labels = {(label["name"], label["value"]) for label in data["labels"]}
    assert {("rig", "twin"), ("firmware", "1.2.3"), ("scenario", "boot-smoke")} <= labels
    steps = [(s["name"], s["status"]) for s in data["steps"]]
    assert steps == [("steps[0] power on (1.5s)", "passed"), ("steps[1] check version", "failed")]
    names = {a["name"] for a in data["attachments"]}
    assert {"console", "journal excerpt", "timeseries.png", "capture.pcap"} <= names


def test_junit_properties_skip_absent_values() -> None:
    props = junit_properties(
        {"boot.time.p50": 1.23456789, "ota.outcome": "none", "heap.slope": None, "telemetry.received": 12}
    )
    assert props == [("harness.boot.time.p50", "1.23457"), ("harness.telemetry.received", "12")]


def test_terminal_lines_name_the_report(
    soak_run: tuple[Path, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.report import soak
    from harness.report.pytest_support import finish_run

    monkeypatch.setattr(soak, "figures", lambda a: {})  # the page is tested elsewhere; spare the plotting
    folder, _ = soak_run
    lines = terminal_lines(finish_run(folder))
    assert lines[0].startswith("harness: complete run; ")
    assert lines[1].startswith(f"harness: report {folder / 'soak.html'}")
    assert lines[2].startswith("harness: beside it: results.json, summary.md, export/ (")
    assert sum(str(folder) in line for line in lines) == 1, lines  # each path once: the folder is the report's
    assert terminal_lines(None) == []
    assert terminal_lines(finish_run(folder / "missing")) == []


END_OF_RUN_TEST = """
def test_records(journal):
    journal.record("boot", device="twin", reason="power-on", seconds=0.9)
"""


def test_reports_are_built_at_the_end_of_a_run_and_the_path_printed(pytester: pytest.Pytester) -> None:
    """--build-reports: the plugin builds every report after results.json and prints where they are."""
    pytester.makepyfile(test_run=END_OF_RUN_TEST)
    result = pytester.runpytest("--run-id", "r1", "--build-reports", "-p", "no:allure_pytest")
    result.assert_outcomes(passed=1)
    folder = pytester.path / "reports" / "r1"
    result.stdout.fnmatch_lines(
        ["harness: complete run; *", f"harness: report {folder / 'soak.html'}*", "harness: beside it: results.json*"]
    )
    assert result.stdout.str().count(str(folder)) == 1, "the run folder's path printed more than once"
    data = json.loads((folder / "results.json").read_text())
    assert data["complete"] is True and data["exit_status"] == 0
    assert data["tests"][0]["outcome"] == "passed"
    assert data["metrics"]["boot.time.p50"] == pytest.approx(0.9)
