"""Fixtures of the reference device suite."""

from __future__ import annotations

import pytest


@pytest.fixture
def fresh_boot(dut):
    """A boot that starts inside the test (list it before ``telemetry``), so every seq of it is accounted.

    (A boot already running when the view began is accounted from where the collector stood then.)
    """
    return dut.reboot()


QUICK_HEALTH_WINDOW = "1"  # s: a never-healthy trial fails its checks at the first poll; one second proves it


@pytest.fixture
def quick_health_window(dut):
    """A short trial health window, where the profile names its setting, for an image that never becomes
    healthy: each of its trial boots waits the window out before the watchdog reset, so the default
    (5 s on the twin, three trial boots) only lengthened the wait for the same rollback."""
    key = dut.profile.health_window_key
    if key is None:
        yield None
        return
    dut.set_config(key, QUICK_HEALTH_WINDOW)
    yield key
    dut.command(f"config del {key}")
