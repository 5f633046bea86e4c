"""The soak checks catch real faults: the CI scenario ``ota-soak-guard`` passes with a healthy image
(it runs in CI as it is) and fails, on the very checks meant to catch them, with an image that leaks
heap or one that boots slowly. Without the failing half, a green soak could mean checks that cannot fail.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.report.journal import read_run

ROOT = Path(__file__).resolve().parents[2]
GUARD = ROOT / "scenarios" / "ci" / "ota-soak-guard.yaml"


def _run_with(pytester: pytest.Pytester, tmp_path: Path, variant: str) -> tuple[pytest.RunResult, list[dict]]:
    text = GUARD.read_text(encoding="utf-8")
    faulty = text.replace("variant: healthy", variant)
    assert faulty != text, "ota-soak-guard.yaml no longer deploys 'variant: healthy' the way this test expects"
    folder = pytester.path / "scenarios"
    folder.mkdir()
    (folder / "guard.yaml").write_text(faulty, encoding="utf-8")
    result = pytester.runpytest_subprocess("scenarios", "--reports-dir", str(tmp_path), "--run-id", "faulty",
                                           "-p", "no:cacheprovider")  # fmt: skip
    checks = [r for r in read_run(tmp_path / "faulty") if r["kind"] == "check"]
    return result, checks


@pytest.mark.parametrize(
    ("variant", "lines", "failed"),
    [
        pytest.param(
            "variant: leak, leak: 4MiB/h",
            ["*2 check(s) failed*", "    ok   ota.outcome == committed *", "    FAIL heap.trend != leak * observed leak *",
             "    FAIL heap.exhaustion > 90d * observed *", "    ok   boot.time.p95 < 3s *"],
            {"heap.trend", "heap.exhaustion"},
            id="leak",
        ),
        pytest.param(
            "variant: slow-boot, boot_delay: 4s",
            ["*1 check(s) failed*", "    ok   heap.trend != leak *", "    FAIL boot.time.p95 < 3s * observed *"],
            {"boot.time.p95"},
            id="slow-boot",
        ),
    ],
)
def test_a_faulty_image_fails_the_checks_meant_to_catch_it_and_only_those(pytester, tmp_path, variant, lines, failed):
    result, checks = _run_with(pytester, tmp_path, variant)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["scenario 'ota-soak-guard' failed *", *lines])
    assert {c["metric"] for c in checks if not c["passed"]} == failed, checks
    if "heap.exhaustion" in failed:
        exhaustion = next(c["observed"] for c in checks if c["metric"] == "heap.exhaustion")
        assert 60 < exhaustion < 600, f"4 MiB/h on ~200 KiB of free heap runs out in minutes, got {exhaustion}s"
