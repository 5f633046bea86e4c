"""Trend checks (``heap.trend``, ``heap.exhaustion``, ``battery.trend``) on recorded twin journals, and the
false-alarm rate that makes them fit to fail a nightly build."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pandas as pd
import pytest

from harness.report.trends import CONFIDENCE, heap_trend
from harness.scenario.checks import format_value, parse_check
from harness.scenario.metrics import compute_metrics
from harness.twin.heap import BASE_USED, HEAP_TOTAL, NOISE_MAX
from tests.report.twinlog import SoakSpec, write_soak


def _metrics(folder: Path, leak_per_h: float) -> dict:
    write_soak(folder, SoakSpec(hours=12.0, leak_per_h=leak_per_h))
    records = [json.loads(line) for line in (folder / "journal.jsonl").read_text().splitlines()]
    return compute_metrics(records)


def test_a_leak_fails_the_trend_checks_and_a_flat_heap_passes_them(tmp_path: Path) -> None:
    leaking = _metrics(tmp_path / "leak", 2000.0)
    flat = _metrics(tmp_path / "flat", 0.0)
    trend, horizon = parse_check("heap.trend != leak"), parse_check("heap.exhaustion > 90d")
    assert leaking["heap.trend"] == "leak" and not trend.evaluate(leaking["heap.trend"])
    assert 0 < leaking["heap.exhaustion"] < 90 * 86400 and not horizon.evaluate(leaking["heap.exhaustion"])
    assert flat["heap.trend"] == "flat" and trend.evaluate(flat["heap.trend"])
    assert flat["heap.exhaustion"] == math.inf and horizon.evaluate(flat["heap.exhaustion"])
    assert horizon.show(flat["heap.exhaustion"]) == "never"
    assert flat["battery.trend"] in ("drain", "flat", "rising", "unknown")


def test_no_telemetry_means_no_verdict_and_the_checks_fail_rather_than_pass() -> None:
    metrics = compute_metrics([])
    assert metrics["heap.trend"] == "unknown" and metrics["heap.exhaustion"] is None
    assert not parse_check("heap.exhaustion > 90d").evaluate(metrics["heap.exhaustion"])
    assert format_value("horizon", None) == "no data"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("heap.trend == leaky", "heap.trend: expected one of leak, flat, rising, unknown, got 'leaky' (did you mean 'leak'?)"),
        ("heap.trend > flat", "heap.trend is an outcome: compare it with == or !=, not >"),
        ("battery.trend == leak", "battery.trend: expected one of drain, flat, rising, unknown, got 'leak'"),
        ("heap.exhaustion > soon", "heap.exhaustion: expected a duration such as '300ms'"),
    ],
)
def test_bad_trend_checks_say_what_is_accepted(text: str, error: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_check(text)
    assert str(info.value).startswith(error)


def test_a_healthy_heap_is_almost_never_called_a_leak_on_a_short_run() -> None:
    """The twin's heap noise on 200 short runs (15 readings a second apart, as a CI scenario takes): at
    99.9% about 0.2 false leaks are expected; at 95% it would be about 5 — one nightly in 40 red for nothing."""
    rng = random.Random(5)
    false_alarms = 0
    runs = 200
    for run in range(runs):
        t = [1000.0 + i + rng.uniform(-0.02, 0.02) for i in range(15)]
        heap = [HEAP_TOTAL - BASE_USED - 96 - rng.randrange(0, NOISE_MAX, 16) for _ in t]
        frame = pd.DataFrame({"t": t, "heap_free": heap, "device": "d", "boot_id": f"b{run}"})
        false_alarms += heap_trend(frame).verdict == "leak"
    assert CONFIDENCE == 0.999
    assert false_alarms <= 3, f"{false_alarms} healthy runs of {runs} called a leak"


def test_a_real_leak_is_caught_on_the_same_short_run() -> None:
    rng = random.Random(6)
    t = [1000.0 + i for i in range(15)]
    leak_per_s = 4 * 1024 * 1024 / 3600  # the ota-soak-guard test's 4 MiB/h
    heap = [HEAP_TOTAL - BASE_USED - rng.randrange(0, NOISE_MAX, 16) - leak_per_s * (x - t[0]) for x in t]
    trend = heap_trend(pd.DataFrame({"t": t, "heap_free": heap, "device": "d", "boot_id": "b"}))
    assert trend.verdict == "leak" and "99.9% CI" in trend.text, trend.text
