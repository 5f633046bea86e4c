"""Benchmark: harness Console vs a raw pyserial loop on the same twin console.

    python bench/console.py [--commands 2000] [--dump-bytes 4000000] [--rounds 4]

Starts its own twin (``python -m harness.twin serve``) in a temporary folder, then alternates
rounds of raw pyserial and of :class:`harness.drivers.console.Console` (with a journal, as the
plugin runs it) so machine load hits both alike:

* command round trip: write ``version\\r``, wait for the prompt; p50/p99 over all commands;
* (the console is also measured without a journal, for reference; targets apply to the journaled one)
* bulk receive: ``dump N``; rate from the write to the ``DUMP-END`` trailer; every numbered line
  and the CRC32 are verified, so "bytes lost" is measured, not assumed.

Prints a table and the ratios; exits 1 if a target is missed (p50 <= 1.5x raw, dump rate >= 40%
of raw, zero bytes lost).
"""

from __future__ import annotations

import argparse
import json
import re
import selectors
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import serial

from harness.drivers.console import Console
from harness.run.journal import Journal

PROMPT = b"twin> "
DUMP_END = re.compile(rb"DUMP-END lines=(\d+) bytes=(\d+) crc32=([0-9a-f]{8})\r\n")
TARGET_P50_RATIO = 1.5
TARGET_RATE_RATIO = 0.4


@contextmanager
def twin(folder: Path, timeout: float = 60.0) -> Iterator[dict[str, object]]:
    """Run the twin's rig; yield its ready line; always stop it."""
    err = open(folder / "twin.stderr", "wb")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.twin", "serve", "--flash", str(folder / "flash.bin"), "--scpi-port", "0"],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=err,
    )
    try:
        assert proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            if not sel.select(timeout):
                raise SystemExit(f"twin not ready within {timeout}s: {(folder / 'twin.stderr').read_text()}")
        ready = json.loads(proc.stdout.readline())
        yield ready
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        err.close()
        if proc.stdout is not None:
            proc.stdout.close()


def verify_dump(data: bytes, expected_lines: int) -> int:
    """Bytes lost (or corrupted) in a dump: 0 when every line and the CRC check out."""
    match = DUMP_END.search(data)
    if match is None:
        return expected_lines * 64
    body = data[data.index(b"00000000 ") : match.start()]
    lines, size, crc = int(match.group(1)), int(match.group(2)), match.group(3).decode()
    rows = body.split(b"\r\n")[:-1]
    good = sum(1 for i, row in enumerate(rows) if row[:8] == b"%08d" % i and len(row) == 62)
    lost = size - good * 64
    if f"{zlib.crc32(body):08x}" != crc or lines != expected_lines:
        lost = max(lost, 1)
    return lost


class Raw:
    """The baseline: pyserial directly, reading in_waiting chunks until the prompt."""

    def __init__(self, url: str) -> None:
        self.port = serial.serial_for_url(url, baudrate=115200, timeout=10)

    def read_until(self, done: Callable[[bytearray], bool], timeout: float) -> bytes:
        buf = bytearray()
        deadline = time.monotonic() + timeout
        while not done(buf):
            if time.monotonic() > deadline:
                raise SystemExit(f"raw: timed out after {timeout}s; last bytes {bytes(buf[-200:])!r}")
            waiting = self.port.in_waiting
            buf += self.port.read(waiting or 1)
        return bytes(buf)

    def command(self, cmd: bytes) -> None:
        self.port.write(cmd + b"\r")
        self.read_until(lambda b: b.endswith(PROMPT), 10)

    def dump(self, size: int) -> tuple[float, bytes]:
        start = time.perf_counter()
        self.port.write(b"dump %d\r" % size)
        data = self.read_until(lambda b: DUMP_END.search(b, max(0, len(b) - 200)) is not None, 300)
        return time.perf_counter() - start, data

    def close(self) -> None:
        self.port.close()


class Ours:
    """The harness Console, journaling every line like the plugin does."""

    def __init__(self, url: str, journal: Journal, journaled: bool) -> None:
        self.con = Console(url, prompt=PROMPT.decode(), journal=journal if journaled else None).open()

    def command(self, cmd: bytes) -> None:
        self.con.command(cmd.decode(), timeout=10)

    def dump(self, size: int) -> tuple[float, bytes]:
        start = time.perf_counter()
        self.con.sendline(f"dump {size}")
        match = self.con.expect(re.compile(DUMP_END.pattern.decode()), timeout=300)
        elapsed = time.perf_counter() - start
        return elapsed, (self.con.before + match.group(0)).encode()

    def close(self) -> None:
        self.con.close()


def sync(driver: Raw | Ours) -> None:
    """Get to a fresh prompt (the board may still be booting)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            driver.command(b"")
            return
        except Exception:
            if time.monotonic() > deadline:
                raise


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=2000)
    parser.add_argument("--dump-bytes", type=int, default=4_000_000)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    per_round = max(1, args.commands // args.rounds)
    names = ("raw", "console", "console-nojournal")
    times: dict[str, list[float]] = {name: [] for name in names}
    rates: dict[str, list[float]] = {name: [] for name in names}
    lost: dict[str, int] = dict.fromkeys(names, 0)
    expected_lines = args.dump_bytes // 64
    with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp, twin(Path(tmp)) as ready:
        journal = Journal(Path(tmp) / "journal.jsonl")
        url = str(ready["console"])
        for _ in range(args.rounds):
            for name in names:
                driver: Raw | Ours = Raw(url) if name == "raw" else Ours(url, journal, name == "console")
                try:
                    sync(driver)
                    for _ in range(per_round):
                        start = time.perf_counter()
                        driver.command(b"version")
                        times[name].append(time.perf_counter() - start)
                    elapsed, data = driver.dump(args.dump_bytes)
                    rates[name].append(args.dump_bytes / elapsed)
                    lost[name] += verify_dump(data, expected_lines)
                    sync(driver)
                finally:
                    driver.close()
        journal.close()

    print(f"{'':18} {'p50 ms':>9} {'p99 ms':>9} {'dump MB/s':>10} {'bytes lost':>11}")
    for name in names:
        print(
            f"{name:18} {percentile(times[name], 0.5) * 1e3:9.3f} {percentile(times[name], 0.99) * 1e3:9.3f} "
            f"{statistics.median(rates[name]) / 1e6:10.2f} {lost[name]:11d}"
        )
    p50_ratio = percentile(times["console"], 0.5) / percentile(times["raw"], 0.5)
    rate_ratio = statistics.median(rates["console"]) / statistics.median(rates["raw"])
    print(f"command p50 ratio console/raw: {p50_ratio:.2f}x (target <= {TARGET_P50_RATIO}x)")
    print(f"dump rate ratio console/raw:   {rate_ratio:.0%} (target >= {TARGET_RATE_RATIO:.0%})")
    nj_p50 = percentile(times["console-nojournal"], 0.5) / percentile(times["raw"], 0.5)
    nj_rate = statistics.median(rates["console-nojournal"]) / statistics.median(rates["raw"])
    print(f"without journal:               {nj_p50:.2f}x p50, {nj_rate:.0%} dump rate (for reference)")
    failed = p50_ratio > TARGET_P50_RATIO or rate_ratio < TARGET_RATE_RATIO or any(lost.values())
    print("RESULT:", "FAIL" if failed else "PASS")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
