"""Power cuts at 40+ instants spread over an update (download, flash write, verify, reboot, trial, confirm):
after each, the device boots and runs the old or the new version — never neither.

The sweep is stratified. One timed deployment measures the phases (``outcome.timings``, and the device's
status reports for the download's progress); then every stratum gets the same number of cuts, spread
evenly over its window of that timeline with a seeded offset in each share. A cut is aimed from the
latest status report of the job that arrives in time (the device's own timestamp of it) and sent early
by the supply's lead: half the time ``power.off()`` takes, since the output goes off between the
command and the error check after it. Where a cut landed is read from the device afterwards: the
furthest phase it had announced, on its console before the cut or in a status report it stamped before
the supply had switched off. Seeded; the instants used are printed so a failure can be replayed
(``OTA_SWEEP_SEED``): ``<cut>:<stratum>@<aim, ms on the timed timeline>(<report aimed from>+<off
command sent>..<done>, ms)=<phase it landed in>``.

Two phases are too short to aim at by wall time. The reference firmware verifies and arms in one step:
``verifying_s`` is 0, and the ``verifying`` and ``rebooting`` announcements come within a millisecond or
two. The verify stratum straddles that instant; most of its cuts land in the last page writes or the
reboot, and only now and then one in ``verifying`` itself, so the spread check does not count on it.
The job phase lasts a millisecond on a fast link, so its stratum slows the MQTT downlink only: the job
is still on its way to the device when the power goes.
"""

from __future__ import annotations

import os
import random
import re
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from harness.errors import ExpectTimeout

pytestmark = pytest.mark.requires("ota", "power", "network")

PER_STRATUM = 6
STRATA = ("job", "download", "flash-write", "verify", "reboot", "trial", "confirm")
CUTS = PER_STRATUM * len(STRATA)  # 42
SEED = int(os.environ.get("OTA_SWEEP_SEED", "20261123"))
JOB_DELAY = 0.25  # s the job stratum adds to the MQTT downlink (the job's way to the device)
ALLOW = 0.02  # s either side of an instant too short to aim at (verify, the commit point)
ARRIVAL = 0.03  # s a status report may take to reach the harness: aim only from reports older than that
ANCHOR_TIMEOUT = 30.0
RETYPE_AFTER = 3.0  # s without an answer to the version query before asking again (see _running)
MIN_PHASES = 5  # job, downloading, rebooting, trial, committed (verifying only by chance, see above)
ORDER = ("job", "downloading", "verifying", "rebooting", "trial", "committed", "rolled_back", "rejected", "failed")


class Anchor:
    """A status report to aim from: which one, and when it came in the timed deployment (s after the
    download began)."""

    def __init__(self, label: str, at: float, match: Callable[[Any], bool]) -> None:
        self.label, self.at, self.match = label, at, match


def test_power_cut_sweep_never_leaves_the_device_without_a_version(dut, ota, power, console, network):
    network.apply(rate="16mbit")  # a 1 MiB download takes about half a second: windows of a quarter second each
    timed = ota.deploy(ota.build("5.99.0"), expect="committed", timeout=120)
    if timed.via != "mqtt":
        pytest.skip(f"the sweep aims its cuts from the device's MQTT status reports; this profile updates over "
                    f"the {timed.via}")  # fmt: skip
    windows, anchors = _timeline(timed.timings, ota.reports(timed.job_id))
    rng = random.Random(SEED)
    cuts = [(name, (share + rng.random()) / PER_STRATUM) for name in STRATA for share in range(PER_STRATUM)]
    rng.shuffle(cuts)
    leads = [_lead(dut, power, console)]
    shown = " ".join(f"{name} {lo * 1000:.0f}..{hi * 1000:.0f}" for name, (lo, hi) in windows.items())
    print(f"OTA power-cut sweep, seed {SEED}: timings {timed.timings}; windows (ms after the download began, "
          f"job: after it was sent) {shown}; supply lead {leads[0] * 1000:.0f}ms")  # fmt: skip
    used: list[str] = []
    outcomes: dict[str, int] = {}
    phases_cut: dict[str, int] = {}
    for i, (stratum, fraction) in enumerate(cuts):
        old = dut.version()
        new = f"6.{i}.0"
        lo, hi = windows[stratum]
        target = lo + fraction * (hi - lo)  # when the output should go off, on the timed deployment's timeline
        lead = statistics.median(leads)
        image = ota.build(new)
        if stratum == "job":  # the timeline starts when the job is sent
            with network.impaired(service="mqtt", direction="down", latency=f"{JOB_DELAY * 1000:.0f}ms"):
                job = ota.start(image)
                label, start = "sent", time.time()
                off_at, off_by = _cut_at(power, start + target - lead)
        else:
            job = ota.start(image)
            anchor = _anchor(anchors, target - lead)
            report = ota.jobs.wait_for(ota.device, job.job_id, anchor.match, ANCHOR_TIMEOUT)
            if report is None:
                pytest.fail(f"cut {i} ({stratum}): no {anchor.label!r} report of {new} within {ANCHOR_TIMEOUT:g}s; "
                            f"reports {[str(r) for r in ota.reports(job.job_id)]}; seed {SEED}")  # fmt: skip
            label, start = anchor.label, report.when
            off_at, off_by = _cut_at(power, start + target - lead - anchor.at)
        leads.append((off_by - off_at) / 2)
        threading.Event().wait(0.1)
        console.flush_input()
        said = console.timed_lines_since(job.mark)  # all the device said before the power went
        power.on()
        dut.wait_ready(reason="power-cut")
        running = _running(dut)
        instant = (f"{i}:{stratum}@{target * 1000:.0f}ms({label}+{(off_at - start) * 1000:.0f}.."
                   f"{(off_by - start) * 1000:.0f})")  # fmt: skip
        assert running in {old, new}, (
            f"cut {i} at {instant} into the update of {old} -> {new}: device runs {running!r}; "
            f"seed {SEED}, instants so far {' '.join(used)}"
        )
        # Follow the job to its outcome over MQTT before typing anything else: a resumed download or
        # trial goes on by itself (a reboot into the trial eats whatever is typed meanwhile); a job that
        # ended before the cut has its outcome reported already, or again when the device reconnects to
        # the retained job; a job still on its way when the power went (retained) runs now.
        phase = ota.finish(job, expect=None, timeout=60).result
        status = ota.status()
        final = dut.version()
        where = _landed(dut.profile, said, ota.reports(job.job_id), off_by)  # reports in flight have arrived
        used.append(f"{instant}={where}")
        phases_cut[where] = phases_cut.get(where, 0) + 1
        assert final in {old, new}, f"cut {i}: after settling the device runs {final!r}; seed {SEED}"
        if phase == "committed":
            assert final == new, f"cut {i}: reported committed but runs {final!r}"
        if final == old and status.get("phase") not in ("idle", "rejected", "rolled_back", None):
            pytest.fail(f"cut {i}: device silently runs {old} with OTA status {status}; seed {SEED}")
        outcomes[phase] = outcomes.get(phase, 0) + 1
    print(f"OTA power-cut sweep, seed {SEED}: {' '.join(used)}; cut in {phases_cut}; outcomes {outcomes}")
    assert len(phases_cut) >= MIN_PHASES, (
        f"the cuts landed in {len(phases_cut)} phases, expected at least {MIN_PHASES}: {phases_cut}; seed {SEED}"
    )
    assert outcomes.get("committed", 0) >= CUTS // 4, f"too few updates survived a cut to commit: {outcomes}"


def _timeline(timings: dict[str, float], reports: list[Any]) -> tuple[dict[str, tuple[float, float]], list[Anchor]]:
    """The strata's windows and the reports to aim from, in seconds after the download began (the job
    stratum's window: after the job was sent), from the timed deployment."""
    missing = [k for k in ("downloading_s", "rebooting_s", "trial_s") if timings.get(k, 0.0) <= 0]
    assert not missing, f"the timed deployment did not measure {missing}: timings {timings}"
    verify = timings["downloading_s"]
    reboot = verify + timings.get("verifying_s", 0.0)
    trial = reboot + timings["rebooting_s"]
    commit = trial + timings["trial_s"]
    progress = [r for r in reports if r.phase == "downloading"]
    assert progress, f"the timed deployment reported no download progress: {[str(r) for r in reports]}"
    began = progress[0].when
    anchors = [Anchor(f"{r.percent}%", r.when - began, lambda x, p=r.percent: x.phase == "downloading" and x.percent >= p)
               for r in progress]  # fmt: skip
    anchors += [Anchor(name, at, lambda x, name=name: x.phase == name)
                for name, at in (("verifying", verify), ("trial", trial), ("committed", commit))]  # fmt: skip
    windows = {
        "job": (0.0, JOB_DELAY * 0.6),
        "download": (0.0, verify / 2),
        "flash-write": (verify / 2, verify),
        "verify": (verify - ALLOW, reboot + ALLOW),
        "reboot": (reboot, trial),
        "trial": (trial, commit - ALLOW),
        "confirm": (commit - 2 * ALLOW, commit + 4 * ALLOW),  # the commit point and the record after it
    }
    return windows, anchors


def _anchor(anchors: list[Anchor], send: float) -> Anchor:
    """The latest report that comes in time to send the cut at ``send`` (the first one if none does)."""
    early = [a for a in anchors if a.at <= send - ARRIVAL]
    return max(early, key=lambda a: a.at) if early else anchors[0]


def _lead(dut: Any, power: Any, console: Any) -> float:
    """How long before ``power.off()`` returns the output goes off (half the call), from one power cycle."""
    sent = time.time()
    power.off()
    lead = (time.time() - sent) / 2
    threading.Event().wait(0.1)
    console.flush_input()
    power.on()
    dut.wait_ready(reason="power-cut")
    return lead


def _cut_at(power: Any, when: float) -> tuple[float, float]:
    """Switch the output off at Unix time ``when`` (at once if that has passed); returns when the call
    began and when the supply had done it."""
    threading.Event().wait(max(0.0, when - time.time()))  # the instant of the cut is the injected condition
    sent = time.time()
    power.off()
    return sent, time.time()


def _running(dut: Any) -> str:
    """The version the device runs right after the cut. A device that goes on with its update at boot
    (the end of a resumed download, or a fully written image to verify) reboots into the trial by itself,
    and a command typed at that moment is lost: after a short wait for the answer, ask again (the device
    is back by then)."""
    query = dut.profile.version
    try:
        answer = re.search(query.pattern, dut.command(query.command, timeout=RETYPE_AFTER))
    except ExpectTimeout:
        answer = None
    return answer.group("version") if answer else str(dut.version())


def _landed(profile: Any, said: list[tuple[float, str]], reports: list[Any], off_by: float) -> str:
    """Where the update was when the power went: the furthest phase the device had announced, on its
    console (every line it wrote before the cut; a line goes out before the report) or in a status
    report it stamped before the supply had switched off (a report in flight when the power went is
    lost). ``job`` if it had announced nothing of this job yet."""
    phases = ["job"]
    phases += [r.phase for r in reports if r.when <= off_by]
    for _, line in said:
        text = line
        while text.startswith(profile.prompt):
            text = text[len(profile.prompt) :]
        if m := re.search(profile.ota_phase, text):
            phases.append({"resuming": "downloading", "retry": "downloading"}.get(m.group("phase"), m.group("phase")))
        elif m := re.search(profile.ota_outcome, text + "\n", re.MULTILINE):
            phases.append(m.group("phase"))
    return max(phases, key=lambda p: ORDER.index(p) if p in ORDER else 0)
