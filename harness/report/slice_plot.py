"""One picture of a test's or scenario's slice of the journal, for its Allure result.

A lane of what the harness did (steps as bars, passed or failed; events and boots as ticks) above
the device's telemetry (heap, RSSI) when the slice has any, on a time axis in the unit the slice's
length calls for. Drawn from the records alone, so it works for a scenario without telemetry too.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

#: Event labels drawn on the lane at most; the rest are counted in the title.
MAX_LABELS = 12


def time_unit(span: float) -> tuple[str, float]:
    """The axis unit for a slice ``span`` seconds long: (name, seconds per unit)."""
    if span >= 2 * 86400:
        return "days", 86400.0
    if span >= 2 * 3600:
        return "h", 3600.0
    if span >= 3 * 60:
        return "min", 60.0
    return "s", 1.0


def slice_png(records: Sequence[dict[str, Any]], title: str) -> bytes | None:
    """PNG of the slice; None when it holds nothing to draw (no step, event, boot or telemetry)."""
    steps = [r for r in records if r.get("kind") == "step"]
    events = [r for r in records if r.get("kind") == "injection" and r.get("action") not in ("clear", "heal")]
    boots = [r for r in records if r.get("kind") == "boot"]
    tel = [r for r in records if r.get("kind") == "telemetry" and isinstance(r.get("payload"), dict)]
    if not (steps or events or boots or tel):
        return None
    from matplotlib.figure import Figure

    times = [float(r["t"]) for r in records if "t" in r]
    start = min(times)
    unit, per = time_unit(max(times) - start)

    def x(t: float) -> float:
        return (t - start) / per

    panels = [("harness", None)]
    for column, label, scale in (("heap_free", "heap free (KiB)", 1 / 1024), ("rssi", "RSSI (dBm)", 1.0)):
        if any(r["payload"].get(column) is not None for r in tel):
            panels.append((label, (column, scale)))
    fig = Figure(figsize=(9, 1.6 + 1.7 * (len(panels) - 1)), dpi=90)
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    lane = axes[0]
    for r in steps:
        end = x(float(r["t"]))
        width = float(r.get("duration") or 0.0) / per
        failed = r.get("status") == "failed"
        lane.barh(1, max(width, 0.002 * max(x(max(times)), 1e-9)), left=end - width, height=0.6,
                  color="#d62728" if failed else "#2ca02c", edgecolor="none")  # fmt: skip
    labelled, last = 0, float("-inf")
    end = x(max(times))
    for r in events:
        at = x(float(r["t"]))
        lane.axvline(at, color="#ff7f0e", lw=1)
        if labelled < MAX_LABELS and at - last > 0.04 * end:  # labels never overlap: close ones are counted
            lane.text(at, 0.2, str(r.get("action")), rotation=90, fontsize=7, va="bottom", ha="right")
            labelled, last = labelled + 1, at
    for r in boots:
        lane.plot([x(float(r["t"]))], [0.1], marker="^", color="#1f77b4", ms=6)
    lane.set_yticks([1, 0.1], ["steps", "boots"], fontsize=8)
    lane.set_ylim(-0.3, 1.6)
    lane.set_xlim(0, end * 1.02 if end > 0 else 1)
    for ax, (label, spec) in zip(axes[1:], panels[1:], strict=True):
        column, scale = spec
        points = [(x(float(r["t"])), r["payload"][column] * scale) for r in tel if r["payload"].get(column) is not None]
        ax.plot([p[0] for p in points], [p[1] for p in points], ".", ms=3)
        ax.set_ylabel(label, fontsize=8)
        ax.grid(alpha=0.3)
    hidden = len(events) - labelled
    more = f" (+{hidden} events not labelled)" if hidden > 0 else ""
    failed_steps = sum(1 for r in steps if r.get("status") == "failed")
    axes[0].set_title(f"{title}: {len(steps)} steps ({failed_steps} failed), {len(events)} events, "
                      f"{len(boots)} boots, {len(tel)} telemetry messages{more}", fontsize=9)  # fmt: skip
    axes[-1].set_xlabel(f"time since the start ({unit})")
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()
