"""What happened to the device, read from the journal: injections as bands and markers, reboots
(expected or not, with their cause), OTA attempts with timings, and a power draw summary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.report.boots import Boot, Patterns, boots
from harness.report.frames import power_frame

_OTA_FINAL = ("committed", "rolled_back", "rejected")
_NETWORK_END = {"heal", "reset", "apply", "profile", "partition"}


@dataclass(frozen=True)
class Band:
    """A time span with an impairment in force (partition, profile, broker outage)."""

    start: float
    end: float
    kind: str  # partition | profile | impairment | broker
    label: str


@dataclass(frozen=True)
class Marker:
    """A moment: power cut, OTA outcome, reboot."""

    t: float
    kind: str  # power | ota | reboot
    label: str
    bad: bool = False


#: One boot of the device (the name the reports have always used).
Reboot = Boot


@dataclass
class OtaAttempt:
    device: str
    version: str
    start: float
    end: float | None
    outcome: str  # committed | rolled_back | rejected | unfinished
    reason: str = ""
    phases: dict[str, float] = field(default_factory=dict)  # phase -> seconds after start
    timings: dict[str, Any] = field(default_factory=dict)

    @property
    def duration(self) -> float | None:
        return None if self.end is None else self.end - self.start


def _injection_name(r: dict[str, Any]) -> str:
    return str(r.get("action") or r.get("do") or "")


def _params(r: dict[str, Any]) -> dict[str, Any]:
    p = r.get("params")
    return p if isinstance(p, dict) else {}


def bands(records: list[dict[str, Any]], end: float) -> list[Band]:
    """Partitions, profile changes, other impairments and broker outages as spans."""
    out: list[Band] = []
    inj = [r for r in records if r.get("kind") == "injection" and not r.get("failed")]
    for i, r in enumerate(inj):
        action, t, p = _injection_name(r), float(r["t"]), _params(r)
        later = inj[i + 1 :]
        if action in ("partition", "profile", "apply"):
            stop = next((float(x["t"]) for x in later if _injection_name(x) in _NETWORK_END), end)
            if action == "partition" and isinstance(p.get("duration"), int | float) and p["duration"] > 0:
                stop = min(stop, t + float(p["duration"]))
            if action == "partition":
                out.append(Band(t, stop, "partition", "partition"))
            elif action == "profile":
                out.append(
                    Band(t, stop, "profile", f"profile {p.get('profile') or p.get('name') or ''}".strip())
                )
            elif p:
                shown = ", ".join(f"{k}={v}" for k, v in sorted(p.items()))[:40]
                out.append(Band(t, stop, "impairment", shown))
        elif action in ("broker-stop", "broker-restart"):
            if action == "broker-restart" and isinstance(p.get("duration"), int | float):
                stop = t + float(p["duration"])
            else:
                stop = next((float(x["t"]) for x in later if _injection_name(x) == "broker-start"), end)
            out.append(Band(t, stop, "broker", "broker down"))
    return out


def _power_cut_times(records: list[dict[str, Any]]) -> list[tuple[float, str]]:
    """Each power-cut injection once (the supply's own ``off`` record of it, a few ms later, is the same cut;
    two cuts a fraction of a second apart are two), then the supply switched off or cycled by anything else."""
    cuts = sorted(
        float(r["t"]) for r in records if r.get("kind") == "injection" and _injection_name(r) == "power-cut"
    )
    supply = sorted(
        float(r["t"]) for r in records if r.get("kind") == "power" and r.get("action") in ("off", "cycle")
    )
    out = [(t, "power cut") for t in cuts]
    unpaired = list(cuts)
    for t in supply:
        cut = next((c for c in unpaired if -0.05 <= t - c <= 5.0), None)  # the cut, then its supply record
        if cut is not None:
            unpaired.remove(cut)
        else:
            out.append((t, "supply off"))
    return sorted(out)


def markers(records: list[dict[str, Any]], reboots: list[Reboot], ota: list[OtaAttempt]) -> list[Marker]:
    """Power cuts, OTA outcomes and reboots (with cause), for drawing on the time series."""
    out = [Marker(t, "power", label) for t, label in _power_cut_times(records)]
    for a in ota:
        when = a.end if a.end is not None else a.start
        out.append(Marker(when, "ota", f"OTA {a.version} {a.outcome}", bad=a.outcome != "committed"))
    for rb in reboots:  # power cuts, supply steps and OTA already have their marker
        if not rb.expected or rb.cause == "software reboot":
            out.append(Marker(rb.t, "reboot", f"reboot ({rb.cause})", bad=not rb.expected))
    return sorted(out, key=lambda m: m.t)


def reboots(records: list[dict[str, Any]], patterns: dict[str, Patterns] | None = None) -> list[Reboot]:
    """Every boot, with its cause: see :mod:`harness.report.boots`."""
    return boots(records, patterns)


def ota_attempts(records: list[dict[str, Any]]) -> list[OtaAttempt]:
    """OTA jobs from ``ota`` records: from phase ``job`` to committed / rolled_back / rejected."""
    open_: dict[str, OtaAttempt] = {}
    out: list[OtaAttempt] = []
    for r in records:
        if r.get("kind") != "ota":
            continue
        device, phase, t = str(r.get("device") or ""), str(r.get("phase") or ""), float(r["t"])
        attempt = open_.get(device)
        if phase == "job" or attempt is None:
            attempt = OtaAttempt(device, str(r.get("version") or ""), t, None, "unfinished")
            open_[device] = attempt
            out.append(attempt)
        attempt.phases.setdefault(phase, round(t - attempt.start, 3))
        if isinstance(r.get("timings"), dict):
            attempt.timings.update(r["timings"])
        if phase in _OTA_FINAL:
            attempt.end, attempt.outcome = t, phase
            attempt.reason = str(r.get("reason") or "")
            del open_[device]
    return out


def power_summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Supply actions counted, and the readings: mean/max current, mean power, energy over the run."""
    actions: dict[str, int] = {}
    for r in records:
        if r.get("kind") == "power" and r.get("action") != "measure":
            actions[str(r.get("action"))] = actions.get(str(r.get("action")), 0) + 1
    frame = power_frame(records).dropna(subset=["amps"])
    out: dict[str, Any] = {"actions": actions, "readings": len(frame)}
    if frame.empty:
        return out
    out["current_mean_a"] = float(frame["amps"].mean())
    out["current_max_a"] = float(frame["amps"].max())
    watts = frame["watts"].dropna()
    if not watts.empty:
        out["power_mean_w"] = float(watts.mean())
        if len(watts) > 1:
            ts = frame.loc[watts.index, "t"].to_numpy()
            out["energy_wh"] = float(np.trapezoid(watts.to_numpy(), ts) / 3600.0)
    return out
