"""The metrics scenario checks compare, computed from the scenario's journal records only.

The numbers come from the report's own analysis (:func:`harness.report.analysis.metrics`), so a
check and the soak report never disagree. Two things only the scenario knows are added: how many
steps failed, and how many boots the harness itself caused — reboots are also counted from the
console (lines matching the device profile's boot-done marker), so a crash or watchdog reset on a
device without telemetry still shows up as unexpected.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.report.analysis import analyze, metrics
from harness.report.rundata import RunData


def compute_metrics(
    records: Iterable[dict[str, Any]],
    *,
    boot_done: str | None = None,
    expected_boots: int | None = None,
    steps_failed: int = 0,
) -> dict[str, Any]:
    recs = sorted(records, key=lambda r: float(r.get("t", 0.0)))  # some records are written after the fact
    out = metrics(analyze(RunData(folder=Path("."), records=recs)))
    out["steps.failed"] = steps_failed
    out["power_cuts"] = sum(1 for r in recs if r.get("kind") == "injection" and r.get("action") == "power-cut")
    if boot_done and expected_boots is not None:
        marker = re.compile(boot_done)
        seen = sum(1 for r in recs if r.get("kind") == "console" and marker.search(str(r.get("line", ""))))
        out["reboots.total"] = max(int(out.get("reboots.total") or 0), seen)
        out["reboots.unexpected"] = max(int(out.get("reboots.unexpected") or 0), seen - expected_boots)
    if out.get("heap.exhaustion") is None and out.get("heap.trend") in ("flat", "rising"):
        out["heap.exhaustion"] = math.inf  # the data shows no leak: the heap never runs out at this rate
    results = [r for r in recs if r.get("kind") == "ota.result"]
    out["ota.failed"] = sum(1 for r in results if not r.get("as_expected", True))
    return out
