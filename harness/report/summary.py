"""A short Markdown summary of a run folder, built from its results.json and journal only."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from harness.report.journal import read_run


def load_results(folder: Path) -> dict[str, Any]:
    path = folder / "results.json"
    if not path.is_file():
        return {}
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def summarize(folder: Path) -> str:
    """Markdown: outcome counts, failed tests, boots, power events and rig health, from the run folder."""
    results = load_results(folder)
    records = read_run(folder)
    kinds = Counter(r.get("kind") for r in records)
    boots = [r for r in records if r.get("kind") == "boot"]
    power = Counter(r.get("action") for r in records if r.get("kind") == "power")
    lines = [f"# Run {results.get('run_id', folder.name)}", ""]
    rig = results.get("rig", {})
    if rig:
        source = f" ({rig['source']})" if rig.get("source") else ""
        lines.append(
            f"Rig: **{rig.get('name')}**{source}, capabilities: "
            f"{', '.join(rig.get('capabilities', [])) or 'none'}"
        )
    counts = results.get("counts", {})
    if counts:
        lines.append("Outcome: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
    if results.get("status") == "interrupted":
        from harness.report.rundata import load_run

        lines.append(load_run(folder).status_line() + ".")
    elif results.get("exit_status") is None:
        lines.append("The run did not finish (no exit status); this summary is built from the journal alone.")
    lines.append("")
    trends = results.get("trends") or {}
    texts = [t["text"] for t in trends.values() if isinstance(t, dict) and t.get("text")]
    if texts:
        lines += ["## Trends", ""] + [f"- {t}" for t in texts] + [""]
    failed = [t for t in results.get("tests", []) if t.get("outcome") in {"failed", "error"}]
    if failed:
        lines += ["## Failed", ""]
        lines += [f"- `{t['test']}` ({t['outcome']}, {t['duration']:.2f}s)" for t in failed]
        lines.append("")
    if boots:
        secs = sorted(float(b.get("seconds", 0.0)) for b in boots)
        p50 = secs[len(secs) // 2]
        p95 = secs[min(len(secs) - 1, round(0.95 * (len(secs) - 1)))]
        by_reason = Counter(b.get("reason") for b in boots)
        lines += [
            "## Boots",
            "",
            f"{len(boots)} boots ({', '.join(f'{n} {k}' for k, n in by_reason.most_common())}); "
            f"time to prompt p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max {secs[-1] * 1000:.0f} ms",
            "",
        ]
    if power:
        lines += ["## Power", "", ", ".join(f"{k}: {n}" for k, n in sorted(power.items())), ""]
    health = results.get("health", [])
    if health:
        lines += ["## Rig health", ""] + [f"- before `{h['test']}`: {h['message']}" for h in health] + [""]
    lines += [
        "## Journal",
        "",
        f"{len(records)} records: " + ", ".join(f"{n} {k}" for k, n in kinds.most_common()),
        "",
    ]
    return "\n".join(lines)
