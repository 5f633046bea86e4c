"""Summaries the soak page shows that :mod:`harness.report.analysis` does not compute (yet): boots counted by
cause, the firmware each boot ran, time spent per version, and OTA transitions deduplicated.

Everything here is read from an :class:`Analysis` (its telemetry frame, reboots and OTA attempts), never
from the journal again, so the page's tables agree with the analysis. These belong in the analysis layer
and can move there whole.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from harness.report.analysis import Analysis, firmware_versions


@dataclass(frozen=True)
class CauseCount:
    cause: str
    expected: bool
    count: int


@dataclass(frozen=True)
class BootImage:
    """One boot as telemetry saw it: the image it ran and how long it was up."""

    device: str
    boot_id: str
    version: str
    first: float
    last: float
    uptime: float  # the device's own uptime at its last message (or the span of its messages)


@dataclass(frozen=True)
class VersionTime:
    version: str
    boots: int
    uptime: float | None  # seconds up as telemetry saw them; None when no telemetry named this version


@dataclass(frozen=True)
class Transition:
    source: str
    target: str
    outcome: str
    count: int

    @property
    def label(self) -> str:
        times = f" \u00d7{self.count}" if self.count > 1 else ""
        return f"{self.source} → {self.target} {self.outcome.replace('_', ' ')}{times}"


def boot_causes(a: Analysis) -> list[CauseCount]:
    """Boots counted by cause, unexpected ones first, then by count; the counts sum to ``len(a.reboots)``."""
    counts = Counter((b.cause or b.reason or "unknown", b.expected) for b in a.reboots)
    rows = [CauseCount(cause, expected, n) for (cause, expected), n in counts.items()]
    return sorted(rows, key=lambda r: (r.expected, -r.count, r.cause))


def boot_images(a: Analysis) -> list[BootImage]:
    """Every (device, boot_id) telemetry saw, in order, with its firmware version (the most frequent ``fw``)."""
    tel = a.telemetry
    if tel.empty:
        return []
    out = []
    data = tel.dropna(subset=["boot_id"])
    for (device, boot_id), part in data.groupby(["device", "boot_id"], sort=False):
        fws = part["fw"].dropna()
        version = str(fws.mode().iloc[0]) if not fws.empty else "unknown"
        first, last = float(part["t"].min()), float(part["t"].max())
        up = part["uptime"].dropna()
        uptime = float(up.max()) if not up.empty else last - first
        out.append(BootImage(str(device), str(boot_id), version, first, last, uptime))
    return sorted(out, key=lambda b: b.first)


def version_times(a: Analysis, images: list[BootImage] | None = None) -> list[VersionTime]:
    """Per firmware version, in the order first run: the boots that ran it (every boot the analysis knows,
    from banners, boot records and telemetry: :attr:`Analysis.versions`) and their uptime as telemetry
    saw it (``None`` for a version no telemetry came from)."""
    images = boot_images(a) if images is None else images
    boots: dict[str, int] = {}
    for v in a.versions:
        boots[v.version] = boots.get(v.version, 0) + v.boots
    up: dict[str, float] = {}
    for b in images:
        up[b.version] = up.get(b.version, 0.0) + b.uptime
        boots.setdefault(b.version, 0)
    return [VersionTime(v, n, up.get(v)) for v, n in boots.items()]


def transitions(a: Analysis) -> list[Transition]:
    """OTA attempts as (from → to, outcome), counted over devices: ten identical updates are one row x10.
    The same attempts :attr:`Analysis.transitions` holds per device."""
    counts: Counter[tuple[str, str, str]] = Counter()
    for t in a.transitions:
        counts[(t.from_version or "?", t.to_version or "?", t.outcome)] += t.count
    return [Transition(s, t, outcome, n) for (s, t, outcome), n in counts.items()]


def versions_line(a: Analysis) -> str:
    """The header's firmware: ``1.0.0``, ``1.0.0 → 1.1.0``, or ``1.0.0 … 1.0.61 (61 versions)``: every
    version any device ran, each once (:func:`~harness.report.analysis.firmware_versions`)."""
    seen: list[str] = []
    for versions in firmware_versions(a).values():
        seen += [v for v in versions if v not in seen]
    if not seen:
        return "unknown"
    if len(seen) <= 3:
        return " → ".join(seen)
    return f"{seen[0]} … {seen[-1]} ({len(seen)} versions)"
