"""Small journals written record by record with the real :class:`Journal`, for the soak page's tests: runs
with no samples, one boot, only software reboots, a run interrupted or killed, many boots and versions."""

from __future__ import annotations

import random
from pathlib import Path

from harness.run.journal import Journal
from tests.report.twinlog import write_results_json

T0 = 1_790_000_000.0


class Run:
    """A journal being written, with a twin that publishes flat telemetry and boots when told."""

    def __init__(self, folder: Path, *, scenario: str | None = "soak", duration: float | None = 3600.0) -> None:
        self.folder = folder
        self.j = Journal(folder / "journal.jsonl", run_id=folder.name)
        self.rng = random.Random(1)
        self.t = T0
        self.boot_no = 0
        self.seq = 0
        self.boot_t = T0
        self.fw = "1.0.0"
        self.scenario = scenario
        self.j.record("run", t=T0 - 2, action="start", run_id=folder.name, rig="twin")
        if scenario:
            self.j.record("scenario", t=T0 - 1, action="start", scenario=scenario, seed=1, duration=duration,
                          injections=[], rig="twin")  # fmt: skip

    def boot(self, reason: str = "power-on", seconds: float = 1.1) -> None:
        self.boot_no += 1
        self.seq = 0
        self.boot_t = self.t
        self.j.record("boot", t=self.t + seconds, device="twin", reason=reason, seconds=seconds)
        self.t += seconds

    def publish(self, n: int, period: float = 10.0, *, heap: float = 200_000.0, leak_per_h: float = 0.0) -> None:
        for _ in range(n):
            self.t += period
            self.seq += 1
            up = self.t - self.boot_t
            payload = {"device": "twin", "boot_id": f"b{self.boot_no}", "seq": self.seq, "uptime": round(up, 3),
                       "heap_free": int(heap - self.rng.randrange(0, 256, 16) - leak_per_h * up / 3600),
                       "battery_v": round(4.1 + self.rng.gauss(0, 0.002), 4), "rssi": -60, "temp_c": 25.0,
                       "fw": self.fw, "ts": self.t, "dropped": 0}  # fmt: skip
            self.j.record("telemetry", t=self.t + 0.05, device="twin", topic="devices/twin/telemetry",
                          arrival=self.t + 0.05, payload=payload)  # fmt: skip

    def software_reboot(self) -> None:
        self.t += 1.0
        self.j.record("injection", t=self.t, action="reboot", params={}, scenario=self.scenario)
        self.boot("reboot", 0.9)

    def ota(self, version: str, outcome: str = "committed") -> None:
        for phase in ("job", "downloading", "verifying", "rebooting"):
            self.t += 2.0
            self.j.record("ota", t=self.t, device="twin", phase=phase, version=version)
        self.boot("reboot", 1.0)
        if outcome == "committed":
            self.fw = version
        self.t += 2.0
        self.j.record("ota", t=self.t, device="twin", phase=outcome, version=version)

    def check(self, name: str, metric: str, op: str, expected: object, observed: object, passed: bool | None) -> None:
        self.j.record("check", t=self.t, scenario=self.scenario, name=name, metric=metric, op=op, expected=expected,
                      observed=observed, passed=passed)  # fmt: skip

    def end(self, *, finished: bool = True, interrupted: bool = False, tests: dict[str, str] | None = None) -> Path:
        """Close the run: scenario end, run end and results.json when ``finished``; a scenario
        ``interrupted`` record (Ctrl-C) with ``interrupted``; nothing more (a killed run) otherwise."""
        if interrupted and self.scenario:
            self.j.record("scenario", t=self.t + 1, action="interrupted", scenario=self.scenario)
        elif finished and self.scenario:
            self.j.record("scenario", t=self.t + 1, action="end", scenario=self.scenario, passed=True,
                          elapsed=self.t - T0, fired=[], injection_errors=[])  # fmt: skip
        if finished or interrupted:
            self.j.record("run", t=self.t + 2, action="end")
        self.j.close()
        if finished or interrupted:
            write_results_json(self.folder, tests or {"t.py::test_soak": "passed"}, started=T0 - 2,
                               finished=self.t + 2)  # fmt: skip
            if interrupted:  # pytest's exit status for a run stopped with Ctrl-C
                import json

                path = self.folder / "results.json"
                data = json.loads(path.read_text(encoding="utf-8"))
                data["exit_status"] = 2
                path.write_text(json.dumps(data), encoding="utf-8")
        return self.folder
