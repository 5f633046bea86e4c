"""The nightly telemetry soak runs on the twin in CI, its four hours compressed into seconds."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.report.journal import read_run

ROOT = Path(__file__).resolve().parents[2]


def test_nightly_telemetry_soak_runs_compressed_on_the_twin(pytester: pytest.Pytester, tmp_path: Path) -> None:
    result = pytester.runpytest_subprocess(
        str(ROOT / "scenarios" / "nightly" / "soak-telemetry.yaml"),
        "--scenario-duration", "40s",
        "--reports-dir", str(tmp_path / "reports"),
        "--run-id", "soak",
        "--rootdir", str(ROOT),
        "-p", "no:cacheprovider",
    )  # fmt: skip
    result.assert_outcomes(passed=1)
    records = read_run(tmp_path / "reports" / "soak")
    start = next(r for r in records if r["kind"] == "scenario" and r["action"] == "start")
    assert start["duration"] == 40.0
    assert len(start["instants"]) >= 10, "the compressed schedule lost its injections"
    assert max(start["instants"]) < 40.0
    fired = [r for r in records if r["kind"] == "injection" and r.get("scenario") == "soak-telemetry"]
    assert {r["action"] for r in fired} == {"power-cut", "partition"}
    checks = [r for r in records if r["kind"] == "check"]
    assert checks and all(c["passed"] for c in checks), checks
