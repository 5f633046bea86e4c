"""Baselines: a run promoted to be what later runs are compared against, kept under ``reports/baselines/``.

A baseline is a copy of the run's journal(s) and results.json (rebuilt first, so it carries metrics)
plus ``baseline.json`` saying which run it came from and when. Promoting again replaces it whole.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

from harness.errors import ConfigError
from harness.report.analysis import analyze
from harness.report.results import write_results
from harness.report.rundata import load_run, resolve_run
from harness.run.journal import journal_files

BASELINES = "baselines"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def baselines_dir(run_folder: Path) -> Path:
    """``reports/baselines`` for a run in ``reports/<run-id>``."""
    return run_folder.resolve().parent / BASELINES


def promote(run_folder: Path, name: str | None = None, *, force: bool = False) -> Path:
    """Make ``run_folder`` the baseline ``name`` (default: the run's rig name); returns its folder."""
    run = load_run(run_folder)
    if not run.complete and not force:
        raise ConfigError(
            f"run {run.run_id!r} did not finish (no exit status in results.json); "
            "a baseline should be a complete run (pass --force to promote it anyway)"
        )
    name = name or run.rig or "default"
    if not _NAME.fullmatch(name):
        raise ConfigError(f"baseline name {name!r}: expected letters, digits, '.', '_' or '-' (e.g. 'twin')")
    write_results(analyze(run))
    root = baselines_dir(run.folder)
    root.mkdir(parents=True, exist_ok=True)
    staging = root / f".{name}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    for path in [*journal_files(run.folder), run.folder / "results.json"]:
        shutil.copy2(path, staging / path.name)
    info = {
        "name": name,
        "run_id": run.run_id,
        "rig": run.rig,
        "promoted": time.time(),
        "source": run.folder.name,
    }
    (staging / "baseline.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    target = root / name
    old = root / f".{name}.old"
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return target


def resolve_baseline(ref: str, run_folder: Path) -> Path:
    """A baseline given as a run folder or run id, or as a name under ``reports/baselines/``."""
    path = resolve_run(ref)
    if path.is_dir():
        return path
    named = baselines_dir(run_folder) / ref
    if _NAME.fullmatch(ref) and named.is_dir():
        return named
    root = baselines_dir(run_folder)
    known = (
        sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if root.is_dir()
        else []
    )
    listed = ", ".join(known) if known else "none promoted yet (harness report promote RUN)"
    raise ConfigError(
        f"baseline {ref!r} not found: expected a run folder or a baseline name in {root.name}/ "
        f"(available: {listed})"
    )
