"""Power cuts at random instants, and settings that must survive them."""

from __future__ import annotations

import random
import re
import threading

import pytest

pytestmark = pytest.mark.requires("console", "power")

CYCLES = 50
PHASES = ("boot", "idle", "mid-command")


def _cut_at(instant: float) -> None:
    # The instant of a power cut is the injected condition: wait it out on purpose.
    threading.Event().wait(instant)


SEED = 20261123


def test_fifty_power_cuts_at_random_instants_all_boot_back(dut, power, console):
    rng = random.Random(SEED)
    used: list[str] = []
    for i in range(CYCLES):
        phase = PHASES[i % len(PHASES)]
        instant = rng.uniform(0.0, 0.08)
        if phase == "boot":  # the instant counts from power-on: process start, bootloader, app start
            dut.power_off()
            power.on()
        elif phase == "mid-command":
            console.sendline("dump 2000000")
            console.expect(re.compile(r"^\d{8} ", re.M), timeout=10)
        _cut_at(instant)
        used.append(f"{i}:{phase}+{instant * 1000:.1f}ms")
        boot = dut.power_cycle()
        assert boot.seconds < dut.profile.boot_timeout, f"cycle {i} ({used[-1]}) booted too slowly"
        assert dut.is_responsive(), f"cycle {i} ({used[-1]}): no prompt after the boot; seed {SEED}"
    print(f"power-cut instants (seed {SEED}): {' '.join(used)}")
    assert len(dut.boots) >= CYCLES


def test_config_survives_power_cycles(dut):
    value = f"v{random.Random().randrange(10**6)}"
    dut.set_config("suite.marker", value)
    for _ in range(3):
        dut.power_cycle()
        assert dut.command("config get suite.marker").strip() == f"suite.marker={value}"


def test_config_write_cut_keeps_old_or_new_value(dut, power, console):
    """Cut power right after a config write is sent: the value read back is the old or the new one."""
    dut.set_config("suite.cut", "old")
    rng = random.Random(7)
    for i in range(10):
        console.sendline(f"config set suite.cut new{i}")
        _cut_at(rng.uniform(0.0, 0.01))
        dut.power_cycle()
        got = dut.command("config get suite.cut").strip()
        assert got in {"suite.cut=old", f"suite.cut=new{i}"} | {f"suite.cut=new{j}" for j in range(i)}, got
