"""A :class:`Comparison` as Markdown short enough for a pull request, and as a self-contained HTML page."""

from __future__ import annotations

import re
import time

from harness.report import html as h
from harness.report import units as u
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
            f"> Warning: the {' and the '.join(cmp.incomplete)} did not finish; numbers cover what was recorded.",
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
        + (f", within noise {noise}" if (noise := sum(d.within_noise for d in cmp.deltas)) else "")
    )
    if cmp.flaky:
        lines += ["", f"Flaky: {_listed(cmp.flaky)}"]
    if cmp.still_failing:
        lines += ["", f"Still failing: {_listed(cmp.still_failing)}"]
    return "\n".join(lines) + "\n"


def _value(d: MetricDelta, value: float) -> str:
    """A metric's value on the page, in the metric's unit (``-0 B/h`` would mislead: ``-0.1 B/h``)."""
    return u.metric_value(d.metric, value)


def _delta(d: MetricDelta) -> str:
    """The change with its sign, and the relative change only where the baseline is not ~0 and the change
    not below 1% (``0 ms``, not ``-0 ms (-0%)``)."""
    kind = u.kind_of(d.metric)
    if kind in ("bytes_per_h", "volts_per_h"):
        text = u.rate(d.delta, "B" if kind == "bytes_per_h" else "V")
    else:
        size = _value(d, abs(d.delta))
        zero = re.fullmatch(r"[0.,]+(\s.*)?", size) is not None
        text = size if zero else ("+" if d.delta >= 0 else u.MINUS) + size
    if d.relative is not None and abs(d.baseline) > d.allowance and abs(d.relative) >= 0.01:
        text += f" ({d.relative * 100:+.0f}%)".replace("-", u.MINUS)
    return text


def _rule(d: MetricDelta) -> str:
    """When a change is a regression, short enough for one line: ``higher by > 100 ms or 20%``."""
    tol = d.tolerance
    kind = u.kind_of(d.metric)
    parts = []
    if tol.absolute:
        if kind in ("bytes_per_h", "volts_per_h"):
            parts.append(u.rate(tol.absolute, "B" if kind == "bytes_per_h" else "V").lstrip("+"))
        else:
            parts.append(_value(d, tol.absolute))
    if tol.relative:
        parts.append(f"{tol.relative * 100:g}%")
    if not parts:
        return "any increase" if tol.worse == "higher" else "any decrease"
    return f"{tol.worse} by > {' or '.join(parts)}"


def _with_interval(d: MetricDelta, value: float, ci: tuple[float, float] | None) -> str:
    """The value, and for a fitted metric its 99.9% interval: ``-11.52 mV/h (-52.70 … +29.94)``."""
    if ci is None:
        return _value(d, value)
    kind = u.kind_of(d.metric)
    if kind not in ("bytes_per_h", "volts_per_h"):
        return f"{_value(d, value)} ({_value(d, ci[0])} … {_value(d, ci[1])})"
    unit = "B" if kind == "bytes_per_h" else "V"
    bounds = " … ".join(u.rate(x, unit).rsplit(" ", 1)[0] for x in ci)
    return f"{u.rate(value, unit)} ({bounds})"


def _status(d: MetricDelta) -> str:
    if d.regressed:
        return '<td class="fail">REGRESSED</td>'
    if d.improved:
        return '<td class="pass">improved</td>'
    if d.within_noise:
        return (
            '<td class="pass nowrap" title="the 99.9% intervals overlap once the allowance is added">'
            "within noise</td>"
        )
    return '<td class="pass">within</td>'


def _allowed(d: MetricDelta) -> str:
    kind = u.kind_of(d.metric)
    if kind in ("bytes_per_h", "volts_per_h"):
        return u.rate(d.allowance, "B" if kind == "bytes_per_h" else "V").lstrip("+")
    return _value(d, d.allowance)


def _test_section(title: str, tests: list[str], cls: str, label: str, *, open_: bool = True) -> str:
    if not tests:
        return ""
    rows = [[h.cell(t), f'<td class="{cls}">{h.e(label)}</td>'] for t in tests]
    body = h.table(["test", ""], rows)
    if len(tests) > MAX_LISTED or not open_:
        body = h.collapsed(f"{len(tests)} tests", body, open_=open_ and len(tests) <= MAX_LISTED)
    return f"<h2>{h.e(title)} ({len(tests)})</h2>" + body


def _empty_sections(cmp: Comparison) -> str:
    lists = (("New failures", cmp.new_failures), ("Flaky", cmp.flaky), ("Still failing", cmp.still_failing),
             ("Fixed", cmp.fixed), ("Not run", cmp.not_run))  # fmt: skip
    empty = [name for name, tests in lists if not tests]
    return f'<p class="small">None: {h.e(", ".join(empty))}.</p>' if empty else ""


def state(cmp: Comparison) -> str:
    """``REGRESSION`` (any finding), ``INCOMPLETE`` (none, but a side did not finish) or ``PASS``."""
    if cmp.regressed:
        return "REGRESSION"
    return "INCOMPLETE" if cmp.incomplete else "PASS"


def _regression_line(d: MetricDelta) -> str:
    return (
        f"<b>{h.e(d.metric)}</b>: {h.e(_with_interval(d, d.baseline, d.baseline_ci))} → "
        f"{h.e(_with_interval(d, d.current, d.current_ci))} ({h.e(_delta(d))}; allowed {h.e(_allowed(d))})"
    )


def verdict_block(cmp: Comparison) -> str:
    """State word, one line of counts, then every finding: the new failures and the metrics beyond tolerance."""
    st = state(cmp)
    cls = {"REGRESSION": "fail", "INCOMPLETE": "warn", "PASS": "pass"}[st]
    tag = ""
    if cmp.incomplete and st != "INCOMPLETE":
        tag = '<span class="tag">INCOMPLETE</span>'
    headline = (
        f"{u.plural(len(cmp.new_failures), 'new failure')}, {u.plural(len(cmp.regressions), 'metric')} beyond "
        f"tolerance; {len(cmp.fixed)} fixed, {len(cmp.flaky)} flaky, {len(cmp.still_failing)} still failing; "
        f"{u.plural(len(cmp.deltas), 'metric')} compared"
        + (f" ({noise} within noise)" if (noise := sum(d.within_noise for d in cmp.deltas)) else "")
    )
    if cmp.incomplete:
        headline += f"; the {' and the '.join(cmp.incomplete)} did not finish: compared what was recorded"
    items = [f'<li class="failure" data-kind="new-failure"><b>new failure</b>: {h.e(t)}</li>'
             for t in cmp.new_failures[:MAX_LISTED]]  # fmt: skip
    if len(cmp.new_failures) > MAX_LISTED:
        items.append(f"<li>and {len(cmp.new_failures) - MAX_LISTED} more new failures (listed below)</li>")
    items += [f'<li class="failure" data-kind="metric">{_regression_line(d)}</li>' for d in cmp.regressions]
    listed = f'<ul class="failures">{"".join(items)}</ul>' if items else ""
    return (
        f'<div id="verdict" class="{cls}" data-state="{st}"><span class="state">{st}</span>{tag}'
        f'<span class="headline">{h.e(headline)}</span>{listed}</div>'
    )


def html(cmp: Comparison) -> str:
    """The full page: verdict, findings, every compared metric, then the test lists."""
    rows = []
    for d in sorted(cmp.deltas, key=lambda d: (not d.regressed, d.metric)):
        rows.append(
            [
                h.cell(d.metric),
                h.cell(_with_interval(d, d.baseline, d.baseline_ci), "num"),
                h.cell(_with_interval(d, d.current, d.current_ci), "num"),
                h.cell(_delta(d), "num"),
                h.cell(_rule(d)),
                _status(d),
            ]
        )
    metrics = (
        h.table(["metric", "baseline", "now", "change", "regression if", ""], rows)
        if rows
        else "<p>No metric with a tolerance has a value in both runs.</p>"
    )
    if any(d.judged_by_interval for d in cmp.deltas):
        metrics += (
            '<p class="small">Trend slopes show their 99.9% confidence interval in brackets; one regresses only '
            "when now's interval lies beyond the baseline's by more than the allowance. <i>within noise</i>: the "
            "estimates moved more than that, but the intervals overlap.</p>"
        )
    if cmp.missing_metrics:
        metrics += f'<p class="small">Present in only one of the runs: {h.e(", ".join(cmp.missing_metrics))}.</p>'
    body = (
        f"<h1>Regression compare — {h.e(cmp.run)}</h1>"
        f'<div class="meta">against baseline <b>{h.e(cmp.baseline)}</b> · built '
        f"{time.strftime('%Y-%m-%d %H:%M:%SZ', time.gmtime())}</div>{verdict_block(cmp)}"
        + _test_section("New failures", cmp.new_failures, "fail", "new failure")
        + f"<h2>Metrics</h2>{metrics}"
        + _test_section("Flaky", cmp.flaky, "warn", "flaky")
        + _test_section("Still failing", cmp.still_failing, "fail", "still failing")
        + _test_section("Fixed", cmp.fixed, "pass", "fixed")
        + _test_section("Not run (in the baseline only)", cmp.not_run, "warn", "not run", open_=False)
        + _empty_sections(cmp)
    )
    return h.page(f"{state(cmp)} · compare {cmp.run} vs {cmp.baseline}", body)
