"""The soak page's verdict: PASS / FAIL / INCOMPLETE / INTERRUPTED, and every line that backs it.

Computed once from an :class:`Analysis`; the banner, the tables below it and the tests read this object,
so the banner never says something the tables do not show (``no leak`` while the trend table says n/a).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.report import units
from harness.report.analysis import Analysis
from harness.report.trends import CONFIDENCE, Trend, confidence_label

FAILED_OUTCOMES = ("failed", "error")


@dataclass(frozen=True)
class Failure:
    """One reason the run is not green, with the measured value against its limit."""

    what: str  # "check" | "trend" | "reboots" | "tests" | "step"
    name: str
    observed: str
    limit: str
    detail: str = ""

    @property
    def text(self) -> str:
        against = f"{self.observed} (limit {self.limit})" if self.limit else self.observed
        return f"{self.name}: {against}" + (f" — {self.detail}" if self.detail else "")


@dataclass(frozen=True)
class TrendLine:
    name: str
    verdict: str  # leak | drain | flat | rising | unknown
    text: str

    @property
    def computable(self) -> bool:
        return self.verdict != "unknown"


@dataclass
class Verdict:
    state: str  # PASS | FAIL | INCOMPLETE | INTERRUPTED
    finished: str  # "finished" | "incomplete" | "interrupted"
    failures: list[Failure] = field(default_factory=list)
    trends: list[TrendLine] = field(default_factory=list)
    checks_total: int = 0
    checks_failed: int = 0
    checks_unjudged: int = 0
    unjudged: list[Failure] = field(default_factory=list)  # checks not judged, the reason as detail
    tests_total: int = 0
    tests_failed: list[str] = field(default_factory=list)
    tests_skipped: int = 0
    boots: int = 0
    unexpected_boots: int = 0
    stopped: str = ""  # how an interrupted run was stopped: signal and instant (rundata's status line)

    @property
    def passed(self) -> bool:
        return self.state == "PASS"

    @property
    def headline(self) -> str:
        """One sentence under the state word, every figure in it also in a table below."""
        parts = []
        if self.checks_total:
            parts.append(
                f"{self.checks_total - self.checks_failed - self.checks_unjudged} of "
                f"{units.plural(self.checks_total, 'check')} passed"
                + (f", {self.checks_unjudged} not judged" if self.checks_unjudged else "")
            )
        else:
            parts.append("no scenario checks recorded")
        if self.tests_total:
            passed = self.tests_total - len(self.tests_failed) - self.tests_skipped
            parts.append(
                f"{passed} of {units.plural(self.tests_total, 'test')} passed"
                + (f", {self.tests_skipped} skipped" if self.tests_skipped else "")
            )
        parts.append(f"{units.plural(self.boots, 'boot')}, {self.unexpected_boots} unexpected")
        if self.finished == "incomplete":
            parts.append("the run did not finish: built from the journal as far as it was written")
        elif self.finished == "interrupted":
            parts.append(self.stopped or "the run was stopped before its end")
        return "; ".join(parts)


def trend_line(t: Trend) -> TrendLine:
    """``heap leak: -200 B/h (99.9% CI …), reaches 0 in 53 days`` / ``no trend: slope -0.3 ± 1.1 B/h`` /
    ``trend not computable: too few samples``."""
    d = t.as_dict()
    if t.fit is None:
        why = "no samples" if t.text.endswith("no samples") else "too few samples"
        return TrendLine(t.name, t.verdict, f"{t.name}: trend not computable: {why}")
    ci = (
        f"{confidence_label(d['confidence'] or CONFIDENCE)} CI {units.rate(d['ci_low_per_h'], t.unit)} … "
        f"{units.rate(d['ci_high_per_h'], t.unit)}"
    )
    if t.verdict in ("leak", "drain"):
        floor = "0" if t.floor == 0 else f"{t.floor:g} {t.unit}"
        left = units.duration(t.exhaustion_s)
        text = f"{t.name} {t.verdict}: {units.rate(t.slope_per_hour, t.unit)} ({ci}), reaches {floor} in {left}"
        return TrendLine(t.name, t.verdict, text)
    pm = units.plus_minus(d["slope_per_h"], d["ci_low_per_h"], d["ci_high_per_h"], t.unit)
    if t.verdict == "rising":
        return TrendLine(t.name, t.verdict, f"{t.name} rising: {units.rate(t.slope_per_hour, t.unit)} ({ci})")
    if t.exhaustion_s is not None:  # a real but negligible fall: flat for any practical purpose
        return TrendLine(
            t.name, t.verdict, f"{t.name}: no practical trend: slope {pm}, would take {units.duration(t.exhaustion_s)}"
        )
    return TrendLine(t.name, t.verdict, f"{t.name}: no trend: slope {pm}")


def finished_state(a: Analysis) -> str:
    """``finished``, ``interrupted`` (stopped: Ctrl-C, a scenario interrupted) or ``incomplete`` (killed)."""
    run = a.run
    if run.status == "interrupted" or run.results.get("exit_status") == 2:
        return "interrupted"
    if any(r.get("action") == "interrupted" for r in run.of("scenario")):
        return "interrupted"
    return "finished" if run.complete else "incomplete"


def _stopped_at(a: Analysis, c: dict[str, Any]) -> str:
    for r in a.run.of("scenario"):
        if r.get("action") == "stopped" and r.get("scenario") == c.get("scenario") and r.get("check") == c.get("name"):
            return f"stopped the scenario at {units.offset(float(r.get('at') or 0.0))}"
    return ""


def check_label(c: dict[str, Any]) -> str:
    """A check's name where it has its own (``check: name``), else its metric: the limit is shown beside it,
    so ``heap.slope > -200B/h: ... (limit > -200 B/h)`` would say the limit twice."""
    name, metric = str(c.get("name") or ""), str(c.get("metric") or "")
    return metric if not name or (metric and name.replace(" ", "").startswith(metric)) else name


def _limit(c: dict[str, Any]) -> str:
    return f"{c.get('op') or ''} {units.metric_value(c.get('metric'), c.get('expected'))}".strip()


def verdict(a: Analysis) -> Verdict:
    v = Verdict(state="PASS", finished=finished_state(a))
    if a.run.status == "interrupted":
        v.stopped = a.run.status_line()
    for c in a.checks:
        v.checks_total += 1
        if c.get("passed") is None:
            v.checks_unjudged += 1
            scope = f"{c.get('scenario')}: " if c.get("scenario") else ""
            v.unjudged.append(
                Failure("unjudged", f"{scope}{check_label(c)}", "not judged", "", str(c.get("skipped") or ""))
            )
        elif c.get("passed") is False:
            v.checks_failed += 1
            scope = f"{c.get('scenario')}: " if c.get("scenario") else ""
            v.failures.append(
                Failure(
                    "check",
                    f"{scope}{check_label(c)}",
                    units.metric_value(c.get("metric"), c.get("observed")),
                    _limit(c),
                    _stopped_at(a, c),
                )
            )
    for s in a.steps:
        if s.get("status") == "failed":
            v.failures.append(
                Failure(
                    "step",
                    f"{s.get('scenario')}: step {s.get('index')} {s.get('name') or ''}".strip(),
                    str(s.get("observed") or s.get("message") or "failed"),
                    str(s.get("expected") or ""),
                )
            )
    for t in (a.heap, a.battery):
        line = trend_line(t)
        v.trends.append(line)
        if t.verdict in ("leak", "drain"):
            v.failures.append(
                Failure(
                    "trend",
                    f"{t.name} {t.verdict}",
                    units.rate(t.slope_per_hour, t.unit),
                    "",
                    f"reaches {'0' if t.floor == 0 else f'{t.floor:g} {t.unit}'} in {units.duration(t.exhaustion_s)}",
                )
            )
    v.boots = len(a.reboots)
    unexpected = [b for b in a.reboots if not b.expected]
    v.unexpected_boots = len(unexpected)
    if unexpected:
        causes = sorted({b.cause or b.reason for b in unexpected})
        v.failures.append(Failure("reboots", "unexpected reboots", str(len(unexpected)), "0", ", ".join(causes)))
    tests = a.run.results.get("tests", []) or []
    v.tests_total = len(tests)
    v.tests_failed = [str(t.get("test")) for t in tests if t.get("outcome") in FAILED_OUTCOMES]
    v.tests_skipped = sum(1 for t in tests if t.get("outcome") == "skipped")
    if v.tests_failed:
        shown = ", ".join(v.tests_failed[:5]) + (
            f" and {len(v.tests_failed) - 5} more" if len(v.tests_failed) > 5 else ""
        )
        v.failures.append(Failure("tests", "failed tests", f"{len(v.tests_failed)} of {len(tests)}", "", shown))
    if v.failures:
        v.state = "FAIL"
    elif v.finished != "finished":
        v.state = v.finished.upper()
    return v
