"""A test's own ``dut.reboot()`` is a reboot the harness asked for: its JUnit properties say
``harness.reboots.unexpected`` 0 (they said 1), the same as the soak report."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

TEST = """
def test_reboots_the_device(dut):
    dut.ensure_ready()
    dut.reboot()
"""


def test_a_tests_own_reboot_is_not_unexpected(pytester: pytest.Pytester, tmp_path: Path) -> None:
    pytester.makepyfile(test_reboot=TEST)
    result = pytester.runpytest_subprocess(
        "--junitxml", str(tmp_path / "junit.xml"), "--reports-dir", str(tmp_path / "reports"), "--run-id", "r",
        "--rootdir", str(ROOT), "-p", "no:cacheprovider", "-p", "no:allure_pytest", "-p", "no:xdist",
    )  # fmt: skip
    result.assert_outcomes(passed=1)
    props = {p.get("name"): p.get("value") for p in ET.parse(tmp_path / "junit.xml").iter("property")}
    assert props["harness.reboots.unexpected"] == "0", props
    assert int(props["harness.reboots.total"]) >= 1
