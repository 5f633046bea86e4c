"""The soak checks catch real faults: the CI scenario ``ota-soak-guard`` passes with a healthy image
(it runs in CI as it is) and fails, on the very checks meant to catch them, with an image that leaks
heap or one that boots slowly. Without the failing half, a green soak could mean checks that cannot fail.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.run.journal import read_run
from tests.scenario.inner_runs import InnerRun, InnerRuns, start

ROOT = Path(__file__).resolve().parents[2]
GUARD = ROOT / "scenarios" / "ci" / "ota-soak-guard.yaml"
VARIANTS = {"leak": "variant: leak, leak: 4MiB/h", "slow-boot": "variant: slow-boot, boot_delay: 4s"}


def _run_with(name: str, folder: Path) -> InnerRun:
    """ota-soak-guard.yaml with the variant of ``name`` instead of the healthy image, as an inner run.

    Both variants' runs start together in a run of one process (each mostly waits on its twin)."""
    text = GUARD.read_text(encoding="utf-8")
    faulty = text.replace("variant: healthy", VARIANTS[name])
    assert faulty != text, "ota-soak-guard.yaml no longer deploys 'variant: healthy' the way this test expects"
    (folder / "scenarios").mkdir(parents=True)
    (folder / "scenarios" / "guard.yaml").write_text(faulty, encoding="utf-8")
    return start(name, folder, ["scenarios", "--reports-dir", str(folder / "reports"), "--run-id", "faulty",
                                "-p", "no:cacheprovider"])  # fmt: skip


@pytest.fixture(scope="module")
def faulty_runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InnerRuns]:
    runs = InnerRuns(tmp_path_factory.mktemp("faulty"), _run_with)
    try:
        runs.start_selected(request, lambda item: item.callspec.params["name"])
        yield runs
    finally:
        runs.stop()


@pytest.mark.parametrize(
    ("name", "lines", "failed"),
    [
        pytest.param(
            "leak",
            ["*2 check(s) failed*", "    ok   ota.outcome == committed *", "    FAIL heap.trend != leak * observed leak *",
             "    FAIL heap.exhaustion > 90d * observed *", "    ok   boot.time.p95 < 3s *"],
            {"heap.trend", "heap.exhaustion"},
            id="leak",
        ),
        pytest.param(
            "slow-boot",
            ["*1 check(s) failed*", "    ok   heap.trend != leak *", "    FAIL boot.time.p95 < 3s * observed *"],
            {"boot.time.p95"},
            id="slow-boot",
        ),
    ],
)
def test_a_faulty_image_fails_the_checks_meant_to_catch_it_and_only_those(faulty_runs, name, lines, failed):
    run = faulty_runs[name]
    result = run.result()
    checks = [r for r in read_run(run.folder / "reports" / "faulty") if r["kind"] == "check"]
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["scenario 'ota-soak-guard' failed *", *lines])
    assert {c["metric"] for c in checks if not c["passed"]} == failed, checks
    if "heap.exhaustion" in failed:
        exhaustion = next(c["observed"] for c in checks if c["metric"] == "heap.exhaustion")
        assert 60 < exhaustion < 600, f"4 MiB/h on ~200 KiB of free heap runs out in minutes, got {exhaustion}s"
