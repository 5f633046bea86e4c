"""Where a run writes: ``reports/<run-id>/``, one journal per process (per xdist worker); and the
scratch folders (twin flash, rig work files) a run keeps under the temp dir, which the next run
sweeps when the run that made them was killed."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
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


# -- scratch folders: temp dirs a run owns, swept by the next run when their owner is dead ---------

SCRATCH_PREFIX = "iot-harness-scratch-"  # not iot-harness-locks (rig claims): never swept
OWNER_FILE = ".harness-owner"


def _start_ticks(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot, /proc/<pid>/stat field 22); None if unknown or gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (IndexError, ValueError):
        return None


def _alive(pid: int, start: int | None) -> bool:
    """Whether the process that wrote an owner file still runs (a reused pid has another start time)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if start is None or not Path("/proc").is_dir():
        return True
    return _start_ticks(pid) == start


def make_scratch(name: str, parent: Path | None = None) -> Path:
    """A fresh temp folder owned by this process (pid and start time in ``.harness-owner``).

    A run removes it when it ends; a run that was killed cannot, and the next run's
    :func:`sweep_scratch` does.
    """
    folder = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{name}-", dir=parent))
    owner = {"pid": os.getpid(), "start": _start_ticks(os.getpid())}
    (folder / OWNER_FILE).write_text(json.dumps(owner), encoding="utf-8")
    return folder


def sweep_scratch(parent: Path | None = None) -> list[Path]:
    """Remove the scratch folders of harness processes that are dead; the folders removed.

    Only folders with a readable owner file are touched: anything else under the temp dir is not ours
    to judge (a folder being made right now gets its owner file a moment later).
    """
    root = Path(parent) if parent is not None else Path(tempfile.gettempdir())
    removed = []
    for folder in sorted(root.glob(f"{SCRATCH_PREFIX}*")):
        try:
            owner = json.loads((folder / OWNER_FILE).read_text(encoding="utf-8"))
            pid, start = int(owner["pid"]), owner.get("start")
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if pid == os.getpid() or _alive(pid, start if isinstance(start, int) else None):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            removed.append(folder)
    return removed
