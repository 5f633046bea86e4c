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


def test_trends_of_a_run_with_a_soak_are_fitted_on_the_soak_only() -> None:
    """A device suite drains heap within a boot for reasons that are not leaks (a dump, a full buffer);
    the soak inside the same run is what the trend is about."""
    import random

    import pandas as pd

    from harness.report.analysis import soak_telemetry, soak_windows

    rng = random.Random(3)
    t = [float(i) for i in range(0, 600, 2)]
    # Outside the soak (0-200 s: the device suite) heap falls 30 B/s; inside it (200-500 s) it is flat.
    heap = [200_000 - (30 * x if x < 200 else 6_000) - rng.randrange(0, 1024, 16) for x in t]
    frame = pd.DataFrame({"t": t, "heap_free": heap, "device": "d", "boot_id": "b1"})
    soak = [{"kind": "scenario", "action": "start", "scenario": "soak", "duration": 300.0, "t": 200.0},
            {"kind": "scenario", "action": "end", "scenario": "soak", "t": 500.0}]  # fmt: skip
    assert heap_trend(frame[frame["t"] < 200]).verdict == "leak"
    assert soak_windows(soak, 600.0) == [(200.0, 500.0)]
    assert heap_trend(soak_telemetry(frame, soak, 600.0)).verdict == "flat"
    # A soak that died has no end record: it lasted its duration, or to the end of the run.
    assert soak_windows(soak[:1], 450.0) == [(200.0, 450.0)]
    # A run without a soak (or a scenario's own checks) fits everything.
    steps_only = [{"kind": "scenario", "action": "start", "scenario": "x", "duration": None, "t": 0.0}]
    assert len(soak_telemetry(frame, steps_only, 600.0)) == len(frame)
