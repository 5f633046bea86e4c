"""A run folder, read once: its journal records and its results.json (when the run lived to write it).

Everything a report shows is computed from this, so a report can be rebuilt later, compared with
another run, or made from a run that was killed halfway (no results.json, a torn last line).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.run.journal import journal_files, read_run

PYTEST_INTERRUPTED = 2  # pytest.ExitCode.INTERRUPTED


@dataclass
class RunData:
    """The records (time-ordered, all workers) and results of one run folder."""

    folder: Path
    records: list[dict[str, Any]]
    results: dict[str, Any] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return str(self.results.get("run_id") or self._first("run", "run_id") or self.folder.name)

    @property
    def rig(self) -> str:
        rig = self.results.get("rig")
        if isinstance(rig, dict) and rig.get("name"):
            return str(rig["name"])
        if isinstance(rig, str) and rig:
            return rig
        return str(self._first("run", "rig") or "")

    @property
    def interruption(self) -> dict[str, Any] | None:
        """How the run was stopped, when a signal or Ctrl-C stopped it: ``signal``, ``wall``, ``offset_s``.

        From the journal's ``run interrupted`` record (the first of any worker); a run whose results.json
        says pytest's exit status 2 (interrupted) without such a record gets ``signal: None``.
        """
        rec = next((r for r in self.records if r.get("kind") == "run" and r.get("action") == "interrupted"), None)
        if rec is None:
            saved = self.results.get("interrupted")
            if isinstance(saved, dict):
                return saved
            if self.results.get("exit_status") != PYTEST_INTERRUPTED:
                return None
            rec = {"signal": None, "t": self.finished}
        wall = rec.get("wall", rec.get("t"))
        start = self.started
        return {
            "signal": rec.get("signal"),
            "wall": wall,
            "offset_s": round(float(wall) - start, 3) if isinstance(wall, int | float) and start else None,
        }

    @property
    def status(self) -> str:
        """``complete`` (finished and wrote its exit status), ``interrupted`` (a signal or Ctrl-C stopped
        it; it still wrote what it had) or ``incomplete`` (killed: no exit status, journal only)."""
        if self.interruption is not None:
            return "interrupted"
        return "complete" if self.results.get("exit_status") is not None else "incomplete"

    @property
    def complete(self) -> bool:
        """True when the run finished on its own: the plugin wrote its exit status into results.json.

        That happens at session finish, before the journal's ``run end`` record (written when pytest
        unconfigures), so reports built at the end of a run see it complete. A killed run has no
        results.json, or one rebuilt from the journal with ``exit_status: null``; an interrupted run
        (SIGTERM, Ctrl-C) is not complete either, whatever it had passed so far.
        """
        return self.status == "complete"

    def status_line(self) -> str:
        """One line for the reports: ``complete run``, ``INTERRUPTED run (SIGTERM at ...)`` or ``INCOMPLETE run``."""
        status = self.status
        if status == "complete":
            return "complete run"
        if status == "incomplete":
            return "INCOMPLETE run (rebuilt from the journal as far as written)"
        got = self.interruption or {}
        wall = got.get("wall")
        when = (
            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(wall))) if isinstance(wall, int | float) else "?"
        )
        into = f", {got['offset_s']:g} s into the run" if isinstance(got.get("offset_s"), int | float) else ""
        by = got.get("signal") or "an interruption (pytest exit status 2)"
        return f"INTERRUPTED run (stopped by {by} at {when} wall clock{into}; verdicts as far as it got)"

    @property
    def started(self) -> float | None:
        if isinstance(self.results.get("started"), int | float):
            return float(self.results["started"])
        return float(self.records[0]["t"]) if self.records else None

    @property
    def finished(self) -> float | None:
        if isinstance(self.results.get("finished"), int | float):
            return float(self.results["finished"])
        return float(self.records[-1]["t"]) if self.records else None

    def of(self, *kinds: str) -> list[dict[str, Any]]:
        """Records of the given kinds, in time order."""
        return [r for r in self.records if r.get("kind") in kinds]

    def _first(self, kind: str, key: str) -> Any:
        for r in self.records:
            if r.get("kind") == kind and r.get(key):
                return r[key]
        return None


def resolve_run(ref: str | os.PathLike[str], reports_dir: str | os.PathLike[str] = "reports") -> Path:
    """A run folder given as a path, or as a run id under ``reports_dir``."""
    path = Path(ref)
    if (
        not path.is_dir()
        and not path.is_absolute()
        and len(path.parts) == 1
        and (Path(reports_dir) / path).is_dir()
    ):
        return Path(reports_dir) / path
    return path


def load_run(folder: str | os.PathLike[str]) -> RunData:
    """Read a run folder (or a run id under ``reports/``); one-line ConfigError if missing or corrupt."""
    path = resolve_run(folder)
    if not path.is_dir():
        raise ConfigError(f"run folder {str(folder)!r} not found; expected a folder such as reports/<run-id>")
    journals = journal_files(path)
    results = load_results(path)
    if not journals and not results:
        raise ConfigError(
            f"run folder {str(folder)!r} holds neither journal*.jsonl(.gz) nor results.json; "
            "expected the folder a harness run wrote"
        )
    records = [r for r in read_run(path) if isinstance(r.get("t"), int | float)]
    return RunData(path, records, results)


def load_results(folder: Path) -> dict[str, Any]:
    """results.json as a dict; {} when absent (a killed run); ConfigError when unreadable."""
    path = folder / "results.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(
            f"{path}: not valid JSON ({exc}); expected the results.json a harness run writes"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data
