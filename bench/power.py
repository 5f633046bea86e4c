"""Benchmark: how long ``PowerSupply.off()``/``on()`` take on the twin's SCPI supply, with Nagle's
algorithm off (what the driver sets) against on (pyvisa-py's default, the baseline), same run.

    python bench/power.py [--rounds 6] [--per-round 20]

Brings up the twin rig as the plugin does; alternates rounds of the two socket settings on the same
connection so machine load hits both alike. ``off()`` is the instant a power cut happens: every
millisecond it takes is a millisecond the cut lands late. Prints medians and p90s and the ratio;
exits 1 if the driver's setting is not at least 5x faster at the median.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

from harness.rig.loader import resolve_rig
from harness.session import HarnessSession


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--per-round", type=int, default=20)
    ns = parser.parse_args(argv)
    spec, source = resolve_rig("twin", Path.cwd())
    state = HarnessSession(spec, source, Path(tempfile.mkdtemp(prefix="bench-power-")), "bench", "main", False)
    times: dict[int, dict[str, list[float]]] = {0: {"off": [], "on": []}, 1: {"off": [], "on": []}}
    try:
        power = state.rig().power
        inst = power._inst
        sock = inst.visalib.sessions[inst.session].interface
        for r in range(ns.rounds * 2):
            nodelay = r % 2
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, nodelay)
            for _ in range(ns.per_round):
                for what in ("off", "on"):
                    started = time.perf_counter()
                    getattr(power, what)()
                    times[nodelay][what].append(time.perf_counter() - started)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    finally:
        state.close()
    n = ns.rounds * ns.per_round
    print(f"{'setting':<22} {'off p50 ms':>10} {'off p90 ms':>10} {'on p50 ms':>10}   ({n} each)")
    for nodelay, label in ((0, "Nagle on (baseline)"), (1, "TCP_NODELAY (driver)")):
        off, on = times[nodelay]["off"], times[nodelay]["on"]
        print(f"{label:<22} {statistics.median(off) * 1000:>10.2f} {_p90(off) * 1000:>10.2f} "
              f"{statistics.median(on) * 1000:>10.2f}")
    ratio = statistics.median(times[0]["off"]) / statistics.median(times[1]["off"])
    print(f"off(): baseline / driver = {ratio:.1f}x")
    ok = ratio >= 5.0
    print("RESULT:", "PASS" if ok else "FAIL (driver setting not 5x faster)")
    return 0 if ok else 1


def _p90(values: list[float]) -> float:
    return sorted(values)[int(0.9 * (len(values) - 1))]


if __name__ == "__main__":
    sys.exit(main())
