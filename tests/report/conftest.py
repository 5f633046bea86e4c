"""Fixtures: recorded soak runs of the twin, written fresh into tmp_path by ``twinlog``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.report.twinlog import SoakSpec, Truth, write_soak


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    path = tmp_path / "reports"
    path.mkdir()
    return path


@pytest.fixture
def soak_run(reports: Path) -> tuple[Path, Truth]:
    """A finished 24 h soak: 200 B/h leak, partition, profile change, power cut, OTA, one watchdog reset."""
    folder = reports / "20261123-010000-aaaa"
    return folder, write_soak(folder, SoakSpec())


@pytest.fixture
def killed_run(reports: Path) -> tuple[Path, Truth]:
    """A 6 h soak killed mid-record: torn last line, no run end, no results.json."""
    folder = reports / "20261123-020000-dead"
    return folder, write_soak(folder, SoakSpec(hours=6.0), truncate=True)
