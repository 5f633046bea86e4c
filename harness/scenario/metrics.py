"""The metrics scenario checks compare, computed from the scenario's journal records only.

The numbers are the report's own (:func:`harness.report.analysis.analyze`, its ``figures``): the same
functions on the same records, so a check and the soak report never disagree. Boots are found in the
console lines with the device profile's boot banner and marker (``boot_patterns``), so a boot after a
scheduled power cut, a watchdog reset or a crash counts whether or not the harness waited for it.

``unmeasurable`` maps a metric to why this run cannot give it a meaningful value (a heap trend on boots
of seconds); a check on it is not judged and says why (:func:`harness.scenario.checks.undecided`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.report.analysis import analyze
from harness.report.boots import Patterns
from harness.report.rundata import RunData


def compute_metrics(
    records: Iterable[dict[str, Any]],
    *,
    boot_patterns: dict[str, Any] | None = None,
    steps_failed: int = 0,
) -> dict[str, Any]:
    """Flat metrics of ``records`` plus ``unmeasurable`` (metric -> reason). ``boot_patterns`` is a device
    profile's :meth:`~harness.rig.profile.DeviceProfile.boot_patterns`."""
    recs = sorted(records, key=lambda r: float(r.get("t", 0.0)))  # some records are written after the fact
    patterns = None
    if boot_patterns is not None:
        banner, done = boot_patterns.get("boot_banner"), boot_patterns.get("boot_done")
        patterns = {"": Patterns(re.compile(banner) if banner else None, re.compile(done) if done else None,
                                 dict(boot_patterns.get("reset_causes") or {}))}  # fmt: skip
    a = analyze(RunData(folder=Path("."), records=recs), boot_patterns=patterns)
    out = dict(a.figures)
    out["steps.failed"] = steps_failed
    out["power_cuts"] = sum(1 for r in recs if r.get("kind") == "injection" and r.get("action") == "power-cut")
    if out.get("heap.exhaustion") is None and out.get("heap.trend") in ("flat", "rising"):
        out["heap.exhaustion"] = math.inf  # the data shows no leak: the heap never runs out at this rate
    results = [r for r in recs if r.get("kind") == "ota.result"]
    out["ota.failed"] = sum(1 for r in results if not r.get("as_expected", True))
    out["unmeasurable"] = dict(a.unmeasurable)
    return out
