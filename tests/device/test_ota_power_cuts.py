"""Power cuts at 40+ instants spread over an update (download, flash write, verify, reboot, trial, confirm):
after each, the device boots and runs the old or the new version — never neither.

Seeded; the instants used are printed so a failure can be replayed (``OTA_SWEEP_SEED``).
"""

from __future__ import annotations

import os
import random
import threading

import pytest

pytestmark = pytest.mark.requires("ota", "power", "network")

CUTS = 40
SEED = int(os.environ.get("OTA_SWEEP_SEED", "20261123"))
TERMINAL = ("idle", "committed", "rolled_back", "rejected")


def test_power_cut_sweep_never_leaves_the_device_without_a_version(dut, ota, power, console, network):
    network.apply(rate="8mbit")  # a 1 MiB download takes about a second, like a slow field link
    timed = ota.deploy(ota.build("5.99.0"), expect="committed", timeout=120)
    span = timed.duration + 0.3  # the whole update, job to confirm, plus a little after it
    rng = random.Random(SEED)
    used: list[str] = []
    outcomes: dict[str, int] = {}
    phases_cut: dict[str, int] = {}
    for i in range(CUTS):
        old = dut.version()
        new = f"6.{i}.0"
        job = ota.start(ota.build(new))
        instant = rng.uniform(0.0, span)
        threading.Event().wait(instant)  # the instant of the cut is the injected condition
        where = _phase(console.log_tail(4))
        power.off()
        threading.Event().wait(0.1)
        console.flush_input()
        power.on()
        dut.wait_ready(reason="power-cut")
        running = dut.version()
        used.append(f"{i}:{instant * 1000:.0f}ms({where})")
        phases_cut[where] = phases_cut.get(where, 0) + 1
        assert running in {old, new}, (
            f"cut {i} at {instant * 1000:.0f}ms into the update of {old} -> {new}: device runs {running!r}; "
            f"seed {SEED}, instants so far {' '.join(used)}"
        )
        status = ota.status()
        if status.get("phase") in TERMINAL:  # nothing left running: the job ended before the cut, or was lost
            phase = str(status.get("phase"))
        else:  # a resumed download or trial: follow it to its outcome before the next cut
            phase = ota.finish(job, expect=None, timeout=60).result
        status = ota.status()
        final = dut.version()
        assert final in {old, new}, f"cut {i}: after settling the device runs {final!r}; seed {SEED}"
        if phase == "committed":
            assert final == new, f"cut {i}: reported committed but runs {final!r}"
        if final == old and status.get("phase") not in ("idle", "rejected", "rolled_back", None):
            pytest.fail(f"cut {i}: device silently runs {old} with OTA status {status}; seed {SEED}")
        outcomes[phase] = outcomes.get(phase, 0) + 1
    print(f"OTA power-cut sweep, seed {SEED}: {' '.join(used)}; cut in {phases_cut}; outcomes {outcomes}")
    assert len(phases_cut) >= 4, f"the cuts did not spread over the update's phases: {phases_cut}"
    assert outcomes.get("committed", 0) >= CUTS // 4, f"too few updates survived a cut to commit: {outcomes}"


def _phase(tail: list[str]) -> str:
    """Where the update was when power went: the last OTA or boot line on the console."""
    for line in reversed(tail):
        text = line.removeprefix("twin> ").strip()
        if text.startswith("OTA "):
            return text.split()[1]
        if text.startswith("BOOT") or text.startswith("BOOT-DONE"):
            return "booting"
    return "job"
