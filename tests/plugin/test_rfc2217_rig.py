"""The same device tests, with the console reached over rfc2217:// (an RFC 2217 server in front of the pty)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.run.journal import read_run

ROOT = Path(__file__).resolve().parents[2]


def test_device_suite_passes_over_rfc2217(pytester: pytest.Pytester, tmp_path: Path) -> None:
    result = pytester.runpytest_subprocess(
        str(ROOT / "tests" / "device" / "test_boot.py"),
        "--rig", str(ROOT / "rigs" / "twin-rfc2217.yaml"),
        "--reports-dir", str(tmp_path / "reports"),
        "--rootdir", str(ROOT),
        "-p", "no:cacheprovider",
        "-q",
    )  # fmt: skip
    result.assert_outcomes(passed=7)
    journal = json.dumps(read_run(next((tmp_path / "reports").iterdir())), separators=(",", ":"))
    assert '"console":"rfc2217://127.0.0.1:' in journal, "the console was not reached over RFC 2217"
