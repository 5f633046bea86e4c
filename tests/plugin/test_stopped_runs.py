"""Runs people stop: a real ``pytest`` running a scenario on the twin, stopped by SIGTERM, Ctrl-C or SIGKILL.

SIGTERM and SIGINT: the run ends like Ctrl-C and its reports say INTERRUPTED, when, and the verdicts it
had. SIGKILL: nothing of the run's process tree (broker, twin rig, firmware) is alive 5 s later, and the
next run sweeps the scratch folder the killed one left under the temp dir.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.run.journal import read_run

SCENARIO = """\
scenario: long-watch
description: telemetry through the impairment point until stopped
requires: [console, power, network, telemetry]
seed: 3
steps:
  - power: on
  - name: telemetry flows
    wait: {until: telemetry, count: 2, timeout: 60s}
  - name: watching
    wait: {until: telemetry, count: 100000, timeout: 30m}
checks:
  - telemetry.received > 0
"""

QUICK = "def test_nothing():\n    pass\n"
RUNNING_TIMEOUT = 120.0


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a background job may have inherited SIGINT ignored


class Run:
    """One ``pytest`` subprocess in a project folder, with its own temp dir and run folder."""

    def __init__(self, project: Path, run_id: str, *args: str, workers: int = 0) -> None:
        self.project = project
        self.folder = project / "reports" / run_id
        self.tmp = project / "tmp"
        self.tmp.mkdir(exist_ok=True)
        env = {**os.environ, "TMPDIR": str(self.tmp), "PYTHONUNBUFFERED": "1"}
        env.pop("PYTEST_XDIST_WORKER", None)
        parallel = ["-n", str(workers)] if workers else ["-p", "no:xdist"]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *parallel, "--run-id", run_id,
             "--reports-dir", str(project / "reports"), "--build-reports", *args],
            cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            preexec_fn=_default_sigint,
        )  # fmt: skip
        self.output: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in iter(self.proc.stdout.readline, b""):
            self.output.append(line.decode(errors="replace"))

    def records(self) -> list[dict[str, object]]:
        """Every record so far: plain journals being written, gzipped ones of processes that ended."""
        return read_run(self.folder)

    def wait_running(self) -> None:
        """Until the journal shows the scenario's telemetry flowing (its second step passed)."""
        deadline = time.monotonic() + RUNNING_TIMEOUT
        while True:
            steps = [r for r in self.records() if r.get("kind") == "step"]
            if any(r.get("name") == "telemetry flows" and r.get("status") == "passed" for r in steps):
                return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"the scenario was not running within {RUNNING_TIMEOUT:g}s (exit {self.proc.poll()}); "
                    f"last steps: {steps[-3:]}; output: {''.join(self.output)[-1500:]}"
                )
            threading.Event().wait(0.1)  # polling a file another process writes: no event to wait on

    def tree(self) -> list[int]:
        """Every live descendant of the pytest process (brokers and twins run in their own sessions)."""
        parents: dict[int, int] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            parents[int(stat.parent.name)] = int(fields[1])
        found, frontier = set(), {self.proc.pid}
        while frontier:
            found |= frontier
            frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - found
        return sorted(found - {self.proc.pid})

    def finish(self, timeout: float = 90.0) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(10)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._reader.join(10)


def _alive(pids: list[int]) -> list[int]:
    live = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":  # a zombie is dead, only not yet reaped by its (dead) parent's reaper
            live.append(pid)
    return live


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "long.yaml").write_text(SCENARIO, encoding="utf-8")
    (tmp_path / "test_quick.py").write_text(QUICK, encoding="utf-8")
    yield tmp_path


@pytest.mark.parametrize(
    ("sig", "workers"),
    [(signal.SIGTERM, 0), (signal.SIGINT, 0), (signal.SIGTERM, 1)],
    ids=["SIGTERM", "SIGINT", "SIGTERM-xdist"],
)
def test_a_signalled_run_reports_interrupted_with_the_instant_and_its_verdicts(
    project: Path, sig: signal.Signals, workers: int
) -> None:
    """With xdist the signal reaches the controller only (as from CI or timeout(1)); its workers are
    stopped by xdist and record their own interruption, the run's is the controller's."""
    run = Run(project, f"stopped-{sig.name}-{workers}", "scenarios/long.yaml", workers=workers)
    try:
        run.wait_running()
        children = run.tree()
        assert children, "the run started no broker or twin"
        sent = time.time()
        run.proc.send_signal(sig)
        code = run.finish()
    finally:
        run.kill()
    out = "".join(run.output)
    assert code == 2, f"exit {code}, expected pytest's 'interrupted' (2):\n{out[-2000:]}"
    assert _alive(children) == [], f"children {children} outlived the interrupted run"
    records = run.records()
    stopped = [r for r in records if r.get("kind") == "run" and r.get("action") == "interrupted"
               and r.get("worker") == "main"]  # fmt: skip
    assert len(stopped) == 1 and stopped[0]["signal"] == sig.name, stopped
    assert sent - 1 <= float(stopped[0]["wall"]) <= sent + 5, (sent, stopped)
    assert any(r.get("kind") == "scenario" and r.get("action") == "interrupted" for r in records)
    for worker in {r.get("worker") for r in records}:
        last = [r for r in records if r.get("worker") == worker][-1]
        assert last.get("kind") == "run" and last.get("action") == "end", (worker, last)

    results = json.loads((run.folder / "results.json").read_text())
    assert results["status"] == "interrupted" and results["complete"] is False
    assert results["interrupted"]["signal"] == sig.name and results["interrupted"]["offset_s"] > 0
    (scenario,) = results["scenarios"]
    assert scenario["interrupted"] is True and scenario["checks"], scenario  # the verdicts it had
    when = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(float(stopped[0]["wall"])))
    for page in ("soak.html", "summary.md"):
        text = (run.folder / page).read_text(encoding="utf-8")
        assert f"INTERRUPTED run (stopped by {sig.name} at {when}" in text, f"{page}: {text[:1500]}"


def test_sigkill_leaves_no_process_and_the_next_run_sweeps_its_temp_folder(project: Path) -> None:
    run = Run(project, "killed", "scenarios/long.yaml")
    try:
        run.wait_running()
        children = run.tree()
        assert len(children) >= 3, f"expected a broker, a twin rig and its firmware; found {children}"
        # the rig's work folder (twin flash, logs); named harness-rig-* before scratch folders had owners
        scratch = sorted([*run.tmp.glob("iot-harness-scratch-*"), *run.tmp.glob("harness-rig-*")])
        run.proc.send_signal(signal.SIGKILL)
        run.finish(timeout=10)
        deadline = time.monotonic() + 5.0
        while _alive(children) and time.monotonic() < deadline:
            threading.Event().wait(0.05)  # polling processes this test does not own the reaping of
        assert _alive(children) == [], f"processes {_alive(children)} of the killed run alive after 5 s"
    finally:
        run.kill()
        for pid in _alive(children if "children" in locals() else []):
            os.kill(pid, signal.SIGKILL)
    assert scratch, f"the twin's scratch folder is not under the run's temp dir {run.tmp}"
    names = " ".join(f.name for f in scratch)
    assert "-rig-" in names and "-artifacts-" in names, f"the twin's and the artifact server's folders: {names}"
    assert all(folder.exists() for folder in scratch), "nothing to sweep: the folders went by themselves"
    nxt = Run(project, "next", "test_quick.py")
    try:
        assert nxt.finish() == 0, "".join(nxt.output)[-2000:]
    finally:
        nxt.kill()
    assert [f for f in scratch if f.exists()] == [], "the next run did not sweep the killed run's temp folder"
