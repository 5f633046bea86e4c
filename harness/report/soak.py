"""The soak report: one self-contained HTML page and its PNGs, verdict first.

Top: PASS / FAIL / INCOMPLETE / INTERRUPTED, the failed checks with measured value against the limit, the
trends; then key figures, the time plots with their lanes, and the details (long lists collapsed). Every
figure comes from the run's :class:`Analysis` (and :mod:`harness.report.verdict`,
:mod:`harness.report.runfacts`, which read only it), so the banner and the tables agree.

build_soak(Path("reports/20261123-004512-3fa9"))   # -> soak.html, soak-*.png in the run folder
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.report import html as h
from harness.report import lanes as ln
from harness.report import runfacts as rf
from harness.report import units as u
from harness.report.analysis import Analysis, analyze, metrics
from harness.report.plots import figures
from harness.report.rundata import load_run
from harness.report.trends import CONFIDENCE, confidence_label
from harness.report.verdict import Verdict, verdict

SOAK_HTML = "soak.html"
#: Console shown before each unexpected reboot: this many seconds, at most this many lines.
CONSOLE_BEFORE = 60.0
CONSOLE_LINES = 20
#: Unexpected reboots whose console is shown open; the rest are collapsed.
CONSOLE_SHOWN = 3
STATE_CLASS = {"PASS": "pass", "FAIL": "fail", "INCOMPLETE": "warn", "INTERRUPTED": "warn"}


@dataclass
class SoakReport:
    html: Path
    pngs: list[Path]
    passed: bool
    problems: list[str]
    state: str = ""


def _when(a: Analysis, t: float) -> str:
    return f"{u.offset(t - a.start)} ({time.strftime('%H:%M:%S', time.gmtime(t))}Z)"


def _utc(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(t))


def problems(a: Analysis, v: Verdict | None = None) -> list[str]:
    """Why the run is not green, one line each; empty when it is."""
    v = v or verdict(a)
    out = [f.text for f in v.failures]
    if v.finished == "incomplete":
        out.append("the run did not finish (no exit status in results.json)")
    elif v.finished == "interrupted":
        out.append("the run was interrupted before its end")
    return out


def verdict_block(a: Analysis, v: Verdict) -> str:
    """The top of the page: state word, headline, failures with measured value against the limit, trends."""
    tag = ""
    if v.finished != "finished" and v.state != v.finished.upper():
        tag = f'<span class="tag">{h.e(v.finished.upper())}</span>'
    fails = "".join(
        f'<li class="failure" data-kind="{h.e(f.what)}"><b>{h.e(f.name)}</b>: {h.e(f.observed)}'
        + (f" (limit {h.e(f.limit)})" if f.limit else "")
        + (f" — {h.e(f.detail)}" if f.detail else "")
        + "</li>"
        for f in v.failures
        if f.what != "trend"  # a failed trend is stated once, in the trend lines below, in red
    )
    trends = "".join(
        f'<li class="trend{" bad" if t.verdict in ("leak", "drain") else ""}" data-verdict="{h.e(t.verdict)}">'
        f"{h.e(t.text)}</li>"
        for t in v.trends
    )
    unjudged = "".join(
        f'<li class="unjudged"><b>{h.e(f.name)}</b>: not judged' + (f" — {h.e(f.detail)}" if f.detail else "") + "</li>"
        for f in v.unjudged
    )
    return (
        f'<div id="verdict" class="{STATE_CLASS[v.state]}" data-state="{v.state}">'
        f'<span class="state">{v.state}</span>{tag}<span class="headline">{h.e(v.headline)}</span>'
        + (f'<ul class="failures">{fails}</ul>' if fails else "")
        + (f'<ul class="unjudged">{unjudged}</ul>' if unjudged else "")
        + f'<ul class="trends">{trends}</ul></div>'
    )


def _facts(a: Analysis, v: Verdict, m: dict[str, Any]) -> str:
    committed = sum(1 for o in a.ota if o.outcome == "committed")
    cuts = sum(1 for k in a.markers if k.kind == "power" and k.label == "power cut")
    supply = sum(1 for k in a.markers if k.kind == "power") - cuts
    lost = m.get("telemetry.loss.total") or 0
    return h.facts(
        [
            ("run length", u.duration(a.span)),
            (f"boots, {v.unexpected_boots} unexpected", u.number(v.boots)),
            ("power cuts" + (f", {supply} other supply off" if supply else ""), u.number(cuts)),
            (f"OTA attempts, {committed} committed", u.number(len(a.ota))),
            (f"telemetry received, {u.number(lost)} lost", u.number(m.get("telemetry.received") or 0)),
        ]
    )


def _checks(a: Analysis, v: Verdict) -> str:
    rows = [
        [
            h.cell(c.get("scenario")),
            h.cell(c.get("name")),
            h.cell(f"{c.get('op') or ''} {u.metric_value(c.get('metric'), c.get('expected'))}".strip()),
            h.cell(u.metric_value(c.get("metric"), c.get("observed")), "num"),
            h.status_cell(c.get("passed"))
            if c.get("passed") is not None
            else f'<td class="warn" title="{h.e(c.get("skipped") or "")}">not judged</td>',
        ]
        for c in sorted(a.checks, key=lambda c: (c.get("passed") is not False, c.get("passed") is not None))
    ]  # failed first, then not judged
    for t, line in zip((a.heap, a.battery), v.trends, strict=True):
        bad = t.verdict in ("leak", "drain")
        d = t.as_dict()
        measured = (
            u.plus_minus(d["slope_per_h"], d["ci_low_per_h"], d["ci_high_per_h"], t.unit)
            if line.computable
            else "not computable"
        )
        rows.append(
            [
                h.cell("run"),
                h.cell(f"{t.name} {'leak' if t.name == 'heap' else 'drain'}"),
                h.cell("no downward trend"),
                h.cell(measured, "num"),
                h.status_cell(None if not line.computable else not bad, t.verdict.upper(), t.verdict.upper()),
            ]
        )
    rows.append(
        [
            h.cell("run"),
            h.cell("no unexpected reboots"),
            h.cell("== 0"),
            h.cell(v.unexpected_boots, "num"),
            h.status_cell(v.unexpected_boots == 0),
        ]
    )
    if v.tests_total:
        rows.append(
            [
                h.cell("run"),
                h.cell("tests pass"),
                h.cell("== 0 failed"),
                h.cell(f"{len(v.tests_failed)} of {v.tests_total} failed", "num"),
                h.status_cell(not v.tests_failed),
            ]
        )
    note = "" if a.checks else '<p class="small">No scenario checks were recorded in this run.</p>'
    return note + h.table(["scope", "check", "limit", "measured", "verdict"], rows)


def _lane_list(a: Analysis, all_lanes: list[ln.Lane]) -> str:
    rows = []
    for lane in all_lanes:
        for i in sorted(lane.items, key=lambda i: i.start):
            length = "" if i.end is None else u.duration(i.end - i.start)
            rows.append([h.cell(_when(a, i.start)), h.cell(lane.name), h.cell(i.label), h.cell(length, "num")])
    if not rows:
        return ""
    return h.collapsed(
        f"Every event on the lanes ({u.plural(len(rows), 'event')})", h.table(["when", "lane", "what", "lasted"], rows)
    )


def _time_series(a: Analysis, pngs: dict[str, bytes]) -> str:
    all_lanes = ln.lanes(a)
    png = pngs.get("timeseries.png")
    if png is None:
        return "<p>No telemetry and no events to plot.</p>"
    note = "" if not a.telemetry.empty else "<p>No telemetry received: only the event lanes are drawn.</p>"
    return (
        note
        + h.image(png, "time series: event lanes, heap, battery, RSSI, latency, message rate")
        + '<p class="small">Lanes, top: what ran and what was done to the device. Groups of events too '
        "close to tell apart carry a count (\u00d7N); the full list is below. Data panels are shaded faintly "
        "during partitions and broker outages; red dashed lines are unexpected reboots.</p>" + _lane_list(a, all_lanes)
    )


def _trends(a: Analysis, v: Verdict, pngs: dict[str, bytes]) -> str:
    rows = []
    for t, line in zip((a.heap, a.battery), v.trends, strict=True):
        d = t.as_dict()
        rows.append(
            [
                h.cell(t.name),
                h.cell(t.verdict if line.computable else "not computable"),
                h.cell(u.rate(d["slope_per_h"], t.unit), "num"),
                h.cell(
                    "—"
                    if d["ci_low_per_h"] is None
                    else f"{u.rate(d['ci_low_per_h'], t.unit)} … {u.rate(d['ci_high_per_h'], t.unit)}",
                    "num",
                ),
                h.cell(u.number(d["samples"]), "num"),
                h.cell(u.number(d["segments"]), "num"),
                h.cell(u.duration(t.exhaustion_s) if t.verdict in ("leak", "drain") else "—", "num"),
                h.cell(line.text),
            ]
        )
    table = h.table(
        [
            "resource",
            "verdict",
            "slope",
            f"{confidence_label(CONFIDENCE)} CI",
            "samples",
            "boots",
            "to exhaustion",
            "reading",
        ],
        rows,
    )
    plots = "".join(h.image(pngs[n], n) for n in ("heap-trend.png", "battery-trend.png") if n in pngs)
    return table + plots


def _console_around(a: Analysis) -> str:
    """Where to look: the console just before each unexpected reboot (the first few open)."""
    out = []
    console = a.run.of("console")
    unexpected = [b for b in a.reboots if not b.expected]
    for k, b in enumerate(unexpected):
        lines = [r for r in console if b.t - CONSOLE_BEFORE <= float(r["t"]) <= b.t + 5.0][-CONSOLE_LINES:]
        text = (
            "\n".join(f"{time.strftime('%H:%M:%S', time.gmtime(float(r['t'])))}  {r.get('line', '')}" for r in lines)
            or "(no console lines recorded around it)"
        )
        title = f"Console before the {b.cause or b.reason} reboot at {_when(a, b.t)}"
        if k < CONSOLE_SHOWN:
            out.append(f"<h3>{h.e(title)}</h3><pre>{h.e(text)}</pre>")
        else:
            out.append(h.collapsed(title, f"<pre>{h.e(text)}</pre>"))
    return "".join(out)


def _boots(a: Analysis, images: list[rf.BootImage]) -> str:
    if not a.reboots:
        return "<p>No boots recorded.</p>"
    causes = rf.boot_causes(a)
    summary = h.table(
        ["cause", "", "boots"],
        [[h.cell(c.cause), h.status_cell(c.expected, "expected", "UNEXPECTED"), h.cell(c.count, "num")] for c in causes]
        + [[h.cell("total"), h.cell(""), h.cell(len(a.reboots), "num")]],
    )
    boot_s = [b.seconds for b in a.reboots if b.seconds is not None]
    timing = (
        (
            f"<p>Time to prompt over {u.plural(len(boot_s), 'boot')}: fastest {u.duration(min(boot_s))}, "
            f"slowest {u.duration(max(boot_s))}.</p>"
        )
        if boot_s
        else ""
    )
    rows = [
        [
            h.cell(_when(a, b.t)),
            h.cell(b.device),
            h.cell(b.reason),
            h.status_cell(b.expected, "expected", "UNEXPECTED"),
            h.cell(b.cause),
            h.cell(u.duration(b.seconds), "num"),
        ]
        for b in a.reboots
    ]
    full = h.collapsed(
        f"All {u.plural(len(rows), 'boot')}",
        h.table(["when", "device", "reason", "", "cause", "to prompt"], rows),
        open_=len(rows) <= 8,
    )
    return summary + timing + full + _console_around(a)


def _versions(a: Analysis, images: list[rf.BootImage]) -> str:
    versions = rf.version_times(a, images)
    out = []
    if versions:
        out.append(
            h.collapsed(
                f"{u.plural(len(versions), 'firmware version')}",
                h.table(
                    ["firmware", "boots", "uptime in telemetry"],
                    [
                        [
                            h.cell(v.version),
                            h.cell(v.boots, "num"),
                            h.cell("—" if v.uptime is None else u.duration(v.uptime), "num"),
                        ]
                        for v in versions
                    ],
                ),
                open_=len(versions) <= 8,
            )
        )
    else:
        out.append("<p>No boot banner, boot record or telemetry named a firmware version.</p>")
    moves = rf.transitions(a)
    if moves:
        out.append("<h3>OTA transitions</h3>")
        out.append(
            h.table(
                ["from", "to", "outcome", "attempts"],
                [
                    [
                        h.cell(t.source),
                        h.cell(t.target),
                        h.status_cell(t.outcome == "committed", t.outcome, t.outcome),
                        h.cell(t.count, "num"),
                    ]
                    for t in moves
                ],
            )
        )
    if images:
        rows = [
            [
                h.cell(b.device),
                h.cell(b.boot_id),
                h.cell(b.version),
                h.cell(_when(a, b.first)),
                h.cell(u.duration(b.uptime), "num"),
            ]
            for b in images
        ]
        out.append(
            h.collapsed(
                f"Image of each boot ({u.plural(len(rows), 'boot')} seen in telemetry)",
                h.table(["device", "boot", "firmware", "first message", "uptime"], rows),
            )
        )
    return "".join(out)


def _ota(a: Analysis) -> str:
    if not a.ota:
        return "<p>No OTA updates in this run.</p>"
    by_outcome: dict[str, int] = {}
    for o in a.ota:
        by_outcome[o.outcome] = by_outcome.get(o.outcome, 0) + 1
    line = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(by_outcome.items()))
    rows = []
    for o in a.ota:
        phases = ", ".join(f"{p} +{u.duration(s)}" for p, s in o.phases.items())
        timings = ", ".join(
            f"{k[:-2]} {u.duration(float(v))}" if k.endswith("_s") and isinstance(v, int | float) else f"{k} {v}"
            for k, v in o.timings.items()
        )
        rows.append(
            [
                h.cell(_when(a, o.start)),
                h.cell(o.device),
                h.cell(o.version),
                h.status_cell(o.outcome == "committed", o.outcome, o.outcome),
                h.cell(u.duration(o.duration), "num"),
                h.cell(phases),
                h.cell(timings),
                h.cell(o.reason),
            ]
        )
    return f"<p>{u.plural(len(a.ota), 'attempt')}: {h.e(line)}.</p>" + h.collapsed(
        "Every OTA attempt",
        h.table(["started", "device", "version", "outcome", "duration", "phases", "timings", "reason"], rows),
        open_=len(rows) <= 5,
    )


def _telemetry(a: Analysis, m: dict[str, Any]) -> str:
    acc = a.accounting
    if not acc.devices:
        return "<p>No telemetry received.</p>"
    causes = sorted({c for d in acc.devices.values() for c in d.lost_by_cause})
    rows = [
        [
            h.cell(n),
            h.cell(d.received, "num"),
            h.cell(d.lost, "num"),
            *[h.cell(d.lost_by_cause.get(c, 0), "num") for c in causes],
            h.cell(d.duplicates, "num"),
            h.cell(d.late, "num"),
        ]
        for n, d in sorted(acc.devices.items())
    ]
    lat = ""
    if m.get("telemetry.latency.p50") is not None:
        lat = (
            f"<p>Latency p50 {u.duration(m['telemetry.latency.p50'])}, p95 {u.duration(m['telemetry.latency.p95'])}, "
            f"p99 {u.duration(m['telemetry.latency.p99'])}; {u.number(m.get('telemetry.malformed') or 0)} "
            "malformed.</p>"
        )
    return (
        h.table(["device", "received", "lost", *[f"lost: {c}" for c in causes], "duplicated", "late"], rows)
        + lat
        + '<p class="small">Counted by the collector\'s accounting (harness.services.accounting).</p>'
    )


def _power(a: Analysis) -> str:
    p = a.power
    items: list[tuple[str, Any]] = [
        ("supply actions", ", ".join(f"{k} \u00d7{n}" for k, n in sorted(p["actions"].items())) or "none"),
        ("readings", u.number(p["readings"])),
    ]
    if p["readings"]:
        items += [
            ("current mean", f"{p.get('current_mean_a', 0) * 1000:.3g} mA"),
            ("current max", f"{p.get('current_max_a', 0) * 1000:.3g} mA"),
            ("power mean", "—" if p.get("power_mean_w") is None else f"{p['power_mean_w']:.3g} W"),
            ("energy", "—" if p.get("energy_wh") is None else f"{p['energy_wh']:.3g} Wh"),
        ]
    return h.kv_table(items)


def _tests(a: Analysis, v: Verdict) -> str:
    tests = a.run.results.get("tests", []) or []
    if not tests:
        return "<p>No test outcomes (results.json missing or empty).</p>"
    rows = [
        [
            h.cell(t.get("test")),
            h.status_cell(t.get("outcome") in ("passed", "skipped"), t.get("outcome", ""), t.get("outcome", "")),
            h.cell(u.duration(t.get("duration")), "num"),
        ]
        for t in tests
    ]
    counts: dict[str, int] = {}
    for t in tests:
        counts[str(t.get("outcome"))] = counts.get(str(t.get("outcome")), 0) + 1
    line = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    return f"<p>{u.plural(len(tests), 'test')}: {h.e(line)}.</p>" + h.collapsed(
        "Every test", h.table(["test", "outcome", "duration"], rows), open_=bool(v.tests_failed) and len(rows) <= 20
    )


def _steps(a: Analysis) -> str:
    if not a.steps:
        return "<p>No scenario steps recorded.</p>"
    rows = [
        [
            h.cell(s.get("scenario")),
            h.cell(s.get("index")),
            h.cell(s.get("name")),
            h.status_cell(s.get("status") == "passed", "passed", "failed"),
            h.cell(u.duration(s.get("duration")), "num"),
            h.cell(s.get("observed")),
            h.cell(s.get("expected")),
        ]
        for s in a.steps
    ]
    failed = sum(1 for s in a.steps if s.get("status") == "failed")
    return h.collapsed(
        f"{u.plural(len(rows), 'step')}, {failed} failed",
        h.table(["scenario", "step", "name", "status", "duration", "observed", "expected"], rows),
        open_=failed > 0,
    )


def render(a: Analysis, pngs: dict[str, bytes], v: Verdict | None = None) -> str:
    """The page, verdict first."""
    v = v or verdict(a)
    run = a.run
    m = metrics(a)
    images = rf.boot_images(a)
    meta = (
        f"rig <b>{h.e(run.rig or 'unknown')}</b> · started {h.e(_utc(a.start))} · {h.e(u.duration(a.span))}"
        f" · firmware {h.e(rf.versions_line(a))} · {len(run.records):,} journal records"
    )
    body = (
        f"<h1>Soak report — {h.e(run.run_id)}</h1><div class=meta>{meta}</div>"
        + verdict_block(a, v)
        + _facts(a, v, m)
        + f"<h2>Checks</h2>{_checks(a, v)}"
        f"<h2>Time series</h2>{_time_series(a, pngs)}"
        f"<h2>Leak and drain trends</h2>{_trends(a, v, pngs)}"
        f"<h2>Boots and reboots</h2>{_boots(a, images)}"
        f"<h2>Firmware versions</h2>{_versions(a, images)}"
        f"<h2>OTA</h2>{_ota(a)}"
        f"<h2>Telemetry accounting</h2>{_telemetry(a, m)}"
        f"<h2>Power draw</h2>{_power(a)}"
        f"<h2>Tests</h2>{_tests(a, v)}"
        f"<h2>Scenario steps</h2>{_steps(a)}"
        f'<p class="small">Built {_utc(time.time())} from {h.e(run.folder.name)}'
        "/journal*.jsonl and results.json only.</p>"
    )
    return h.page(f"{v.state} · soak {run.run_id}", body)


def build_soak(folder: Path, out: Path | None = None, *, analysis: Analysis | None = None) -> SoakReport:
    """Write ``soak.html`` and ``soak-<figure>.png`` into ``out`` (default: the run folder)."""
    a = analysis or analyze(load_run(folder))
    out = out or a.run.folder
    out.mkdir(parents=True, exist_ok=True)
    pngs = figures(a)
    paths = []
    for name, png in pngs.items():
        path = out / f"soak-{name}"
        path.write_bytes(png)
        paths.append(path)
    v = verdict(a)
    html_path = out / SOAK_HTML
    html_path.write_text(render(a, pngs, v), encoding="utf-8")
    return SoakReport(html_path, paths, v.passed, problems(a, v), v.state)
