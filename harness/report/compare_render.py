"""A :class:`Comparison` as Markdown short enough for a pull request, and as a self-contained HTML page."""

from __future__ import annotations

import time

from harness.report import html as h
from harness.report.compare import Comparison, MetricDelta
from harness.report.tolerances import show

MAX_LISTED = 10


def _listed(tests: list[str]) -> str:
    shown = ", ".join(f"`{t}`" for t in tests[:MAX_LISTED])
    return shown + (f" and {len(tests) - MAX_LISTED} more" if len(tests) > MAX_LISTED else "")


def _change(d: MetricDelta) -> str:
    kind = d.tolerance.kind
    rel = "" if d.relative is None else f" ({d.relative * 100:+.0f}%)"
    return f"{'+' if d.delta >= 0 else '-'}{show(abs(d.delta), kind)}{rel}"


def markdown(cmp: Comparison) -> str:
    """Headline, new failures, metric regressions, then one line of counts: paste-able into a PR."""
    head = f"REGRESSION: {len(cmp.findings)} finding(s)" if cmp.regressed else "no regression"
    lines = [f"### Harness compare: `{cmp.run}` vs baseline `{cmp.baseline}`: {head}", ""]
    if cmp.incomplete:
        lines += [
            f"> Warning: the {' and the '.join(cmp.incomplete)} did not finish; numbers cover what was "
            "recorded.",
            "",
        ]
    if cmp.new_failures:
        lines += [f"**New failures ({len(cmp.new_failures)})**: {_listed(cmp.new_failures)}", ""]
    if cmp.regressions:
        lines += [
            f"**Metrics beyond tolerance ({len(cmp.regressions)})**",
            "",
            "| metric | baseline | now | change | allowed |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| `{d.metric}` | {show(d.baseline, d.tolerance.kind)} | {show(d.current, d.tolerance.kind)} | "
            f"{_change(d)} | {show(d.allowance, d.tolerance.kind)} |"
            for d in cmp.regressions
        ]
        lines.append("")
    lines.append(
        f"Fixed {len(cmp.fixed)} · still failing {len(cmp.still_failing)} · flaky {len(cmp.flaky)} · "
        f"metrics compared {len(cmp.deltas)}, improved {sum(d.improved for d in cmp.deltas)}"
    )
    if cmp.flaky:
        lines += ["", f"Flaky: {_listed(cmp.flaky)}"]
    if cmp.still_failing:
        lines += ["", f"Still failing: {_listed(cmp.still_failing)}"]
    return "\n".join(lines) + "\n"


def _test_section(title: str, tests: list[str], cls: str, label: str) -> str:
    if not tests:
        return f"<h2>{h.e(title)} (0)</h2><p>None.</p>"
    rows = [[h.cell(t), f'<td class="{cls}">{h.e(label)}</td>'] for t in tests]
    return f"<h2>{h.e(title)} ({len(tests)})</h2>" + h.table(["test", ""], rows)


def html(cmp: Comparison) -> str:
    """The full page: verdict, findings, every compared metric, then the test lists."""
    top = (
        h.banner(f"REGRESSION — {len(cmp.findings)} finding(s): " + "; ".join(cmp.findings), "fail")
        if cmp.regressed
        else h.banner("No regression against the baseline.", "pass")
    )
    if cmp.incomplete:
        top += h.banner(
            f"The {' and the '.join(cmp.incomplete)} did not finish; compared what was recorded.", "warn"
        )
    rows = []
    for d in sorted(cmp.deltas, key=lambda d: (not d.regressed, d.metric)):
        kind = d.tolerance.kind
        status = (
            '<td class="fail">REGRESSED</td>'
            if d.regressed
            else '<td class="pass">improved</td>'
            if d.improved
            else '<td class="pass">within</td>'
        )
        rows.append(
            [
                h.cell(d.metric),
                h.cell(show(d.baseline, kind), "num"),
                h.cell(show(d.current, kind), "num"),
                h.cell(_change(d), "num"),
                h.cell(d.tolerance.describe()),
                status,
            ]
        )
    metrics = (
        h.table(["metric", "baseline", "now", "change", "tolerance", ""], rows)
        if rows
        else "<p>No metric with a tolerance has a value in both runs.</p>"
    )
    if cmp.missing_metrics:
        metrics += (
            f'<p class="small">Present in only one of the runs: {h.e(", ".join(cmp.missing_metrics))}.</p>'
        )
    body = (
        f"<h1>Regression compare — {h.e(cmp.run)}</h1>"
        f'<div class="meta">against baseline <b>{h.e(cmp.baseline)}</b> · built '
        f"{time.strftime('%Y-%m-%d %H:%M:%SZ', time.gmtime())}</div>{top}"
        + _test_section("New failures", cmp.new_failures, "fail", "new failure")
        + f"<h2>Metrics</h2>{metrics}"
        + _test_section("Flaky", cmp.flaky, "warn", "flaky")
        + _test_section("Still failing", cmp.still_failing, "fail", "still failing")
        + _test_section("Fixed", cmp.fixed, "pass", "fixed")
        + _test_section("Not run (in the baseline only)", cmp.not_run, "warn", "not run")
    )
    return h.page(f"Compare {cmp.run} vs {cmp.baseline}", body)
