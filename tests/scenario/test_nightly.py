"""The nightly telemetry soak runs on the twin in CI, its four hours compressed into seconds.

Each soak is a 40 s inner run of real time, nearly all of it waiting on the twin. In a run of one
process the two start together (each its own twin, broker and run folder, as two xdist workers
would have) and each test then judges its own; under xdist each worker starts only the one it runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.run.journal import read_run
from tests.scenario.inner_runs import InnerRun, InnerRuns, start

ROOT = Path(__file__).resolve().parents[2]
SOAKS = {
    "telemetry": ("soak-telemetry.yaml", ()),
    "wifi-weak": ("soak-wifi-weak.yaml", ("-p", "no:xdist")),
}
SOAK_OF = {  # test -> the soak it judges
    "test_nightly_telemetry_soak_runs_compressed_on_the_twin": "telemetry",
    "test_the_wifi_weak_soak_compressed_judges_what_it_can": "wifi-weak",
}


def _soak(name: str, folder: Path) -> InnerRun:
    scenario, extra = SOAKS[name]
    return start(name, folder, [
        str(ROOT / "scenarios" / "nightly" / scenario),
        "--scenario-duration", "40s",
        "--reports-dir", str(folder / "reports"),
        "--run-id", "soak",
        "--rootdir", str(ROOT),
        "-p", "no:cacheprovider", *extra,
    ])  # fmt: skip


@pytest.fixture(scope="module")
def soaks(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InnerRuns]:
    runs = InnerRuns(tmp_path_factory.mktemp("nightly"), _soak)
    try:
        runs.start_selected(request, lambda item: SOAK_OF[item.originalname])
        yield runs
    finally:
        runs.stop()


def test_nightly_telemetry_soak_runs_compressed_on_the_twin(soaks: InnerRuns) -> None:
    soak = soaks["telemetry"]
    result = soak.result()
    result.assert_outcomes(passed=1)
    records = read_run(soak.folder / "reports" / "soak")
    start = next(r for r in records if r["kind"] == "scenario" and r["action"] == "start")
    assert start["duration"] == 40.0
    assert len(start["instants"]) >= 10, "the compressed schedule lost its injections"
    assert max(start["instants"]) < 40.0
    fired = [r for r in records if r["kind"] == "injection" and r.get("scenario") == "soak-telemetry"]
    assert {r["action"] for r in fired} == {"power-cut", "partition"}
    checks = [r for r in records if r["kind"] == "check"]
    assert checks and all(c["passed"] for c in checks), checks


def test_the_wifi_weak_soak_compressed_judges_what_it_can(soaks: InnerRuns) -> None:
    """The README's soak, compressed: every boot after a scheduled power cut is a boot (boot.time.p95 has
    data; it said 'no data'), and heap.slope > -200B/h on boots of seconds is not judged, saying why (it
    failed with a slope whose interval held both signs)."""
    soak = soaks["wifi-weak"]
    result = soak.result()
    result.assert_outcomes(passed=1)
    records = read_run(soak.folder / "reports" / "soak")
    start = next(r["t"] for r in records if r["kind"] == "scenario" and r["action"] == "start")
    checks = {r["name"]: r for r in records if r["kind"] == "check"}
    slope = checks["heap.slope > -200B/h"]
    assert slope["passed"] is None and "confidence interval" in slope["skipped"], slope
    assert "compressed 720x" in slope["skipped"]
    assert checks["boot.time.p95 < 5s"]["passed"] is True and checks["boot.time.p95 < 5s"]["observed"] > 0
    banners = [r for r in records if r["kind"] == "console" and "BOOT slot=" in r["line"] and r["t"] >= start]
    cuts = [r for r in records if r["kind"] == "injection" and r.get("action") == "power-cut"]
    assert len(cuts) >= 3 and len(banners) >= len(cuts), (len(cuts), len(banners))
