"""``harness report build``: results.json numbers, the soak page, the export, and a killed run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from harness.errors import ConfigError
from harness.report.analysis import analyze
from harness.report.build import Built, build
from harness.report.results import write_results
from harness.report.rundata import load_run
from harness.run.journal import Journal
from tests.report.twinlog import Truth, write_results_json


def _results(folder: Path) -> dict:
    return json.loads((folder / "results.json").read_text(encoding="utf-8"))


def test_results_json_gets_metrics_from_the_journal_and_keeps_the_plugins_fields(
    built_soak: tuple[Path, Truth, Built],
) -> None:
    folder, truth, _ = built_soak
    before = json.loads((folder / "plugin-results.json").read_text(encoding="utf-8"))
    data = _results(folder)
    for key in ("run_id", "rig", "started", "finished", "exit_status", "counts", "tests", "health"):
        assert data[key] == before[key]
    m = data["metrics"]
    assert data["complete"] is True
    assert m["telemetry.received"] == truth.sent - truth.lost_network
    assert m["telemetry.loss.network"] == truth.lost_network == 15  # half an hour at one per 2 min
    assert m["telemetry.loss.unexplained"] == 0
    assert m["ota.duration.max"] == pytest.approx(40.0)
    assert m["ota.outcome"] == "committed"
    assert m["reboots.unexpected"] == 1  # the watchdog reset; power cut and OTA reboot are expected
    assert m["reboots.total"] == len(truth.boots)
    assert m["boot.time.p50"] == pytest.approx(1.225, abs=0.02)
    assert m["telemetry.latency.p99"] > 1.0 > m["telemetry.latency.p50"]  # the slow profile hour
    assert data["firmware"] == {"twin": ["1.0.0", "1.1.0"]}
    assert data["seed"] == 7
    assert data["scenarios"][0]["scenario"] == "soak-nightly"
    assert [r["reason"] for r in data["reboots"] if not r["expected"]] == ["watchdog"]
    assert data["ota"][0]["phases"]["committed"] == pytest.approx(40.0)


def test_building_twice_gives_the_same_numbers(soak_run: tuple[Path, Truth]) -> None:
    folder, _ = soak_run
    write_results(analyze(load_run(folder)))
    first = _results(folder)
    write_results(analyze(load_run(folder)))
    second = _results(folder)
    first.pop("report"), second.pop("report")
    assert first == second


def test_soak_page_is_self_contained_with_verdicts_before_plots(
    built_soak: tuple[Path, Truth, Built],
) -> None:
    _, _, built = built_soak
    page = built.soak.html.read_text(encoding="utf-8")
    assert page.index('id="verdict"') < page.index("<h2>Checks") < page.index("<h2>Time series")
    assert page.index("<h2>Time series") < page.index("<h2>Boots and reboots")
    assert not re.search(r"(src|href)=\"(?!data:)", page), "everything must be inline"
    assert "http://" not in page and "https://" not in page
    assert page.count("data:image/png;base64,") == 3
    assert {p.name for p in built.soak.pngs} == {
        "soak-timeseries.png",
        "soak-heap-trend.png",
        "soak-battery-trend.png",
    }
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in built.soak.pngs)
    assert "UNEXPECTED" in page and "watchdog" in page
    assert "Console before the watchdog reboot" in page and "WDT: task &#x27;net&#x27; starved" in page
    assert not built.soak.passed
    assert any(p.startswith("heap leak") and "reaches 0 in" in p for p in built.soak.problems)


def test_export_writes_csv_and_parquet_with_the_same_rows(built_soak: tuple[Path, Truth, Built]) -> None:
    folder, truth, built = built_soak
    names = {p.name for p in built.exported}
    for table in ("telemetry", "events", "tests", "metrics", "power", "windows"):
        assert f"{table}.csv" in names and f"{table}.parquet" in names
    csv = pd.read_csv(folder / "export" / "telemetry.csv")
    pq = pd.read_parquet(folder / "export" / "telemetry.parquet")
    assert len(csv) == len(pq) == truth.sent - truth.lost_network
    assert list(pq.columns[:3]) == ["t", "device", "topic"]


def test_a_killed_run_is_rebuilt_from_its_journal(killed_run: tuple[Path, Truth]) -> None:
    folder, truth = killed_run
    assert not (folder / "results.json").exists()
    assert not (folder / "journal.jsonl").read_text().endswith("\n")  # torn last record
    built = build(folder)
    data = _results(folder)
    assert built.complete is False and data["complete"] is False
    assert data["exit_status"] is None and data["tests"] == []
    assert data["metrics"]["telemetry.received"] == truth.sent - truth.lost_network
    page = built.soak.html.read_text(encoding="utf-8")
    assert built.soak.state == "FAIL"  # the leak, found in the part that was written
    assert '<span class="tag">INCOMPLETE</span>' in page and "the run did not finish" in page
    assert "did not finish" in (folder / "summary.md").read_text()


def test_corrupt_results_json_is_one_clear_error(soak_run: tuple[Path, Truth]) -> None:
    folder, _ = soak_run
    (folder / "results.json").write_text('{"run_id": "x", ', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"results\.json: not valid JSON .*expected the results\.json"):
        load_run(folder)


def test_a_folder_that_is_not_a_run_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="holds neither journal"):
        load_run(tmp_path)
    with pytest.raises(ConfigError, match="not found"):
        load_run(tmp_path / "missing")


def test_a_suite_run_without_telemetry_and_two_workers(tmp_path: Path) -> None:
    folder = tmp_path / "suite"
    for worker, boot in (("gw0", 0.8), ("gw1", 1.2)):
        with Journal(folder / f"journal-{worker}.jsonl", worker=worker) as j:
            j.record("run", action="start", run_id="suite", rig="twin")
            j.record("boot", device="twin", reason="power-on", seconds=boot)
            j.record("run", action="end")
    write_results_json(folder, {"t.py::a": "passed", "t.py::b": "failed"}, started=0.0, finished=1.0)
    write_results(analyze(load_run(folder)))
    data = _results(folder)
    assert data["metrics"]["boot.time.max"] == pytest.approx(1.2)
    assert data["metrics"]["reboots.total"] == 2
    assert data["metrics"]["telemetry.received"] == 0
    assert data["metrics"]["heap.slope"] is None and data["trends"]["heap"]["verdict"] == "unknown"
    assert data["counts"] == {"passed": 1, "failed": 1}
    assert data["report"]["journals"] == ["journal-gw0.jsonl", "journal-gw1.jsonl"]
