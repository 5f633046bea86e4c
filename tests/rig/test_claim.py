"""Bench claims: one process per board, all of a rig's resources or none, freed when the holder dies."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from harness.rig.claim import RigBusy, claim_one, holders, resource_keys, try_claim
from harness.rig.spec import RigSpec

WHO = {"worker": "gw9", "run_id": "test-run"}


def bench(name: str, console: str | None, power: str | None = None, channel: int = 1) -> RigSpec:
    data: dict = {"name": name}
    if console:
        data["console"] = {"url": console}
    if power:
        data["power"] = {"resource": power, "channel": channel}
    return RigSpec.model_validate(data)


def claim(specs: list[RigSpec], lock_dir: Path, timeout: float = 0.0, start: int = 0):
    return claim_one(specs, resource_keys, lambda s: s.name, lock_dir=lock_dir, who=WHO, timeout=timeout,
                     start=start)  # fmt: skip


def test_keys_name_the_hardware_and_a_twin_or_loop_has_none(tmp_path: Path) -> None:
    tty = tmp_path / "ttyUSB0"
    tty.touch()
    alias = tmp_path / "usb-FTDI_board-if00"
    alias.symlink_to(tty)
    assert resource_keys(bench("a", str(alias))) == resource_keys(bench("b", str(tty)))  # one board, two names
    assert resource_keys(bench("c", "rfc2217://Lab3:4001", "TCPIP::psu::5025::SOCKET", 2)) == [
        "console rfc2217://lab3:4001", "power TCPIP::psu::5025::SOCKET channel 2"]
    assert resource_keys(bench("d", "loop://")) == []
    assert resource_keys(RigSpec.model_validate({"name": "t", "twin": {}})) == []


def test_a_claimed_rig_is_not_claimed_again_and_the_next_member_is(tmp_path: Path) -> None:
    a, b = bench("a", "socket://127.0.0.1:4001"), bench("b", "socket://127.0.0.1:4002")
    first = claim([a, b], tmp_path)
    second = claim([a, b], tmp_path)
    assert (first.candidate.name, second.candidate.name) == ("a", "b")
    with pytest.raises(RigBusy) as info:
        claim([a, b], tmp_path, timeout=0.2)
    message = str(info.value)
    assert "\n" not in message and "no rig free after waiting 0.2s" in message
    assert f"a held by worker gw9 of run test-run (pid {os.getpid()} on " in message
    first.release()
    assert claim([a, b], tmp_path).candidate.name == "a"


def test_all_of_a_rigs_resources_or_none(tmp_path: Path) -> None:
    # Two boards on two consoles but one supply channel: they cannot run at once.
    a = bench("a", "socket://h:1", "TCPIP::psu::5025::SOCKET", 1)
    b = bench("b", "socket://h:2", "TCPIP::psu::5025::SOCKET", 1)
    held = claim([a], tmp_path)
    assert try_claim(b, resource_keys(b), tmp_path, WHO) is None
    assert [h.key for h in holders(resource_keys(b), tmp_path)] == ["power TCPIP::psu::5025::SOCKET channel 1"]
    # b's console lock was given back when its supply lock failed: a rig on that console alone is free.
    assert try_claim(bench("c", "socket://h:2"), ["console socket://h:2"], tmp_path, WHO) is not None
    held.release()
    c = bench("d", "socket://h:1", "TCPIP::psu::5025::SOCKET", 2)  # the supply's other channel
    assert claim([a], tmp_path) and try_claim(c, resource_keys(c), tmp_path, WHO) is None  # console shared


def test_a_waiting_claim_gets_the_rig_when_it_is_released(tmp_path: Path) -> None:
    a = bench("a", "socket://h:1")
    held = claim([a], tmp_path)
    waits: list[str] = []
    reported = threading.Event()
    got: list = []

    def on_wait(busy: str) -> None:
        waits.append(busy)
        reported.set()

    waiter = threading.Thread(target=lambda: got.append(claim_one(
        [a], resource_keys, lambda s: s.name, lock_dir=tmp_path, who=WHO, timeout=30, on_wait=on_wait)))
    waiter.start()
    try:
        assert reported.wait(10), "the waiting claim never said whom it waits for"
        assert "a held by worker gw9" in waits[0]
        held.release()
    finally:
        waiter.join(timeout=30)
    assert got and got[0].candidate.name == "a" and got[0].waited > 0


def test_the_kernel_frees_the_claim_of_a_process_that_died(tmp_path: Path) -> None:
    code = (
        "import sys; from harness.rig.claim import try_claim; "
        "c = try_claim('x', ['console socket://h:9'], __import__('pathlib').Path(sys.argv[1]), {'worker': 'gw1'}); "
        "print('held' if c else 'busy', flush=True); sys.stdin.read()"
    )
    child = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        assert try_claim("y", ["console socket://h:9"], tmp_path, WHO) is None
        assert holders(["console socket://h:9"], tmp_path)[0].info["worker"] == "gw1"
    finally:
        child.kill()
        child.wait(timeout=10)
    assert try_claim("y", ["console socket://h:9"], tmp_path, WHO) is not None
