"""Regression compare: findings, exit status, tolerances, flaky tests, baselines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import ConfigError
from harness.report.baseline import promote, resolve_baseline
from harness.report.compare import Comparison, compare, compare_tests, repeat_key
from harness.report.tolerances import DEFAULTS, load_tolerances
from tests.report.twinlog import SoakSpec, write_soak

BOOT = "tests/device/test_boot.py::test_boots"


@pytest.fixture
def pair(reports: Path) -> tuple[Path, Path]:
    """A baseline, and a run that differs by one new failure and an OTA twice as slow."""
    base, cur = reports / "base", reports / "cur"
    write_soak(base, SoakSpec())
    spec = SoakSpec(ota_seconds=80.0)
    spec.tests[BOOT] = "failed"
    write_soak(cur, spec)
    return base, cur


def test_one_new_failure_and_a_slower_ota_are_exactly_the_findings(pair: tuple[Path, Path]) -> None:
    base, cur = pair
    result = compare(cur, base, load_tolerances(None))
    assert result.new_failures == [BOOT]
    assert [d.metric for d in result.regressions] == ["ota.duration.max"]
    assert len(result.findings) == 2
    assert result.fixed == result.still_failing == result.flaky == []
    assert result.exit_status == 1


def test_compare_command_exits_non_zero_and_writes_markdown_and_html(
    pair: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base, cur = pair
    assert main(["report", "compare", str(cur), "--baseline", str(base)]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION: 2 finding(s)" in out
    md = (cur / "compare.md").read_text()
    assert f"`{BOOT}`" in md and "| `ota.duration.max` | 40 s | 80 s | +40 s (+100%) | 8 s |" in md
    assert len(md.splitlines()) < 20
    page = (cur / "compare.html").read_text()
    assert "REGRESSED" in page and "New failures (1)" in page


def test_a_run_against_itself_has_no_finding(
    pair: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base, _ = pair
    assert main(["report", "compare", str(base), "--baseline", str(base)]) == 0
    assert "no regression" in capsys.readouterr().out


def test_a_tolerance_file_can_allow_the_slower_ota(pair: tuple[Path, Path], tmp_path: Path) -> None:
    base, cur = pair
    tol = tmp_path / "tol.yaml"
    tol.write_text("tolerances:\n  ota.duration.max: {relative: 150%}\n  boot.time.p95: {absolute: 150ms}\n")
    table = load_tolerances(tol)
    assert table["boot.time.p95"].absolute == pytest.approx(0.15)
    result = compare(cur, base, table)
    assert [d.metric for d in result.regressions] == []
    assert result.findings == [f"new failure: {BOOT}"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "tolerances:\n  heap.slope: {absolute: lots}\n",
            r"tol\.yaml:2:\d+: heap\.slope: expected a rate such as '100B/h'",
        ),
        (
            "tolerances:\n  ota.duration.max: {relative: -5%}\n",
            r"ota\.duration\.max: expected a percentage of 0% or more",
        ),
        ("tolerances:\n  my.metric: 10%\n", r"my\.metric: expected worse: higher or worse: lower"),
        ("tolerances:\n  boot.time.p50: {relativ: 5%}\n", r"unknown key 'relativ'"),
        ("tolerances: [1, 2]\n", r"expected a map of metric name to tolerance"),
        ("tolerances:\n  a: [\n", r"invalid YAML"),
    ],
)
def test_bad_tolerance_files_fail_with_one_line(tmp_path: Path, text: str, message: str) -> None:
    tol = tmp_path / "tol.yaml"
    tol.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_tolerances(tol)
    assert "\n" not in str(info.value)


def test_custom_metric_tolerance_needs_a_direction(tmp_path: Path) -> None:
    tol = tmp_path / "tol.yaml"
    tol.write_text("my.metric: {worse: lower, absolute: 3}\n")
    assert load_tolerances(tol)["my.metric"].worse == "lower"
    assert set(DEFAULTS) <= set(load_tolerances(tol))


@pytest.mark.parametrize(
    ("nodeid", "key"),
    [
        ("t.py::test_x[2-5]", "t.py::test_x"),
        ("t.py::test_x[a-2-5]", "t.py::test_x[a]"),
        ("t.py::test_x[a]", "t.py::test_x[a]"),
        ("t.py::test_x", "t.py::test_x"),
    ],
)
def test_repeats_group_under_one_test(nodeid: str, key: str) -> None:
    assert repeat_key(nodeid) == key


def test_outcome_classes() -> None:
    def results(**outcomes: list[str]) -> dict:
        return {
            "tests": [
                {"test": f"t.py::{name}[{i + 1}-{len(seq)}]", "outcome": o}
                for name, seq in outcomes.items()
                for i, o in enumerate(seq)
            ]
        }

    cmp = Comparison("now", "before")
    compare_tests(
        cmp,
        results(
            new=["failed"],
            fixed=["passed"],
            still=["error"],
            flaky=["passed", "failed", "passed"],
            ok=["passed", "passed"],
        ),
        results(
            new=["passed"],
            fixed=["failed"],
            still=["failed"],
            flaky=["passed"],
            ok=["passed"],
            gone=["passed"],
        ),
    )
    assert cmp.new_failures == ["t.py::new"]
    assert cmp.fixed == ["t.py::fixed"]
    assert cmp.still_failing == ["t.py::still"]
    assert cmp.flaky == ["t.py::flaky"]
    assert cmp.not_run == ["t.py::gone"]
    assert cmp.findings == ["new failure: t.py::new"]  # flaky tests are listed, not gated on


def test_promote_makes_a_named_baseline_that_compare_finds(
    pair: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base, cur = pair
    target = promote(base, "nightly")
    assert target == base.parent / "baselines" / "nightly"
    assert {p.name for p in target.iterdir()} == {"journal.jsonl", "results.json", "baseline.json"}
    assert resolve_baseline("nightly", cur) == target
    assert main(["report", "compare", str(cur), "--baseline", "nightly"]) == 1
    promote(cur, "nightly")  # replacing it whole
    assert main(["report", "compare", str(cur), "--baseline", "nightly"]) == 0
    assert main(["report", "promote", str(cur)]) == 0  # default name: the rig's
    assert (base.parent / "baselines" / "twin" / "baseline.json").is_file()
    capsys.readouterr()


def test_unknown_baseline_lists_the_available_ones(
    pair: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base, cur = pair
    promote(base, "nightly")
    assert main(["report", "compare", str(cur), "--baseline", "weekly"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "baseline 'weekly' not found" in err and "available: nightly" in err


def test_a_killed_run_is_not_promoted_without_force(reports: Path) -> None:
    dead = reports / "dead"
    write_soak(dead, SoakSpec(hours=2.0), truncate=True)
    with pytest.raises(ConfigError, match="did not finish"):
        promote(dead, "x")
    assert promote(dead, "x", force=True).is_dir()


def test_a_rerun_that_then_passed_is_flaky_not_fixed() -> None:
    cmp = Comparison("now", "before")
    now = {"tests": [{"test": "t.py::a", "outcome": "rerun"}, {"test": "t.py::a", "outcome": "passed"}]}
    compare_tests(cmp, now, {"tests": [{"test": "t.py::a", "outcome": "passed"}]})
    assert cmp.flaky == ["t.py::a"] and cmp.findings == []


def test_a_baseline_with_only_results_json_compares_on_its_stored_metrics(pair: tuple[Path, Path]) -> None:
    base, cur = pair
    promote(base, "slim")
    slim = base.parent / "baselines" / "slim"
    (slim / "journal.jsonl").unlink()
    result = compare(cur, slim, load_tolerances(None))
    assert [d.metric for d in result.regressions] == ["ota.duration.max"]


def _slope_run(folder: Path, slope: float, low: float, high: float) -> Path:
    """A finished run folder holding only results.json, with a battery trend and its 99.9% interval (V/h)."""
    folder.mkdir(parents=True)
    metrics = {"battery.slope": slope, "battery.slope.low": low, "battery.slope.high": high}
    results = {"exit_status": 0, "tests": [{"test": BOOT, "outcome": "passed"}], "metrics": metrics}
    (folder / "results.json").write_text(json.dumps(results))
    return folder


def test_a_slope_that_moved_within_both_intervals_is_within_noise_not_a_regression(
    reports: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The nightly's numbers: -11.52 -> -21.41 mV/h, both intervals straddling zero (allowed 1 mV/h).
    base = _slope_run(reports / "base", -0.01152, -0.0527, 0.0299)
    now = _slope_run(reports / "now", -0.02141, -0.0611, 0.0183)
    result = compare(now, base, load_tolerances(None))
    (delta,) = [d for d in result.deltas if d.metric == "battery.slope"]
    assert delta.worse_by > delta.allowance  # the estimates alone would call it a regression
    assert not delta.regressed and not delta.improved and delta.within_noise
    assert result.findings == [] and result.exit_status == 0
    assert main(["report", "compare", str(now), "--baseline", str(base)]) == 0
    capsys.readouterr()
    page = (now / "compare.html").read_text()
    assert "within noise" in page and "REGRESSED" not in page
    assert "(1 within noise)" in page
    assert "within noise 1" in (now / "compare.md").read_text()


@pytest.mark.parametrize(
    ("now_ci", "regressed"),
    [
        ((-0.0140, -0.0085), True),  # wholly below -8 mV/h: the baseline's low end less the allowance
        ((-0.0140, -0.0075), False),  # reaches into the allowance: within noise
    ],
)
def test_a_slope_regresses_only_when_the_intervals_part_by_more_than_the_allowance(
    reports: Path, now_ci: tuple[float, float], regressed: bool
) -> None:
    base = _slope_run(reports / "base", -0.0050, -0.0070, -0.0030)  # allowance 1 mV/h: the bar is -8 mV/h
    now = _slope_run(reports / "now", sum(now_ci) / 2, *now_ci)
    (delta,) = [d for d in compare(now, base, load_tolerances(None)).deltas if d.metric == "battery.slope"]
    assert delta.regressed is regressed
    assert delta.within_noise is not regressed


def test_a_baseline_without_intervals_is_judged_on_the_estimates(reports: Path) -> None:
    base = reports / "base"
    base.mkdir()
    metrics = {"battery.slope": -0.01152}  # an older run: no .low/.high
    (base / "results.json").write_text(json.dumps({"exit_status": 0, "tests": [], "metrics": metrics}))
    now = _slope_run(reports / "now", -0.02141, -0.0611, 0.0183)
    (delta,) = [d for d in compare(now, base, load_tolerances(None)).deltas if d.metric == "battery.slope"]
    assert not delta.judged_by_interval and delta.regressed
