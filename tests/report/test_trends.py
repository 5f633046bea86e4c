"""Leak and drain verdicts on recorded twin journals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.report import soak
from harness.report.analysis import analyze
from harness.report.build import build
from harness.report.frames import telemetry_frame
from harness.report.results import write_results
from harness.report.rundata import load_run
from harness.report.trends import format_span, heap_trend
from tests.report.twinlog import SoakSpec, Truth, write_soak


def test_a_200_bytes_per_hour_leak_projects_exhaustion_within_10_percent(
    soak_run: tuple[Path, Truth],
) -> None:
    folder, truth = soak_run
    write_results(analyze(load_run(folder)))
    heap = json.loads((folder / "results.json").read_text())["trends"]["heap"]
    assert heap["verdict"] == "leak"
    assert heap["ci_low_per_h"] < -200 < heap["ci_high_per_h"]
    assert truth.exhaustion_s is not None
    assert heap["exhaustion_s"] == pytest.approx(truth.exhaustion_s, rel=0.10)
    assert "heap reaches 0 in ~" in heap["text"] and "B/h" in heap["text"]


def test_a_flat_heap_gives_no_leak_verdict(reports: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(soak, "figures", lambda a: {})  # the verdict table is what matters here
    folder = reports / "flat"
    write_soak(folder, SoakSpec(leak_per_h=0.0))
    build(folder)
    data = json.loads((folder / "results.json").read_text())
    heap = data["trends"]["heap"]
    assert heap["verdict"] == "flat"
    assert heap["ci_low_per_h"] <= 0 <= heap["ci_high_per_h"]
    assert heap["exhaustion_s"] is None
    row = (folder / "soak.html").read_text().split("heap leak", 1)[1].split("</tr>", 1)[0]
    assert 'class="pass">FLAT<' in row


def test_a_killed_run_still_yields_the_leak(killed_run: tuple[Path, Truth]) -> None:
    folder, truth = killed_run
    trend = analyze(load_run(folder)).heap
    assert trend.verdict == "leak"
    assert trend.exhaustion_s == pytest.approx(truth.exhaustion_s, rel=0.10)


def test_too_few_samples_is_unknown_not_flat() -> None:
    records = [
        {
            "kind": "telemetry",
            "t": 1.0 + i,
            "arrival": 1.0 + i,
            "device": "d",
            "payload": {"boot_id": "b", "seq": i + 1, "heap_free": 1000 - i},
        }
        for i in range(2)
    ]
    trend = heap_trend(telemetry_frame(records))
    assert trend.verdict == "unknown" and trend.exhaustion_s is None


def test_a_slope_that_would_take_years_is_flat() -> None:
    records = [
        {
            "kind": "telemetry",
            "t": 60.0 * i,
            "arrival": 60.0 * i,
            "device": "d",
            "payload": {"boot_id": "b", "seq": i + 1, "heap_free": 200000 - i // 60},
        }
        for i in range(2000)
    ]
    trend = heap_trend(telemetry_frame(records))
    assert trend.fit is not None and trend.fit.high < 0  # statistically real, but 1 B/h against 200 kB
    assert trend.verdict == "flat"
    assert "would take" in trend.text


@pytest.mark.parametrize(
    ("seconds", "text"), [(53 * 86400, "~53 days"), (5 * 3600, "~5.0 h"), (600, "~10 min")]
)
def test_format_span(seconds: float, text: str) -> None:
    assert format_span(seconds) == text
