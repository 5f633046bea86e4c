"""The soak report: one self-contained HTML page (verdicts first, then plots, then details) and its PNGs.

build_soak(Path("reports/20261123-004512-3fa9"))   # -> soak.html, soak-*.png in the run folder
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.report import html as h
from harness.report.analysis import Analysis, analyze, firmware_versions
from harness.report.plots import figures
from harness.report.rundata import load_run
from harness.report.trends import CONFIDENCE, confidence_label

SOAK_HTML = "soak.html"
#: Console shown before each unexpected reboot: this many seconds, at most this many lines.
CONSOLE_BEFORE = 60.0
CONSOLE_LINES = 20


@dataclass
class SoakReport:
    html: Path
    pngs: list[Path]
    passed: bool
    problems: list[str]


def _when(a: Analysis, t: float) -> str:
    return f"+{(t - a.start) / 3600:.2f} h ({time.strftime('%H:%M:%S', time.gmtime(t))}Z)"


def _utc(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(t))


def _expected(c: dict[str, Any]) -> str:
    return f"{c.get('op') or ''} {h.fmt(c.get('expected'))}".strip()


def problems(a: Analysis) -> list[str]:
    """Why the run is not green, one line each; empty when it is."""
    out = [
        f"check failed: {c.get('name')} (observed {h.fmt(c.get('observed'))}, expected {_expected(c)})"
        for c in a.checks
        if c.get("passed") is False
    ]
    for trend in (a.heap, a.battery):
        if trend.verdict in ("leak", "drain"):
            out.append(trend.text)
    unexpected = [b for b in a.reboots if not b.expected]
    if unexpected:
        out.append(
            f"{len(unexpected)} unexpected reboot(s): " + ", ".join(sorted({b.reason for b in unexpected}))
        )
    failed = [t for t in a.run.results.get("tests", []) if t.get("outcome") in ("failed", "error")]
    if failed:
        out.append(f"{len(failed)} test(s) failed")
    if a.run.status == "interrupted":
        out.append(a.run.status_line())
    elif not a.run.complete:
        out.append("the run did not finish (no exit status in results.json)")
    return out


def _verdicts(a: Analysis) -> str:
    rows = [
        [
            h.cell(c.get("scenario")),
            h.cell(c.get("name")),
            h.cell(c.get("metric")),
            h.cell(_expected(c)),
            h.cell(h.fmt(c.get("observed"))),
            h.status_cell(c.get("passed")),
        ]
        for c in a.checks
    ]
    for trend, metric in ((a.heap, "heap.slope"), (a.battery, "battery.slope")):
        bad = trend.verdict in ("leak", "drain")
        ok = None if trend.verdict == "unknown" else not bad
        rows.append(
            [
                h.cell("trend"),
                h.cell(f"{trend.name} {'leak' if trend.name == 'heap' else 'drain'}"),
                h.cell(metric),
                h.cell("no real downward trend"),
                h.cell(trend.text),
                h.status_cell(
                    ok, "FLAT" if trend.verdict == "flat" else trend.verdict.upper(), trend.verdict.upper()
                ),
            ]
        )
    unexpected = sum(1 for b in a.reboots if not b.expected)
    rows.append(
        [
            h.cell("run"),
            h.cell("no unexpected reboots"),
            h.cell("reboots.unexpected"),
            h.cell("== 0"),
            h.cell(unexpected),
            h.status_cell(unexpected == 0),
        ]
    )
    tests = a.run.results.get("tests", [])
    if tests:
        failed = sum(1 for t in tests if t.get("outcome") in ("failed", "error"))
        rows.append(
            [
                h.cell("run"),
                h.cell("tests pass"),
                h.cell("tests.failed"),
                h.cell("== 0"),
                h.cell(f"{failed} of {len(tests)}"),
                h.status_cell(failed == 0),
            ]
        )
    note = "" if a.checks else '<p class="small">No scenario checks were recorded in this run.</p>'
    return note + h.table(["scope", "check", "metric", "expected", "observed", "verdict"], rows)


def _trends(a: Analysis) -> str:
    rows = []
    for t in (a.heap, a.battery):
        d = t.as_dict()
        rows.append(
            [
                h.cell(t.name),
                h.cell(t.verdict),
                h.cell(h.fmt(d["slope_per_h"], f"{t.unit}/h", 4), "num"),
                h.cell(f"{h.fmt(d['ci_low_per_h'], '', 4)} … {h.fmt(d['ci_high_per_h'], '', 4)}", "num"),
                h.cell(d["samples"], "num"),
                h.cell(d["segments"], "num"),
                h.cell(h.fmt(d["exhaustion_days"], "days", 3), "num"),
                h.cell(t.text),
            ]
        )
    return h.table(
        ["resource", "verdict", "slope", f"{confidence_label(CONFIDENCE)} CI", "samples", "boots", "to exhaustion",
         "reading"],
        rows,
    )


def _reboots(a: Analysis) -> str:
    if not a.reboots:
        return "<p>No boots recorded.</p>"
    rows = [
        [
            h.cell(_when(a, b.t)),
            h.cell(b.device),
            h.cell(b.reason),
            h.status_cell(b.expected, "expected", "UNEXPECTED"),
            h.cell(b.cause),
            h.cell(h.fmt(b.seconds, "s"), "num"),
        ]
        for b in a.reboots
    ]
    exp = sum(1 for b in a.reboots if b.expected)
    return (
        f"<p>{len(a.reboots)} boots: {exp} expected, {len(a.reboots) - exp} unexpected.</p>"
        + h.table(["when", "device", "reason", "", "cause", "to prompt"], rows)
        + _console_around(a)
    )


def _console_around(a: Analysis) -> str:
    """Where to look: the console just before each unexpected reboot."""
    out = []
    console = a.run.of("console")
    for b in (b for b in a.reboots if not b.expected):
        lines = [r for r in console if b.t - CONSOLE_BEFORE <= float(r["t"]) <= b.t + 5.0][-CONSOLE_LINES:]
        text = (
            "\n".join(
                f"{time.strftime('%H:%M:%S', time.gmtime(float(r['t'])))}  {r.get('line', '')}" for r in lines
            )
            or "(no console lines recorded around it)"
        )
        out.append(
            f"<p><b>Console before the {h.e(b.reason)} reboot at {h.e(_when(a, b.t))}</b></p>"
            f"<pre>{h.e(text)}</pre>"
        )
    return "".join(out)


def _telemetry(a: Analysis) -> str:
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
    src = "the collector's accounting (harness.services.accounting)"
    lat = a.telemetry["latency"].dropna()
    extra = (
        ""
        if lat.empty
        else (
            f"<p>Latency p50 {lat.quantile(0.5) * 1000:.0f} ms, p99 "
            f"{lat.quantile(0.99) * 1000:.0f} ms, max {lat.max() * 1000:.0f} ms; "
            f"{len(a.run.of('telemetry.malformed'))} malformed.</p>"
        )
    )
    return (
        h.table(["device", "received", "lost", *[f"lost: {c}" for c in causes], "duplicated", "late"], rows)
        + extra
        + f'<p class="small">Counted from {src}.</p>'
    )


def _ota(a: Analysis) -> str:
    if not a.ota:
        return "<p>No OTA updates in this run.</p>"
    rows = []
    for o in a.ota:
        phases = ", ".join(f"{p} +{s:g}s" for p, s in o.phases.items())
        timings = ", ".join(f"{k} {v}" for k, v in o.timings.items())
        rows.append(
            [
                h.cell(_when(a, o.start)),
                h.cell(o.device),
                h.cell(o.version),
                h.status_cell(o.outcome == "committed", o.outcome, o.outcome),
                h.cell(h.fmt(o.duration, "s"), "num"),
                h.cell(phases),
                h.cell(timings),
                h.cell(o.reason),
            ]
        )
    return h.table(
        ["started", "device", "version", "outcome", "duration", "phases", "timings", "reason"], rows
    )


def _power(a: Analysis) -> str:
    p = a.power
    items: list[tuple[str, Any]] = [
        ("supply actions", ", ".join(f"{k} x{n}" for k, n in sorted(p["actions"].items())) or "none"),
        ("readings", p["readings"]),
    ]
    if p["readings"]:
        items += [
            ("current mean", h.fmt(p.get("current_mean_a", 0) * 1000, "mA")),
            ("current max", h.fmt(p.get("current_max_a", 0) * 1000, "mA")),
            ("power mean", h.fmt(p.get("power_mean_w"), "W")),
            ("energy", h.fmt(p.get("energy_wh"), "Wh")),
        ]
    return h.kv_table(items)


def _tests(a: Analysis) -> str:
    tests = a.run.results.get("tests", [])
    if not tests:
        return "<p>No test outcomes (results.json missing or empty).</p>"
    rows = [
        [
            h.cell(t.get("test")),
            h.status_cell(
                t.get("outcome") in ("passed", "skipped"), t.get("outcome", ""), t.get("outcome", "")
            ),
            h.cell(h.fmt(t.get("duration"), "s"), "num"),
        ]
        for t in tests
    ]
    return h.table(["test", "outcome", "duration"], rows)


def _steps(a: Analysis) -> str:
    if not a.steps:
        return "<p>No scenario steps recorded.</p>"
    rows = [
        [
            h.cell(s.get("scenario")),
            h.cell(s.get("index")),
            h.cell(s.get("name")),
            h.status_cell(s.get("status") == "passed", "passed", "failed"),
            h.cell(h.fmt(s.get("duration"), "s")),
            h.cell(s.get("observed")),
            h.cell(s.get("expected")),
        ]
        for s in a.steps
    ]
    return h.table(["scenario", "step", "name", "status", "duration", "observed", "expected"], rows)


def render(a: Analysis, pngs: dict[str, bytes]) -> str:
    """The page, verdicts first."""
    run = a.run
    found = problems(a)
    fw = "; ".join(f"{d or 'device'}: {' → '.join(v)}" for d, v in firmware_versions(a).items()) or "unknown"
    meta = (
        f"rig <b>{h.e(run.rig or 'unknown')}</b> · started {h.e(_utc(a.start))}"
        f" · {a.span / 3600:.2f} h · firmware {h.e(fw)} · {len(run.records):,} journal records"
    )
    if run.status == "interrupted":
        top = h.banner(run.status_line(), "warn")
    elif not run.complete:
        top = h.banner(
            "INCOMPLETE RUN — the run did not finish; this report is built from the journal as far "
            "as it was written.",
            "warn",
        )
    else:
        top = ""
    top += (
        h.banner("PASS — every check passed, no leak or drain, no unexpected reboot.", "pass")
        if not found
        else h.banner("ATTENTION — " + "; ".join(found), "fail")
    )
    plots = "".join(h.image(png, name) for name, png in pngs.items()) or "<p>No telemetry to plot.</p>"
    legend = (
        '<p class="small">Shaded: red partition, orange profile change, yellow other impairment, '
        "purple broker "
        "outage. Lines: blue power cut, green OTA, brown dashed reboot; red when unexpected or failed.</p>"
    )
    body = (
        f"<h1>Soak report — {h.e(run.run_id)}</h1><div class=meta>{meta}</div>{top}"
        f"<h2>Verdicts</h2>{_verdicts(a)}"
        f"<h2>Time series</h2>{legend}{plots}"
        f"<h2>Leak and drain trends</h2>{_trends(a)}"
        f"<h2>Reboots</h2>{_reboots(a)}"
        f"<h2>Telemetry accounting</h2>{_telemetry(a)}"
        f"<h2>OTA</h2>{_ota(a)}"
        f"<h2>Power draw</h2>{_power(a)}"
        f"<h2>Tests</h2>{_tests(a)}"
        f"<h2>Scenario steps</h2>{_steps(a)}"
        f'<p class="small">Built {_utc(time.time())} from {h.e(run.folder.name)}'
        "/journal*.jsonl and results.json only.</p>"
    )
    return h.page(f"Soak {run.run_id}", body)


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
    html_path = out / SOAK_HTML
    html_path.write_text(render(a, pngs), encoding="utf-8")
    found = problems(a)
    return SoakReport(html_path, paths, not found, found)
