"""Fixtures: recorded soak runs of the twin, written fresh into tmp_path by ``twinlog``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.report.build import Built, build
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


@pytest.fixture(scope="module")
def built_soak(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Truth, Built]:
    """The same soak, with every report built once per module (read-only for the tests using it)."""
    folder = tmp_path_factory.mktemp("reports") / "20261123-010000-bbbb"
    truth = write_soak(folder, SoakSpec())
    before = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    (folder / "plugin-results.json").write_text(json.dumps(before), encoding="utf-8")
    return folder, truth, build(folder)


@pytest.fixture
def killed_run(reports: Path) -> tuple[Path, Truth]:
    """A 6 h soak killed mid-record: torn last line, no run end, no results.json."""
    folder = reports / "20261123-020000-dead"
    return folder, write_soak(folder, SoakSpec(hours=6.0), truncate=True)
