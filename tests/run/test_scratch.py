"""Scratch folders of dead runs are swept at the next start; live or foreign ones are left alone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from harness.run.runfolder import OWNER_FILE, SCRATCH_PREFIX, make_scratch, sweep_scratch


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(10)
    return proc.pid


def _folder(root: Path, name: str, owner: dict[str, object] | None) -> Path:
    folder = root / f"{SCRATCH_PREFIX}{name}"
    folder.mkdir()
    (folder / "twin-flash.bin").write_bytes(b"\xff" * 16)
    if owner is not None:
        (folder / OWNER_FILE).write_text(json.dumps(owner))
    return folder


def test_sweep_removes_only_folders_whose_owner_is_dead(tmp_path: Path) -> None:
    mine = make_scratch("rig-main", parent=tmp_path)
    dead = _folder(tmp_path, "rig-dead", {"pid": _dead_pid(), "start": 1})
    reused = _folder(tmp_path, "rig-reused", {"pid": 1, "start": -5})  # pid 1 lives, but started otherwise
    live = _folder(tmp_path, "rig-live", {"pid": 1, "start": None})
    foreign = _folder(tmp_path, "not-ours", None)
    other = tmp_path / "harness-rig-main-old"
    other.mkdir()
    assert sorted(sweep_scratch(tmp_path)) == sorted([dead, reused])
    assert mine.is_dir() and live.is_dir() and foreign.is_dir() and other.is_dir()
    assert not dead.exists() and not reused.exists()
    assert json.loads((mine / OWNER_FILE).read_text())["pid"] > 0
