"""Regression compare: a run against a baseline run, both read from their folders only.

Tests: *new failures* (fail now, passed or absent in the baseline), *fixed*, *still failing*, *flaky*
(the outcome differs across repeats within this run: reruns, ``pytest-repeat`` ids ``[2-5]``), and
tests the baseline had that did not run. Metrics: each metric with a tolerance is compared; a change
in its worse direction beyond the allowance is a regression. A metric measured with a confidence
interval (``heap.slope`` and ``battery.slope`` carry ``<metric>.low``/``.high``, 99.9%) regresses only
when the intervals do not overlap after the allowance (now's whole interval lies beyond the baseline's
by more than it); a change of its estimate inside that is *within noise*. New failures and metric
regressions are the *findings*; any finding makes the comparison fail (non-zero exit), flaky tests do not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.report.analysis import analyze, metrics
from harness.report.rundata import RunData, load_run
from harness.report.tolerances import Tolerance, show

_REPEAT = re.compile(r"(\[(?:.*-)?)\d+-\d+\]$")
_FAILED = ("failed", "error", "rerun")  # a rerun is a failed attempt (pytest-rerunfailures)


@dataclass(frozen=True)
class MetricDelta:
    metric: str
    baseline: float
    current: float
    tolerance: Tolerance
    #: (low, high) confidence intervals of a fitted metric, when both runs carry them.
    baseline_ci: tuple[float, float] | None = None
    current_ci: tuple[float, float] | None = None

    @property
    def delta(self) -> float:
        return self.current - self.baseline

    @property
    def worse_by(self) -> float:
        """How far the change went in the worse direction (negative: it got better)."""
        return self.delta if self.tolerance.worse == "higher" else -self.delta

    @property
    def allowance(self) -> float:
        return self.tolerance.allowance(self.baseline)

    @property
    def judged_by_interval(self) -> bool:
        return self.baseline_ci is not None and self.current_ci is not None

    def _beyond(self, worse: bool) -> bool:
        """Now lies beyond the baseline by more than the allowance, worse (or better) way: the estimates,
        or for a fitted metric the intervals (no overlap left once the allowance is added)."""
        if not (self.baseline_ci and self.current_ci):
            return (self.worse_by if worse else -self.worse_by) > self.allowance + 1e-12
        (b_lo, b_hi), (c_lo, c_hi) = self.baseline_ci, self.current_ci
        higher = (self.tolerance.worse == "higher") == worse  # is the move we test for upwards?
        gap = c_lo - b_hi if higher else b_lo - c_hi
        return gap > self.allowance + 1e-12

    @property
    def regressed(self) -> bool:
        return self._beyond(worse=True)

    @property
    def improved(self) -> bool:
        return self._beyond(worse=False)

    @property
    def within_noise(self) -> bool:
        """The estimates moved by more than the allowance, but the intervals say it may be chance."""
        return (
            self.judged_by_interval
            and not (self.regressed or self.improved)
            and abs(self.worse_by) > self.allowance + 1e-12
        )

    @property
    def relative(self) -> float | None:
        return None if self.baseline == 0 else self.delta / abs(self.baseline)

    def describe(self) -> str:
        kind = self.tolerance.kind
        rel = "" if self.relative is None else f" ({self.relative * 100:+.0f}%)"
        sign = "+" if self.delta >= 0 else "-"
        text = (
            f"{self.metric}: {show(self.baseline, kind)} -> {show(self.current, kind)}, "
            f"{sign}{show(abs(self.delta), kind)}{rel}, allowed {show(self.allowance, kind)}"
        )
        if self.baseline_ci and self.current_ci:
            text += (
                f" (99.9% CI {show(self.baseline_ci[0], kind)} .. {show(self.baseline_ci[1], kind)} -> "
                f"{show(self.current_ci[0], kind)} .. {show(self.current_ci[1], kind)})"
            )
        return text


@dataclass
class Comparison:
    run: str
    baseline: str
    new_failures: list[str] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)
    still_failing: list[str] = field(default_factory=list)
    flaky: list[str] = field(default_factory=list)
    not_run: list[str] = field(default_factory=list)
    deltas: list[MetricDelta] = field(default_factory=list)
    missing_metrics: list[str] = field(default_factory=list)  # a tolerance, but no value on one side
    incomplete: list[str] = field(default_factory=list)  # which side(s) did not finish

    @property
    def regressions(self) -> list[MetricDelta]:
        return [d for d in self.deltas if d.regressed]

    @property
    def findings(self) -> list[str]:
        """One line per regression: each new failure, each metric beyond its tolerance."""
        return [f"new failure: {t}" for t in self.new_failures] + [
            f"metric regression: {d.describe()}" for d in self.regressions
        ]

    @property
    def regressed(self) -> bool:
        return bool(self.findings)

    @property
    def exit_status(self) -> int:
        return 1 if self.regressed else 0


def repeat_key(nodeid: str) -> str:
    """The test a repeat belongs to: ``t.py::test_x[2-5]`` -> ``t.py::test_x``; ``[a-2-5]`` -> ``[a]``."""
    m = _REPEAT.search(nodeid)
    if not m:
        return nodeid
    head = m.group(1)
    return nodeid[: m.start()] + (head[:-1] + "]" if head.endswith("-") else "")


def outcomes(results: dict[str, Any]) -> dict[str, list[str]]:
    """Every outcome each test had in a run, repeats grouped under one key, in order."""
    out: dict[str, list[str]] = {}
    for t in results.get("tests", []) or []:
        if isinstance(t, dict) and t.get("test"):
            out.setdefault(repeat_key(str(t["test"])), []).append(str(t.get("outcome", "")))
    return out


def _verdict(seen: list[str]) -> str:
    ran = [o for o in seen if o != "skipped"]
    if not ran:
        return "skipped"
    failed = [o in _FAILED for o in ran]
    if all(failed):
        return "failed"
    return "flaky" if any(failed) else "passed"


def compare_tests(cmp: Comparison, current: dict[str, Any], baseline: dict[str, Any]) -> None:
    now, before = outcomes(current), outcomes(baseline)
    for test, seen in now.items():
        verdict, was = _verdict(seen), _verdict(before.get(test, []))
        if verdict == "flaky":
            cmp.flaky.append(test)
        elif verdict == "failed":
            (cmp.still_failing if was in ("failed", "flaky") else cmp.new_failures).append(test)
        elif verdict == "passed" and was == "failed":
            cmp.fixed.append(test)
    cmp.not_run = sorted(set(before) - set(now))


def compare_metrics(
    cmp: Comparison, current: dict[str, Any], baseline: dict[str, Any], tolerances: dict[str, Tolerance]
) -> None:
    for name, tol in tolerances.items():
        a, b = baseline.get(name), current.get(name)
        numeric = [_number(v) for v in (a, b)]
        if all(numeric):
            base_ci, cur_ci = _interval(baseline, name), _interval(current, name)
            if base_ci is None or cur_ci is None:  # an older run without intervals: the estimates
                base_ci = cur_ci = None
            cmp.deltas.append(MetricDelta(name, float(a), float(b), tol, base_ci, cur_ci))  # type: ignore[arg-type]
        elif any(numeric):
            cmp.missing_metrics.append(name)


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _interval(values: dict[str, Any], name: str) -> tuple[float, float] | None:
    """``(<name>.low, <name>.high)`` when the run has both (a fitted metric's confidence interval)."""
    lo, hi = values.get(f"{name}.low"), values.get(f"{name}.high")
    if not (_number(lo) and _number(hi)):
        return None
    return (min(float(lo), float(hi)), max(float(lo), float(hi)))


def run_metrics(run: RunData) -> dict[str, Any]:
    """Metrics recomputed from the journal; a folder without one falls back to results.json's."""
    if run.records:
        return metrics(analyze(run))
    stored = run.results.get("metrics")
    return stored if isinstance(stored, dict) else {}


def compare(run_folder: Path, baseline_folder: Path, tolerances: dict[str, Tolerance]) -> Comparison:
    """Compare two run folders (see the module docstring)."""
    current, baseline = load_run(run_folder), load_run(baseline_folder)
    cmp = Comparison(current.run_id, baseline.run_id)
    for side, run in (("run", current), ("baseline", baseline)):
        if not run.complete:
            cmp.incomplete.append(side)
    compare_tests(cmp, current.results, baseline.results)
    compare_metrics(cmp, run_metrics(current), run_metrics(baseline), tolerances)
    return cmp
