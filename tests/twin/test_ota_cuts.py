"""Power cuts at every persistent write of an OTA update: the device always boots, and tells the truth.

A reference update (download 1.0.0 -> 2.0.0 into slot B, verify, arm, trial boot, confirm) makes N
program-unit writes. For every k in 1..N the update runs again with power cut right after the k-th
write (the pump drops the rest), and the flash as written must hold:

* a bootable slot, and the one expected: 1.0.0 in slot A before the arm point, a trial boot of 2.0.0
  in slot B between the arm point and the commit point, 2.0.0 in slot B (confirmed) after it;
* a valid boot-control record (the newest valid copy is consistent: a trial is unconfirmed);

then the device boots from those bytes and runs to the end (the download resumes from the last
checkpointed page, never earlier) and must finish with 2.0.0 committed in slot B, and an OTA
status that says so. Random stacked cuts (a second cut during the recovery) are seeded; the seed is
printed. The same sweep run against a deliberately unsafe client (it downloads over the *running*
slot) must fail: that is the proof the sweep can fail at all.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from harness.ota import KeyPair, build_signed_image
from harness.twin.bootloader import decide_boot
from harness.twin.flash import Flash
from harness.twin.ota_client import OtaAgent
from harness.twin.ota_record import read_job
from harness.twin.records import read_bootctl

from .ota_pump import LAYOUT, PAYLOAD, URL, OtaPump, apply_line, provisioned_flash
from .pump import PowerCut

KEYS = KeyPair.ephemeral()
IMAGE = build_signed_image("2.0.0", KEYS, size=PAYLOAD, security_counter=2).data
OLD = ("A", "1.0.0")
NEW = ("B", "2.0.0")
STACKED_TRIALS = 40


@dataclass(frozen=True)
class Reference:
    base: bytes  # flash after the first boot, before the update
    writes: int  # N: program units the update writes
    arm: int  # first k after which boot control holds the trial
    commit: int  # first k after which boot control holds the new slot, confirmed


def booted(flash: bytes, budget: int | None = None) -> OtaPump:
    pump = OtaPump(bytearray(flash), layout=LAYOUT, write_budget=budget)
    pump.http.publish(URL, IMAGE)
    return pump


def reference() -> Reference:
    pump = booted(bytes(provisioned_flash(KEYS.public_raw)))
    pump.boot()
    base = bytes(pump.flash)
    first = len(pump.writes)
    text = pump.type(apply_line(URL, IMAGE, "2.0.0"))
    assert "OTA committed 2.0.0" in text, text
    writes = pump.writes[first:]
    mirror = Flash(base, LAYOUT)
    arm = commit = 0
    for k, write in enumerate(writes, 1):
        mirror.program(write.offset, write.data)
        record = read_bootctl(mirror) if write.offset < 2 * LAYOUT.page_size else None
        if record is not None and record.trial_slot == "B" and not arm:
            arm = k
        if record is not None and record.active_slot == "B" and record.confirmed and not commit:
            commit = k
    assert 0 < arm < commit <= len(writes)
    return Reference(base, len(writes), arm, commit)


def cut_update(base: bytes, k: int) -> bytes:
    """Boot, start the update, and cut the power right after the k-th write; the flash as written."""
    pump = booted(base)
    pump.boot()
    pump.write_budget = k  # the k writes happen; power dies before the next one (k = N: after the last)
    try:
        pump.type(apply_line(URL, IMAGE, "2.0.0"))
    except PowerCut:
        pass
    else:
        assert not pump.writes or pump.write_budget == 0, f"the update wrote fewer than {k} units"
    return bytes(pump.flash)


def static_problems(flash: bytes, expect: tuple[str, str] | None, trial: bool | None) -> list[str]:
    """What is wrong with the flash as a power cut left it (empty: nothing)."""
    mirror = Flash(flash, LAYOUT)
    problems = []
    record = read_bootctl(mirror)
    if record is None:
        problems.append("no valid boot-control record")
    elif record.trial_slot is not None and record.confirmed:
        problems.append(f"boot control inconsistent: trial of {record.trial_slot} marked confirmed")
    decision = decide_boot(mirror, "power-on")
    if decision.slot is None or decision.image is None:
        return [*problems, "no bootable slot: " + " / ".join(decision.log)]
    got = (decision.slot, decision.image.version)
    if expect is not None and got != expect:
        problems.append(f"boots {got}, expected {expect}")
    is_trial = any("trial boot of slot" in line for line in decision.log)
    if trial is not None and is_trial != trial:
        problems.append(f"trial boot {is_trial}, expected {trial}")
    return problems


def final_problems(pump: OtaPump, *, accepted: bool = True) -> list[str]:
    """After the recovery ran to the end: 2.0.0 committed in B, and the status says exactly that.

    ``accepted=False``: the power went before the job record was complete (the job was never
    accepted; ``ota apply`` had not answered): 1.0.0 in A and no job at all.
    """
    problems = []
    if pump.device is None or pump.halted:
        return [f"device not running (halted: {pump.halted})"]
    device = pump.device
    got = (device.slot, device.image.version if device.image else "?")
    mirror = Flash(bytes(pump.flash), LAYOUT)
    record, job = read_bootctl(mirror), read_job(mirror)
    want = NEW if accepted else OLD
    if got != want:
        problems.append(f"runs {got} after recovery, expected {want}")
    if record is None or (record.active_slot, record.trial_slot, record.confirmed) != (want[0], None, True):
        problems.append(f"boot control after recovery: {record}")
    if accepted and (job is None or (job.phase, job.version) != ("committed", "2.0.0")):
        problems.append(f"OTA status after recovery: {job}")
    if not accepted and job is not None:
        problems.append(f"a job nobody accepted after recovery: {job}")
    if job is not None and job.phase == "committed" and got[1] != job.version:
        problems.append(f"OTA status lies: says committed {job.version}, runs {got[1]}")
    if job is not None and job.phase == "rolled_back" and got[1] == job.version:
        problems.append(f"OTA status lies: says rolled_back, runs {got[1]}")
    return problems


def recover(flash: bytes, budget: int | None = None) -> OtaPump:
    pump = booted(flash, budget)
    pump.boot()
    return pump


def sweep(ref: Reference) -> Iterator[str]:
    """Every invariant violation of every cut point, as lines."""
    for k in range(1, ref.writes + 1):
        try:
            flash = cut_update(ref.base, k)
        except Exception as exc:  # an unsafe build may break anywhere: a finding
            yield f"cut {k}: the update itself failed: {exc!r}"
            continue
        expect, trial = (OLD, False) if k < ref.arm else ((NEW, True) if k < ref.commit else (NEW, False))
        for problem in static_problems(flash, expect, trial):
            yield f"cut after write {k}/{ref.writes}: {problem}"
        job = read_job(Flash(flash, LAYOUT))
        try:
            pump = recover(flash)
        except Exception as exc:
            yield f"cut {k}: recovery raised {exc!r}"
            continue
        for problem in final_problems(pump, accepted=job is not None):
            yield f"cut after write {k}/{ref.writes}, then recovery: {problem}"
        if job is not None and job.phase == "downloading" and pump.http.requests:
            resumed = pump.http.requests[0].range_start
            if resumed != job.pages * LAYOUT.page_size:
                yield f"cut {k}: checkpoint says {job.pages} pages, recovery asked from byte {resumed}"


def test_every_single_power_cut_during_an_update_is_survived() -> None:
    ref = reference()
    assert 200 < ref.writes < 1000  # 17 pages x (16 units + checkpoint) + arm, trial boot, commit
    problems = list(sweep(ref))
    assert not problems, f"{len(problems)} violations, first ones:\n" + "\n".join(problems[:20])


def test_stacked_power_cuts_during_the_recovery_are_survived() -> None:
    seed = int(os.environ.get("OTA_CUT_SEED", random.randrange(2**32)))
    print(f"stacked power cuts: seed {seed} (rerun with OTA_CUT_SEED={seed})")
    rng = random.Random(seed)
    ref = reference()
    second_cuts = 0
    for trial in range(STACKED_TRIALS):
        k1, k2 = rng.randint(1, ref.writes), rng.randint(1, ref.writes // 2)
        where = f"seed {seed}, trial {trial}: cut after write {k1}, then after {k2} more"
        pump = booted(cut_update(ref.base, k1), budget=k2)
        try:
            pump.boot()
        except PowerCut:
            second_cuts += 1
        flash = bytes(pump.flash)
        problems = static_problems(flash, None, None)
        problems += final_problems(recover(flash), accepted=read_job(Flash(flash, LAYOUT)) is not None)
        assert not problems, f"{where}: " + "; ".join(problems)
    assert second_cuts > STACKED_TRIALS // 4, f"seed {seed}: only {second_cuts} recoveries were cut"


def test_the_sweep_catches_a_client_that_writes_over_the_running_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    ref = reference()  # what a safe client does, and where its arm and commit points are
    monkeypatch.setattr(OtaAgent, "unsafe_write_active", True)
    pump = booted(ref.base)
    pump.boot()
    assert "OTA committed 2.0.0" in pump.type(apply_line(URL, IMAGE, "2.0.0"))  # uncut, the unsafe build "works"
    problems = list(sweep(ref))
    print(f"unsafe build: {len(problems)} violations over {ref.writes} cut points, e.g. {problems[:2]}")
    bricked = [p for p in problems if "no bootable slot" in p]
    assert len(bricked) > ref.writes // 2, problems[:5]
