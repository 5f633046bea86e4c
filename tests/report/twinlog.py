"""Recorded-run fixtures: the journal (and results.json) a soak of the reference twin writes.

The heap follows the twin's own model (``harness.twin.heap``: total - base - config - noise in steps
of 16 below ``NOISE_MAX``) minus a leak of ``leak_per_h`` bytes per hour since boot; every reboot
starts the heap afresh. The journal is written with the real :class:`Journal`, record kinds and
fields exactly as the harness's drivers and services write them, with wall-clock ``t`` in the past.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.run.journal import Journal
from harness.twin.heap import BASE_USED, HEAP_TOTAL, NOISE_MAX

T0 = 1_790_000_000.0
CONFIG_BYTES = 96
HOUR = 3600.0


@dataclass
class Truth:
    """What the fixture put in, to check the report against."""

    leak_per_h: float
    exhaustion_s: float | None = None  # from the last sample, by the true model
    sent: int = 0
    lost_network: int = 0
    duplicates: int = 0
    boots: list[tuple[float, str]] = field(default_factory=list)
    end: float = 0.0


@dataclass
class SoakSpec:
    hours: float = 24.0
    period: float = 120.0
    leak_per_h: float = 200.0
    seed: int = 7
    ota_seconds: float = 40.0
    ota_at_h: float = 18.0
    power_cut_at_h: float | None = 12.0
    watchdog_at_h: float | None = 20.0
    partition: tuple[float, float] | None = (2.0, 2.5)  # hours
    profile_at_h: float | None = 6.0
    duplicate_every: int = 0
    tests: dict[str, str] = field(
        default_factory=lambda: {
            "tests/device/test_boot.py::test_boots": "passed",
            "tests/device/test_power.py::test_cut": "passed",
        }
    )
    checks: list[dict[str, Any]] = field(default_factory=list)


class _Twin:
    def __init__(self, spec: SoakSpec, journal: Journal, truth: Truth) -> None:
        self.spec, self.j, self.truth = spec, journal, truth
        self.rng = random.Random(spec.seed)
        self.boot_no = 0
        self.fw = "1.0.0"
        self.boot(T0, "power-on")

    def boot(self, t: float, reason: str) -> None:
        self.boot_no += 1
        self.boot_id = f"b{self.boot_no:03d}"
        self.boot_t, self.seq = t, 0
        self.j.record("boot", t=t + 1.2, device="twin", reason=reason, seconds=1.2 + 0.01 * self.boot_no)
        self.truth.boots.append((t, reason))

    def heap(self, t: float) -> float:
        noise = self.rng.randrange(0, NOISE_MAX, 16)
        return HEAP_TOTAL - BASE_USED - CONFIG_BYTES - noise - self.spec.leak_per_h * (t - self.boot_t) / HOUR

    def publish(self, t: float, latency: float, lost: bool) -> None:
        self.seq += 1
        self.truth.sent += 1
        if lost:
            self.truth.lost_network += 1
            return
        hours = (t - T0) / HOUR
        payload = {
            "device": "twin",
            "boot_id": self.boot_id,
            "seq": self.seq,
            "uptime": round(t - self.boot_t, 3),
            "heap_free": int(self.heap(t)),
            "battery_v": round(4.1 - 0.005 * hours + self.rng.gauss(0, 0.002), 4),
            "rssi": round(-60 + 4 * self.rng.gauss(0, 1)),
            "temp_c": round(25 + 3 * self.rng.random(), 2),
            "fw": self.fw,
            "ts": t,
            "dropped": 0,
        }
        copies = 2 if self.spec.duplicate_every and self.seq % self.spec.duplicate_every == 0 else 1
        self.truth.duplicates += copies - 1
        for _ in range(copies):
            self.j.record(
                "telemetry",
                t=t + latency,
                device="twin",
                topic="devices/twin/telemetry",
                arrival=t + latency,
                payload=payload,
            )


def write_soak(
    folder: Path, spec: SoakSpec | None = None, *, truncate: bool = False, with_results: bool = True
) -> Truth:
    """Write a soak run into ``folder``; with ``truncate`` it dies mid-record and leaves no results.json."""
    spec = spec or SoakSpec()
    folder.mkdir(parents=True, exist_ok=True)
    truth = Truth(spec.leak_per_h)
    journal = Journal(folder / "journal.jsonl", run_id=folder.name)
    j = journal
    j.record("run", t=T0 - 5, action="start", run_id=folder.name, rig="twin")
    j.record(
        "scenario",
        t=T0 - 4,
        action="start",
        scenario="soak-nightly",
        seed=spec.seed,
        duration=spec.hours * HOUR,
        injections=[],
        rig="twin",
    )
    j.record("power", t=T0 - 3, action="on", channel=1, volts=3.7, amps=0.5, source="twin-psu")
    twin = _Twin(spec, j, truth)
    j.record(
        "step",
        t=T0 + 2,
        scenario="soak-nightly",
        index="steps[0]",
        name="power on",
        status="passed",
        duration=1.3,
        observed="ready in 1300ms",
    )
    end = T0 + spec.hours * HOUR
    events: list[tuple[float, str]] = []
    if spec.partition:
        events += [(T0 + spec.partition[0] * HOUR, "partition"), (T0 + spec.partition[1] * HOUR, "heal")]
    if spec.profile_at_h is not None:
        events += [(T0 + spec.profile_at_h * HOUR, "profile"), (T0 + (spec.profile_at_h + 1) * HOUR, "heal")]
    if spec.power_cut_at_h is not None:
        events.append((T0 + spec.power_cut_at_h * HOUR, "power-cut"))
    if spec.watchdog_at_h is not None:
        events.append((T0 + spec.watchdog_at_h * HOUR, "watchdog"))
    events.append((T0 + spec.ota_at_h * HOUR, "ota"))
    events.sort()
    t, slow = T0 + spec.period, False
    partitioned = False
    while t < end:
        while events and events[0][0] <= t:
            when, what = events.pop(0)
            if what == "partition":
                partitioned = True
                j.record(
                    "injection",
                    t=when,
                    action="partition",
                    service="mqtt",
                    params={"duration": None},
                    direction="both",
                )
            elif what == "heal":
                partitioned = slow = False
                j.record("injection", t=when, action="heal", service=None, params={}, direction="both")
            elif what == "profile":
                slow = True
                j.record(
                    "injection",
                    t=when,
                    action="profile",
                    service="mqtt",
                    params={"profile": "3g-poor"},
                    direction="both",
                )
            elif what == "power-cut":
                j.record(
                    "injection",
                    t=when,
                    action="power-cut",
                    params={"off": 2.0},
                    at=when - T0,
                    scenario="soak-nightly",
                    event=0,
                )
                j.record("power", t=when, action="off", channel=1, source="twin-psu")
                j.record("power", t=when + 2, action="on", channel=1, source="twin-psu")
                twin.boot(when + 2, "power-on")
            elif what == "watchdog":
                j.record("console", t=when, source="twin", line="WDT: task 'net' starved, resetting")
                twin.boot(when, "watchdog")
            elif what == "ota":
                d = spec.ota_seconds
                for frac, phase in (
                    (0.0, "job"),
                    (0.05, "downloading"),
                    (0.6, "verifying"),
                    (0.7, "rebooting"),
                ):
                    j.record("ota", t=when + frac * d, device="twin", phase=phase, version="1.1.0")
                twin.fw = "1.1.0"
                twin.boot(when + 0.72 * d, "reboot")
                j.record("ota", t=when + 0.8 * d, device="twin", phase="trial", version="1.1.0")
                j.record(
                    "ota",
                    t=when + d,
                    device="twin",
                    phase="committed",
                    version="1.1.0",
                    timings={"download_s": round(0.55 * d, 3), "verify_s": round(0.1 * d, 3)},
                )
        if t < twin.boot_t + 3.0:  # still booting: nothing to publish yet
            t += spec.period
            continue
        latency = (1.5 if slow else 0.05) + 0.02 * twin.rng.random()
        twin.publish(t, latency, partitioned)
        if int((t - T0) / spec.period) % 10 == 0:
            j.record(
                "power",
                t=t,
                action="measure",
                channel=1,
                volts=3.7,
                amps=round(0.08 + 0.01 * twin.rng.random(), 4),
                source="twin-psu",
            )
        t += spec.period
    truth.end = t - spec.period
    last_level = (
        HEAP_TOTAL
        - BASE_USED
        - CONFIG_BYTES
        - (NOISE_MAX - 16) / 2
        - spec.leak_per_h * (truth.end - twin.boot_t) / HOUR
    )
    truth.exhaustion_s = last_level / spec.leak_per_h * HOUR if spec.leak_per_h > 0 else None
    for c in spec.checks:
        j.record("check", t=end, scenario="soak-nightly", **c)
    j.record(
        "scenario",
        t=end + 1,
        action="end",
        scenario="soak-nightly",
        passed=all(c["passed"] for c in spec.checks),
        elapsed=spec.hours * HOUR,
        fired=[],
        injection_errors=[],
    )
    if not truncate:
        j.record("run", t=end + 2, action="end")
    journal.close()
    if truncate:
        with open(folder / "journal.jsonl", "a", encoding="utf-8") as fh:
            fh.write('{"t": %.1f, "kind": "telemetry", "device": "twin", "payl' % (end + 3))
    if with_results and not truncate:
        write_results_json(folder, spec.tests, started=T0 - 5, finished=end + 2)
    return truth


def write_results_json(folder: Path, tests: dict[str, str], *, started: float, finished: float) -> None:
    """results.json as the plugin writes it (HarnessSession.write_results)."""
    counts: dict[str, int] = {}
    rows = []
    for name, outcome in tests.items():
        counts[outcome] = counts.get(outcome, 0) + 1
        rows.append({"test": name, "outcome": outcome, "phase": "call", "duration": 1.0, "properties": {}})
    data = {
        "run_id": folder.name,
        "rig": {"name": "twin", "source": "built-in", "capabilities": ["console", "power"]},
        "started": started,
        "finished": finished,
        "exit_status": 1 if "failed" in counts else 0,
        "counts": counts,
        "tests": rows,
        "health": [],
    }
    (folder / "results.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
