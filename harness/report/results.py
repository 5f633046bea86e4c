"""results.json, completed from the journal: metrics, scenarios, trends, firmware, seed and timings.

The plugin writes the per-test outcomes when a run ends; :func:`build_results` keeps those and adds
what the journal holds. A run that was killed has no results.json yet: one is made from the journal
alone, marked ``complete: false`` with ``exit_status: null``. Building twice gives the same file.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from harness.report.analysis import Analysis, firmware_versions
from harness.report.rundata import RunData
from harness.run.journal import journal_files

RESULTS = "results.json"
#: Keys this module owns in results.json; everything else is the plugin's and is kept as written.
DERIVED = (
    "complete",
    "metrics",
    "trends",
    "scenarios",
    "firmware",
    "seed",
    "timings",
    "telemetry",
    "reboots",
    "ota",
    "power",
    "report",
    "tallies",
    "boots_by_cause",
    "versions",
    "ota_transitions",
    "unmeasurable",
)


def scenarios(run: RunData) -> list[dict[str, Any]]:
    """Per scenario: seed, duration, outcome, steps and checks, from its journal records."""
    by_name: dict[str, dict[str, Any]] = {}

    def get(name: str) -> dict[str, Any]:
        return by_name.setdefault(
            name,
            {
                "scenario": name,
                "seed": None,
                "duration": None,
                "passed": None,
                "elapsed": None,
                "interrupted": False,
                "steps": [],
                "checks": [],
            },
        )

    for r in run.records:
        kind, name = r.get("kind"), str(r.get("scenario") or "")
        if kind == "scenario" and name:
            sc = get(name)
            if r.get("action") == "start":
                sc.update(seed=r.get("seed"), duration=r.get("duration"), started=r["t"])
            elif r.get("action") == "end":
                sc.update(passed=r.get("passed"), elapsed=r.get("elapsed"), ended=r["t"])
            elif r.get("action") == "interrupted":
                sc["interrupted"] = True
        elif kind == "step" and name:
            get(name)["steps"].append(
                {
                    k: r.get(k)
                    for k in ("index", "name", "status", "duration", "observed", "expected", "message")
                    if r.get(k) is not None
                }
            )
        elif kind == "check" and name:
            get(name)["checks"].append(
                {k: r.get(k) for k in ("name", "metric", "op", "expected", "observed", "passed")}
            )
    return list(by_name.values())


def derived(a: Analysis) -> dict[str, Any]:
    """The journal-derived part of results.json."""
    run = a.run
    scs = scenarios(run)
    seeds = [s["seed"] for s in scs if s.get("seed") is not None]
    acc = a.accounting
    return {
        "complete": run.complete,
        "status": run.status,  # complete | interrupted | incomplete
        "interrupted": run.interruption,  # {signal, wall, offset_s} when a signal or Ctrl-C stopped the run
        "metrics": a.figures,
        "unmeasurable": a.unmeasurable,
        "tallies": a.counts,
        "boots_by_cause": a.boots_by_cause,
        "versions": [
            {"device": v.device, "version": v.version, "first": v.first, "last": v.last, "boots": v.boots}
            for v in a.versions
        ],
        "ota_transitions": [
            {"device": t.device, "t": t.t, "from": t.from_version, "to": t.to_version, "outcome": t.outcome,
             "count": t.count}
            for t in a.transitions
        ],
        "trends": {"heap": a.heap.as_dict(), "battery": a.battery.as_dict()},
        "scenarios": scs,
        "firmware": firmware_versions(a),
        "seed": seeds[0] if len(seeds) == 1 else (seeds or None),
        "timings": {
            "started": a.start,
            "last_record": float(run.records[-1]["t"]) if run.records else None,
            "duration_s": a.span,
            "steps_s": round(sum(float(s.get("duration") or 0.0) for s in a.steps), 6),
        },
        "telemetry": {
            "source": "harness.services.accounting",
            "devices": {
                n: {
                    "received": d.received,
                    "unique": d.unique,
                    "duplicates": d.duplicates,
                    "late": d.late,
                    "lost": d.lost,
                    "lost_by_cause": d.lost_by_cause,
                }
                for n, d in acc.devices.items()
            },
        },
        "reboots": [
            {
                "t": b.t,
                "device": b.device,
                "reason": b.reason,
                "expected": b.expected,
                "cause": b.cause,
                "seconds": b.seconds,
                "reset_cause": b.reset_cause,
                "version": b.version,
                "source": b.source,
                "ready": b.ready,
            }
            for b in a.reboots
        ],
        "ota": [
            {
                "device": o.device,
                "version": o.version,
                "outcome": o.outcome,
                "start": o.start,
                "duration": o.duration,
                "reason": o.reason,
                "phases": o.phases,
                "timings": o.timings,
            }
            for o in a.ota
        ],
        "power": a.power,
        "report": {
            "built": time.time(),
            "records": len(run.records),
            "journals": [p.name for p in journal_files(run.folder)],
        },
    }


def assemble(a: Analysis) -> dict[str, Any]:
    """The full results.json content: the plugin's fields (or stand-ins for a killed run) + derived."""
    run = a.run
    base = {k: v for k, v in run.results.items() if k not in DERIVED}
    base.setdefault("run_id", run.run_id)
    base.setdefault("rig", {"name": run.rig} if run.rig else {})
    base.setdefault("started", run.started)
    base.setdefault("finished", None)
    base.setdefault("exit_status", None)
    base.setdefault("counts", {})
    base.setdefault("tests", [])
    base.setdefault(
        "health",
        [{"test": r.get("test"), "message": r.get("message")} for r in run.of("health") if r.get("test")],
    )
    return {**base, **derived(a)}


def jsonable(value: Any) -> Any:
    """NaN and infinities become None; numpy scalars become Python numbers; containers recurse."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_results(a: Analysis) -> Path:
    """Write results.json atomically into the run folder; returns its path."""
    path = a.run.folder / RESULTS
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(
        json.dumps(jsonable(assemble(a)), indent=2, default=str, allow_nan=False), encoding="utf-8"
    )
    tmp.replace(path)
    return path
