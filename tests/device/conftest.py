"""Fixtures of the reference device suite."""

from __future__ import annotations

import pytest


@pytest.fixture
def fresh_boot(dut):
    """A boot that starts inside the test (list it before ``telemetry``), so every seq of it is accounted.

    (A boot already running when the view began is accounted from where the collector stood then.)
    """
    return dut.reboot()
