"""Inner pytest runs started ahead of the tests that judge them, so that runs which mostly wait on a
twin in real time overlap in a run of one process (each with its own folder, twin, broker and run id,
as two xdist workers already have). Under xdist each worker starts only the runs of its own tests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

RUN_TIMEOUT = 300.0  # s: an inner run of a scenario that lasts under a minute, on a loaded machine


@dataclass
class InnerRun:
    """One inner pytest process: the folder it runs and writes in, and the process."""

    name: str
    folder: Path
    proc: subprocess.Popen[bytes]

    def result(self, timeout: float = RUN_TIMEOUT) -> pytest.RunResult:
        """Wait for the run to end and read its output as pytester would."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            pytest.fail(f"the inner run {self.name!r} did not end within {timeout:g} s; "
                        f"last output: {self._lines('stdout')[-5:]}")  # fmt: skip
        return pytest.RunResult(self.proc.returncode, self._lines("stdout"), self._lines("stderr"), 0.0)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM ends a harness run like Ctrl-C: its children stop with it
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def _lines(self, stream: str) -> list[str]:
        return (self.folder / stream).read_text(encoding="utf-8", errors="replace").splitlines()


def start(name: str, folder: Path, args: list[str]) -> InnerRun:
    """``python -m pytest ARGS`` in ``folder`` (made here), its output in ``folder/stdout`` and ``stderr``."""
    (folder / "basetemp").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS" and not k.startswith("PYTEST_XDIST")}
    command = [sys.executable, "-m", "pytest", f"--basetemp={folder / 'basetemp'}", *args]
    with open(folder / "stdout", "wb") as out, open(folder / "stderr", "wb") as err:
        proc = subprocess.Popen(command, cwd=folder, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
    return InnerRun(name, folder, proc)


class InnerRuns:
    """The inner runs of one module's tests, by name; one not started yet starts when a test asks for it."""

    def __init__(self, base: Path, make: Callable[[str, Path], InnerRun]) -> None:
        self.base, self.make = base, make
        self.started: dict[str, InnerRun] = {}

    def __getitem__(self, name: str) -> InnerRun:
        if name not in self.started:
            self.started[name] = self.make(name, self.base / name)
        return self.started[name]

    def start_selected(self, request: pytest.FixtureRequest, run_of: Callable[[pytest.Function], str]) -> None:
        """Start now the run of every test of the requesting module that this session selected (``run_of``
        names a test's run), unless this process is an xdist worker: it runs only some of those tests."""
        if os.environ.get("PYTEST_XDIST_WORKER"):
            return
        for item in request.session.items:
            if isinstance(item, pytest.Function) and item.module is request.module:
                self[run_of(item)]

    def stop(self) -> None:
        for run in self.started.values():
            run.stop()
