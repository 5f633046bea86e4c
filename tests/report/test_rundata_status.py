"""A run folder's status: complete, interrupted (by which signal, when) or incomplete (killed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.report.rundata import load_run
from harness.run.journal import Journal


def _run(tmp_path: Path, exit_status: int | None, interrupted: str | None) -> Path:
    folder = tmp_path / "run"
    journal = Journal(folder / "journal.jsonl", run_id="r1", worker="main")
    journal.record("run", t=1000.0, action="start", run_id="r1", rig="twin")
    if interrupted:
        journal.record("run", t=1010.5, action="interrupted", signal=interrupted, wall=1010.25, reason=interrupted)
    journal.record("run", t=1011.0, action="end")
    journal.close()
    if exit_status is not None:
        data = {"run_id": "r1", "started": 1000.0, "finished": 1011.0, "exit_status": exit_status}
        (folder / "results.json").write_text(json.dumps(data))
    return folder


@pytest.mark.parametrize(
    ("exit_status", "signal", "status", "line"),
    [
        (0, None, "complete", "complete run"),
        (1, None, "complete", "complete run"),  # finished with failures is still a finished run
        (None, None, "incomplete", "INCOMPLETE run (rebuilt from the journal as far as written)"),
        (2, "SIGTERM", "interrupted",
         "INTERRUPTED run (stopped by SIGTERM at 1970-01-01T00:16:50Z wall clock, 10.25 s into the run; "
         "verdicts as far as it got)"),
        (None, "SIGINT", "interrupted",  # died during its teardown: the journal still says why it stopped
         "INTERRUPTED run (stopped by SIGINT at 1970-01-01T00:16:50Z wall clock, 10.25 s into the run; "
         "verdicts as far as it got)"),
        (2, None, "interrupted",  # pytest's own 'interrupted' without our record (e.g. collection errors)
         "INTERRUPTED run (stopped by an interruption (pytest exit status 2) at 1970-01-01T00:16:51Z wall "
         "clock, 11 s into the run; verdicts as far as it got)"),
    ],
)  # fmt: skip
def test_status_of_a_run(tmp_path: Path, exit_status: int | None, signal: str | None, status: str, line: str) -> None:
    run = load_run(_run(tmp_path, exit_status, signal))
    assert run.status == status
    assert run.complete is (status == "complete")
    assert run.status_line() == line
