"""Where a run writes: ``reports/<run-id>/``, one journal per process (per xdist worker)."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

RUN_ID_ENV = "HARNESS_RUN_ID"


def new_run_id() -> str:
    """``20261123-004512-3fa9``: sortable by start time, unique across parallel runs."""
    return time.strftime("%Y%m%d-%H%M%S", time.localtime()) + "-" + secrets.token_hex(2)


def pick_run_id(explicit: str | None = None) -> str:
    return explicit or os.environ.get(RUN_ID_ENV) or new_run_id()


def journal_name(worker: str) -> str:
    return f"journal-{worker}.jsonl" if worker and worker != "main" else "journal.jsonl"


def run_folder(reports_dir: Path, run_id: str) -> Path:
    return reports_dir / run_id
