"""The nightly telemetry soak runs on the twin in CI, its four hours compressed into seconds.

Each soak is a 40 s inner run of real time, nearly all of it waiting on the twin. In a run of one
process the two start together (each its own twin, broker and run folder, as two xdist workers
would have) and each test then judges its own; under xdist each worker starts only the one it runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.report.journal import read_run

ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT = 300.0  # s: a 40 s soak, its set-up and its report, on a loaded machine

SOAKS = {
    "telemetry": ("soak-telemetry.yaml", ()),
    "wifi-weak": ("soak-wifi-weak.yaml", ("-p", "no:xdist")),
}


@dataclass
class Soak:
    """One compressed soak as an inner pytest process: where it writes, and the process."""

    name: str
    folder: Path
    proc: subprocess.Popen[bytes]

    @property
    def reports(self) -> Path:
        return self.folder / "reports"

    def result(self) -> pytest.RunResult:
        """Wait for the run to end and read its output as pytester would."""
        try:
            self.proc.wait(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.stop()
            tail = (self.folder / "stdout").read_text(errors="replace").splitlines()[-5:]
            pytest.fail(f"the {self.name} soak did not end within {RUN_TIMEOUT:g} s; last output: {tail}")
        out = (self.folder / "stdout").read_text(errors="replace").splitlines()
        err = (self.folder / "stderr").read_text(errors="replace").splitlines()
        return pytest.RunResult(self.proc.returncode, out, err, 0.0)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM ends a harness run like Ctrl-C: its children stop with it
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _start(name: str, base: Path) -> Soak:
    scenario, extra = SOAKS[name]
    folder = base / name
    (folder / "tmp").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS" and not k.startswith("PYTEST_XDIST")}
    args = [sys.executable, "-m", "pytest", f"--basetemp={folder / 'tmp'}",
            str(ROOT / "scenarios" / "nightly" / scenario),
            "--scenario-duration", "40s",
            "--reports-dir", str(folder / "reports"),
            "--run-id", "soak",
            "--rootdir", str(ROOT),
            "-p", "no:cacheprovider", *extra]  # fmt: skip
    with open(folder / "stdout", "wb") as out, open(folder / "stderr", "wb") as err:
        proc = subprocess.Popen(args, cwd=folder, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
    return Soak(name, folder, proc)


class Soaks:
    """The soaks of this module's tests; one not started yet starts when a test asks for it."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.started: dict[str, Soak] = {}

    def __getitem__(self, name: str) -> Soak:
        if name not in self.started:
            self.started[name] = _start(name, self.base)
        return self.started[name]


@pytest.fixture(scope="module")
def soaks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Soaks]:
    runs = Soaks(tmp_path_factory.mktemp("nightly"))
    try:
        if not os.environ.get("PYTEST_XDIST_WORKER"):  # one process runs both tests: start both soaks at once
            for name in SOAKS:
                runs[name]
        yield runs
    finally:
        for soak in runs.started.values():
            soak.stop()


def test_nightly_telemetry_soak_runs_compressed_on_the_twin(soaks: Soaks) -> None:
    soak = soaks["telemetry"]
    result = soak.result()
    result.assert_outcomes(passed=1)
    records = read_run(soak.reports / "soak")
    start = next(r for r in records if r["kind"] == "scenario" and r["action"] == "start")
    assert start["duration"] == 40.0
    assert len(start["instants"]) >= 10, "the compressed schedule lost its injections"
    assert max(start["instants"]) < 40.0
    fired = [r for r in records if r["kind"] == "injection" and r.get("scenario") == "soak-telemetry"]
    assert {r["action"] for r in fired} == {"power-cut", "partition"}
    checks = [r for r in records if r["kind"] == "check"]
    assert checks and all(c["passed"] for c in checks), checks


def test_the_wifi_weak_soak_compressed_judges_what_it_can(soaks: Soaks) -> None:
    """The README's soak, compressed: every boot after a scheduled power cut is a boot (boot.time.p95 has
    data; it said 'no data'), and heap.slope > -200B/h on boots of seconds is not judged, saying why (it
    failed with a slope whose interval held both signs)."""
    soak = soaks["wifi-weak"]
    result = soak.result()
    result.assert_outcomes(passed=1)
    records = read_run(soak.reports / "soak")
    start = next(r["t"] for r in records if r["kind"] == "scenario" and r["action"] == "start")
    checks = {r["name"]: r for r in records if r["kind"] == "check"}
    slope = checks["heap.slope > -200B/h"]
    assert slope["passed"] is None and "confidence interval" in slope["skipped"], slope
    assert "compressed 720x" in slope["skipped"]
    assert checks["boot.time.p95 < 5s"]["passed"] is True and checks["boot.time.p95 < 5s"]["observed"] > 0
    banners = [r for r in records if r["kind"] == "console" and "BOOT slot=" in r["line"] and r["t"] >= start]
    cuts = [r for r in records if r["kind"] == "injection" and r.get("action") == "power-cut"]
    assert len(cuts) >= 3 and len(banners) >= len(cuts), (len(cuts), len(banners))
