"""A short Markdown summary of a run folder: every figure from the run's :class:`Analysis` (the same one
the soak page and results.json show), every value through :func:`harness.report.figures.format_metric`."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from harness.report.analysis import Analysis, analyze
from harness.report.figures import boots_by_cause, format_kind, format_metric, plural
from harness.report.rundata import load_run
from harness.report.runfacts import transitions, version_times
from harness.units import format_seconds


def load_results(folder: Path) -> dict[str, Any]:
    path = folder / "results.json"
    if not path.is_file():
        return {}
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def summarize(folder: Path, analysis: Analysis | None = None) -> str:
    """Markdown: verdict, failed checks and tests, trends, boots by cause, versions, telemetry, power,
    rig health and the journal's record counts. ``analysis`` saves analysing ``folder`` again."""
    a = analysis if analysis is not None else analyze(load_run(folder))
    results = a.run.results or load_results(folder)
    f = a.figures
    lines = [f"# Run {results.get('run_id', a.run.run_id)}", ""]
    rig = results.get("rig", {})
    if isinstance(rig, dict) and rig:
        source = f" ({rig['source']})" if rig.get("source") else ""
        lines.append(f"Rig: **{rig.get('name')}**{source}, capabilities: "
                     f"{', '.join(rig.get('capabilities', [])) or 'none'}")  # fmt: skip
    counts = results.get("counts", {})
    if counts:
        lines.append("Outcome: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
    if a.run.status == "interrupted":
        lines.append(a.run.status_line() + ".")
    elif results.get("exit_status") is None:
        lines.append("The run did not finish (no exit status); this summary is built from the journal alone.")
    lines.append(f"Length: {format_seconds(a.span)}")
    lines.append("")
    lines += _checks(a)
    trends = [t.text for t in (a.heap, a.battery)]
    lines += ["## Trends", ""] + [f"- {t}" for t in trends] + [""]
    failed = [t for t in results.get("tests", []) if t.get("outcome") in {"failed", "error"}]
    if failed:
        lines += ["## Failed tests", ""]
        for t in failed:
            lines.append(f"- `{t['test']}` ({t['outcome']}, {format_seconds(float(t.get('duration') or 0.0))})")
        lines.append("")
    lines += _boots(a, f)
    lines += _versions(a)
    lines += _telemetry(a, f)
    lines += _power(a, f)
    health = results.get("health", [])
    if health:
        lines += ["## Rig health", ""] + [f"- before `{h['test']}`: {h['message']}" for h in health] + [""]
    kinds = Counter(str(r.get("kind")) for r in a.run.records)
    lines += [
        "## Journal",
        "",
        f"{plural(len(a.run.records), 'record')}: " + ", ".join(f"{n} {k}" for k, n in kinds.most_common()),
        "",
    ]
    return "\n".join(lines)


def _checks(a: Analysis) -> list[str]:
    if not a.checks:
        return []
    failed = [c for c in a.checks if c.get("passed") is False]
    skipped = [c for c in a.checks if c.get("skipped")]
    head = f"## Checks: {len(a.checks) - len(failed) - len(skipped)} passed, {len(failed)} failed"
    head += f", {len(skipped)} not judged" if skipped else ""
    out = [head, ""]
    for c in failed:
        out.append(f"- FAIL `{c.get('name')}`: {_value(c, 'observed')}, expected {c.get('op')} {_value(c, 'expected')}")
    for c in skipped:
        out.append(f"- not judged `{c.get('name')}`: {c.get('skipped')}")
    return [*out, ""]


def _value(check: dict[str, Any], key: str) -> str:
    value = check.get(key)
    if value is None:
        return "no data"
    return format_metric(str(check.get("metric") or ""), value) if isinstance(value, int | float) else str(value)


def _telemetry(a: Analysis, f: dict[str, Any]) -> list[str]:
    c = a.counts
    lost = {k.split(".")[-1]: v for k, v in f.items()
            if k.startswith("telemetry.loss.") and k != "telemetry.loss.total"}  # fmt: skip
    causes = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in lost.items() if v)
    text = (f"{plural(c['telemetry.received'], 'message')} received "
            f"({plural(c['telemetry.duplicates'], 'duplicate')}); {plural(c['telemetry.samples'], 'sample')}, "
            f"{c['telemetry.trend_samples']:,} in the trend window; lost "
            f"{format_metric('telemetry.loss.total', f.get('telemetry.loss.total'))}"
            + (f" ({causes})" if causes else "")
            + f"; latency p50 {format_metric('telemetry.latency.p50', f.get('telemetry.latency.p50'))}, "
            f"p99 {format_metric('telemetry.latency.p99', f.get('telemetry.latency.p99'))}")  # fmt: skip
    return ["## Telemetry", "", text, ""]


def _boots(a: Analysis, f: dict[str, Any]) -> list[str]:
    c = a.counts
    if not c["boots"]:
        return ["## Boots", "", "No boot seen (no boot record, boot banner or boot_id change in the journal).", ""]
    text = f"{plural(c['boots'], 'boot')}: {boots_by_cause(a.boots_by_cause)}; {c['boots.unexpected']:,} unexpected"
    if f.get("boot.time.p50") is not None:
        p50, p95, top = (format_kind("duration", f[k]) for k in ("boot.time.p50", "boot.time.p95", "boot.time.max"))
        text += f"; time to prompt p50 {p50}, p95 {p95}, max {top}"
    out = ["## Boots", "", text]
    unexpected = [b for b in a.reboots if not b.expected]
    for b in unexpected[:10]:
        out.append(f"- unexpected {b.cause} at {format_seconds(b.t - a.start)} ({b.device or 'device'})")
    if len(unexpected) > 10:
        out.append(f"- … and {len(unexpected) - 10} more (results.json `reboots`)")
    return [*out, ""]


#: Rows of each list in summary.md's Versions section; the rest are counted (soak.html and results.json
#: hold them all).
VERSION_ROWS = 8


def _versions(a: Analysis) -> list[str]:
    """Each version once, with its boots; each OTA transition once, counted (the soak page's figures:
    :mod:`harness.report.runfacts`); the longest lists cut at :data:`VERSION_ROWS` with what was left out."""
    versions, moves = version_times(a), transitions(a)
    if not versions and not moves:
        return []
    out = ["## Versions", ""]
    if len(versions) > VERSION_ROWS or len(moves) > VERSION_ROWS:
        out += [f"{plural(len(versions), 'firmware version')} ran; "
                f"{plural(sum(t.count for t in moves), 'OTA attempt')} in "
                f"{plural(len(moves), 'distinct transition')}.", ""]  # fmt: skip
    for v in versions[:VERSION_ROWS]:
        out.append(f"- {v.version}: {plural(v.boots, 'boot')}")
    if len(versions) > VERSION_ROWS:
        out.append(f"- … and {len(versions) - VERSION_ROWS:,} more versions (soak.html, results.json `versions`)")
    for t in moves[:VERSION_ROWS]:
        times = f" ({plural(t.count, 'time')})" if t.count > 1 else ""
        out.append(f"- OTA {t.source} → {t.target}: {t.outcome.replace('_', ' ')}{times}")
    if len(moves) > VERSION_ROWS:
        by_outcome: Counter[str] = Counter()
        for t in moves:
            by_outcome[t.outcome.replace("_", " ")] += t.count
        rest = ", ".join(f"{n:,} {outcome}" for outcome, n in sorted(by_outcome.items()))
        out.append(f"- … and {len(moves) - VERSION_ROWS:,} more transitions (all attempts: {rest})")
    return [*out, ""]


def _power(a: Analysis, f: dict[str, Any]) -> list[str]:
    actions = a.power.get("actions", {})
    if not actions and not a.power.get("readings"):
        return []
    text = ", ".join(f"{k}: {n}" for k, n in sorted(actions.items())) or "no supply actions"
    if a.power.get("readings"):
        text += (f"; {plural(int(a.power['readings']), 'reading')}, current mean "
                 f"{format_metric('power.current.mean', f.get('power.current.mean'))}, max "
                 f"{format_metric('power.current.max', f.get('power.current.max'))}")  # fmt: skip
    elif "power.current.mean" in a.unmeasurable:
        text += "; " + a.unmeasurable["power.current.mean"]
    return ["## Power", "", text, ""]
