"""OTA benchmark on the twin: time for a 1 MiB update on `lan` and on `3g`, and power-cut trials per minute.

Updates go the way the profile says (jobs over MQTT for the twin); on `lan` the same updates also go
over the console (`ota apply`), interleaved, as the baseline: the ratio is what MQTT delivery and status
reporting cost over typing the job and reading the console.

    python bench/ota.py [--updates 3] [--cuts 20]

Brings up the twin rig with its services exactly as the pytest plugin does (broker, impairment point,
artifact server), so the figures are those of the device tests. Prints a table; exits non-zero if an
update that should commit does not, or a cut leaves the device without a version.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from harness.rig.loader import resolve_rig
from harness.session import HarnessSession


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=3, help="updates per network profile")
    parser.add_argument("--cuts", type=int, default=20, help="power-cut trials")
    parser.add_argument("--seed", type=int, default=1)
    ns = parser.parse_args(argv)
    spec, source = resolve_rig("twin", Path.cwd())
    state = HarnessSession(spec, source, Path(tempfile.mkdtemp(prefix="bench-ota-")), "bench", "main", False)
    failures = 0
    try:
        rig = state.rig()
        services = state.services()
        ota, net, dut = services.ota, services.network, rig.dut
        counter = 0
        rows = []
        baseline: list[float] = []
        for profile in ("lan", "3g"):
            net.profile(profile)
            times = []
            for _ in range(ns.updates):
                vias = (None, "console") if profile == "lan" and dut.profile.ota_apply else (None,)
                for via in vias:
                    counter += 1
                    started = time.monotonic()
                    outcome = ota.deploy(ota.build(f"10.{counter}.0"), expect=None, timeout=300, via=via)
                    (baseline if via else times).append(time.monotonic() - started)
                    failures += outcome.result != "committed"
            rows.append((f"{profile} ({ota.via})", statistics.median(times), min(times), max(times)))
            if profile == "lan" and baseline:
                rows.append(("lan (console)", statistics.median(baseline), min(baseline), max(baseline)))
            net.clear()
        rng = random.Random(ns.seed)
        net.apply(rate="8mbit")
        started = time.monotonic()
        for i in range(ns.cuts):
            counter += 1
            old, new = dut.version(), f"11.{i}.0"
            job = ota.start(ota.build(new))
            threading.Event().wait(rng.uniform(0.0, 1.5))  # the cut's instant is the injected condition
            rig.power.off()
            threading.Event().wait(0.1)
            rig.console.flush_input()
            rig.power.on()
            dut.wait_ready(reason="power-cut")
            failures += dut.version() not in (old, new)
            if ota.status().get("phase") not in ("idle", "committed", "rolled_back", "rejected"):
                ota.finish(job, expect=None, timeout=120)
        per_minute = ns.cuts / ((time.monotonic() - started) / 60.0)
        net.clear()
    finally:
        state.close()
    print(f"{'profile (delivery)':<18} {'median s':>9} {'min s':>7} {'max s':>7}   (1 MiB signed image, job to commit)")
    for profile, med, lo, hi in rows:
        print(f"{profile:<18} {med:>9.2f} {lo:>7.2f} {hi:>7.2f}")
    if baseline:
        print(f"lan: {ota.via} delivery / console delivery = {rows[0][1] / statistics.median(baseline):.2f}")
    print(f"power-cut trials: {ns.cuts} at {per_minute:.1f} per minute (8 mbit link, cut anywhere in 0-1.5 s)")
    print("RESULT:", "PASS" if failures == 0 else f"FAIL ({failures} problems)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
