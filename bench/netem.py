"""Benchmark of the userspace impairment point: speed against baselines, and accuracy of what it produces.

All in one run, printed as one table; exits 1 when a target is missed:

1. zero-impairment TCP throughput through the point, against a direct loopback connection and
   against ``socat`` as a C forwarder (target: at least 30% of socat); a 40 mbit/s rate cap
   measured within 10%; the round trip added by 10 ms each way within twice (1 ms + 2%);
2. delay accuracy: UDP one-way delay for 10/100/500 ms with normal jitter (20% of the delay),
   measured by the receiver: mean within 1 ms + 2% of the target, and the distribution's shape
   checked with a Kolmogorov-Smirnov statistic against the configured distribution;
3. UDP random loss of 1/5/20% over N datagrams (default 100k): the lost count inside the 99%
   binomial interval, and no loss the point cannot account for;
4. Gilbert-Elliott bursts: the mean burst length seen by the receiver against the model's 1/r.

Traffic generators run in child processes (this file re-invoked with ``--role``), so they do not
compete with the point for this interpreter's GIL. Usage: ``python bench/netem.py [--quick]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import select
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.drivers.netem import ImpairmentPoint
from harness.netmodel.model import standard_cdf

CHUNK = 1 << 20
Z99 = 2.5758293035489004  # two-sided 99% normal quantile
CHILD_TIMEOUT = 300.0
REALTIME = True  # SCHED_FIFO for the point's loop and the timing children, where permitted


# ---------------------------------------------------------------------------------------------------------
# child roles


def role_sink() -> None:
    """TCP sink: for each connection read to EOF, then answer the byte count (8 bytes)."""
    server = socket.create_server(("127.0.0.1", 0))
    print(server.getsockname()[1], flush=True)
    buf = bytearray(CHUNK)
    while True:
        conn, _ = server.accept()
        with conn:
            total = 0
            while n := conn.recv_into(buf):
                total += n
            conn.sendall(total.to_bytes(8, "big"))


def role_send(host: str, port: int, nbytes: int) -> None:
    """TCP sender: send ``nbytes``, half-close, wait for the sink's count; print bytes and seconds."""
    payload = memoryview(bytes(CHUNK))
    with socket.create_connection((host, port), timeout=60) as sock:
        start = time.perf_counter()
        left = nbytes
        while left > 0:
            n = min(left, CHUNK)
            sock.sendall(payload[:n])
            left -= n
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while len(answer) < 8:
            part = sock.recv(8 - len(answer))
            if not part:
                break
            answer += part
        seconds = time.perf_counter() - start
    print(json.dumps({"bytes": int.from_bytes(answer, "big"), "seconds": seconds}), flush=True)


def role_echo() -> None:
    """TCP echo server (one connection at a time): for the round-trip measurement."""
    server = socket.create_server(("127.0.0.1", 0))
    print(server.getsockname()[1], flush=True)
    while True:
        conn, _ = server.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)


def role_ping(host: str, port: int, count: int) -> None:
    """Ping-pong one byte ``count`` times over TCP; print the round-trip times in seconds."""
    rtts: list[float] = []
    with socket.create_connection((host, port), timeout=60) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(count):
            start = time.monotonic()
            sock.sendall(b"p")
            if sock.recv(1) != b"p":
                raise RuntimeError("echo closed the connection")
            rtts.append(time.monotonic() - start)
    print(json.dumps({"rtts": rtts}), flush=True)


def role_timer(count: int) -> None:
    """Baseline: how late a plain process's timers fire on this machine right now (seconds)."""
    rng = random.Random(0)
    late: list[float] = []
    for _ in range(count):
        wait = rng.uniform(0.001, 0.010)
        due = time.monotonic() + wait
        select.select([], [], [], wait)  # microsecond timeout, like the point's loop
        late.append(time.monotonic() - due)
    print(json.dumps({"late": late}), flush=True)


def role_udp(count: int, interval: float, settle: float) -> None:
    """UDP device and service in one process: send numbered, timestamped datagrams, record arrivals.

    Prints the service socket's port, reads the point's listen port from stdin, then sends
    ``count`` datagrams every ``interval`` seconds, keeps receiving until nothing has arrived for
    ``settle`` seconds, and prints the sequence numbers and one-way delays received
    (CLOCK_MONOTONIC is system-wide, so both ends share one clock).
    """
    service = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    service.bind(("127.0.0.1", 0))
    try:
        service.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE (Linux)
    except (AttributeError, OSError):
        service.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    device = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    device.bind(("127.0.0.1", 0))
    print(service.getsockname()[1], flush=True)
    port = int(sys.stdin.readline())
    target = ("127.0.0.1", port)
    service.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(service, selectors.EVENT_READ)
    seqs: list[int] = []
    delays: list[float] = []
    padding = bytes(48)

    def drain() -> None:
        while True:
            try:
                data = service.recv(2048)
            except BlockingIOError:
                return
            now = time.monotonic()
            seqs.append(int.from_bytes(data[:8], "big"))
            delays.append(now - float.fromhex(data[8:40].decode().strip()))

    start = time.monotonic()
    for i in range(count):
        due = start + i * interval
        while (wait := due - time.monotonic()) > 0:
            if sel.select(wait):
                drain()
        device.sendto(i.to_bytes(8, "big") + time.monotonic().hex().ljust(32).encode() + padding, target)
    hard_stop = time.monotonic() + CHILD_TIMEOUT / 2
    while time.monotonic() < hard_stop and sel.select(settle):  # until quiet for `settle` seconds
        drain()
    print(json.dumps({"sent": count, "seqs": seqs, "delays": delays}), flush=True)


# ---------------------------------------------------------------------------------------------------------
# parent helpers


@dataclass
class Row:
    check: str
    measured: str
    target: str
    ok: bool | None  # None: informational


class Child:
    """A child process of this script in some role; always terminated by :meth:`close`."""

    def __init__(self, *args: str) -> None:
        self.role = " ".join(args)
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--role", *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )

    def line(self) -> str:
        assert self.proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        if not sel.select(CHILD_TIMEOUT):
            raise TimeoutError(f"bench child '{self.role}' printed nothing within {CHILD_TIMEOUT:g}s")
        out = self.proc.stdout.readline()
        if not out:
            raise RuntimeError(f"bench child '{self.role}' exited with {self.proc.wait(5)}")
        return out

    def tell(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


def transfer(port: int, nbytes: int) -> float:
    """Bytes per second of one transfer to ``port`` (a sink, or something forwarding to one)."""
    sender = Child("send", "127.0.0.1", str(port), str(nbytes))
    try:
        result = json.loads(sender.line())
    finally:
        sender.close()
    if result["bytes"] != nbytes:
        raise RuntimeError(f"sink counted {result['bytes']} bytes of {nbytes}")
    return nbytes / float(result["seconds"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, timeout: float = 10.0) -> None:
    """Wait until something listens on ``port`` (read from /proc, so no probe connection is made)."""
    needle = f":{port:04X} 00000000:0000 0A"
    deadline = time.monotonic() + timeout
    while needle not in Path("/proc/net/tcp").read_text():
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listened on 127.0.0.1:{port} within {timeout:g}s")
        time.sleep(0.01)


def bench_throughput(nbytes: int, runs: int) -> list[Row]:
    """Best of ``runs`` rounds; each round measures direct, point and socat back to back, so a
    change in the machine's load between measurements hits all three alike."""
    sink = Child("sink")
    socat: subprocess.Popen[bytes] | None = None
    rows: list[Row] = []
    best: dict[str, float] = {}
    try:
        sink_port = int(sink.line())
        targets = {"direct": sink_port}
        if shutil.which("socat"):
            socat_port = free_port()
            socat = subprocess.Popen(
                ["socat", "-b", "131072", f"TCP-LISTEN:{socat_port},bind=127.0.0.1,reuseaddr,fork",
                 f"TCP:127.0.0.1:{sink_port}"],
            )
            wait_listening(socat_port)
            targets["socat"] = socat_port
        with ImpairmentPoint(seed=1, stats_interval=None) as point:
            _host, port = point.add_tcp(("127.0.0.1", sink_port), name="bench")
            targets["point"] = port
            for _ in range(runs):
                for name, target in targets.items():
                    best[name] = max(best.get(name, 0.0), transfer(target, nbytes))
            point.apply(rate="40mbit")  # 5 MB/s
            capped = transfer(port, 10_000_000)
    finally:
        sink.close()
        if socat is not None:
            socat.terminate()
            socat.wait(5)
    direct, proxied, socat_rate = best["direct"], best["point"], best.get("socat")
    mb = 1e6
    rows.append(Row("TCP direct loopback", f"{direct / mb:,.0f} MB/s", "baseline", None))
    rows.append(Row("TCP through point (no impairment)", f"{proxied / mb:,.0f} MB/s",
                    f"{proxied / direct:.0%} of direct", None))
    if socat_rate is None:
        rows.append(Row("TCP through socat", "socat not installed", ">= 30% of socat", False))
    else:
        rows.append(Row("TCP through socat -b 128k", f"{socat_rate / mb:,.0f} MB/s",
                        f"{socat_rate / direct:.0%} of direct", None))
        rows.append(Row("point / socat", f"{proxied / socat_rate:.0%}", ">= 30%", proxied / socat_rate >= 0.30))
    rows.append(Row("TCP with rate 40mbit (10 MB)", f"{capped / mb:.2f} MB/s", "5.00 MB/s +/- 10%",
                    abs(capped / 5e6 - 1) <= 0.10))
    return rows


def bench_tcp_rtt(count: int) -> list[Row]:
    """Round trips through the point, without and with 10 ms each way: the delay a stream really gets."""

    def pings(port: int) -> list[float]:
        ping = Child("ping", "127.0.0.1", str(port), str(count))
        try:
            return [r * 1000 for r in json.loads(ping.line())["rtts"]]
        finally:
            ping.close()

    echo = Child("echo")
    try:
        echo_port = int(echo.line())
        with ImpairmentPoint(seed=1, stats_interval=None, realtime=REALTIME) as point:
            _host, port = point.add_tcp(("127.0.0.1", echo_port), name="echo")
            base = statistics.fmean(pings(port))
            point.apply(delay="10ms")
            rtts_ms = pings(port)
    finally:
        echo.close()
    added = statistics.fmean(rtts_ms) - base
    limit = 2 * (1.0 + 0.02 * 10)  # each direction's allowance, twice
    return [
        Row(f"TCP round trip through the point, no delay ({count} pings)", f"{base:.2f} ms", "baseline", None),
        Row("TCP round trip added by 10 ms each way", f"{added:.2f} ms (median RTT "
            f"{statistics.median(rtts_ms):.2f})", f"20 +/- {limit:.1f} ms", abs(added - 20.0) <= limit),
    ]


def udp_drops(port: int) -> int:
    """Datagrams the kernel dropped at the UDP socket bound to 127.0.0.1:``port`` (full buffer)."""
    needle = f"0100007F:{port:04X}"
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) > 12 and fields[1] == needle:
            return int(fields[-1])
    return 0


def run_udp(point: ImpairmentPoint, name: str, count: int, interval: float, settle: float,
            **params: Any) -> tuple[dict[str, Any], dict[str, Any], int]:
    """Send ``count`` datagrams through a fresh UDP service with ``params``.

    Returns what the receiver got, the point's statistics once it has decided every datagram it
    was offered, and the kernel's drops at the point's and the receiver's sockets.
    """
    child = Child("udp", str(count), repr(interval), repr(settle))
    try:
        service_port = int(child.line())
        _host, port = point.add_udp(("127.0.0.1", service_port), name=name)
        point.apply(service=name, direction="up", **params)
        child.tell(str(port))
        received = json.loads(child.line())
        drops = udp_drops(port) + udp_drops(service_port)
    finally:
        child.close()
    deadline = time.monotonic() + 60
    stats = point.statistics(name)[name]["up"]
    while stats["produced"]["offered_packets"] + drops < count and time.monotonic() < deadline:
        time.sleep(0.1)  # the point may still be working through its socket buffer
        stats = point.statistics(name)[name]["up"]
    return received, stats, drops


def ks_statistic(samples: Sequence[float], cdf: Callable[[float], float]) -> float:
    """The Kolmogorov-Smirnov statistic D of ``samples`` against ``cdf``."""
    xs = sorted(samples)
    n = len(xs)
    return max(max((i + 1) / n - cdf(x), cdf(x) - i / n) for i, x in enumerate(xs))


def bench_delay(point: ImpairmentPoint, count: int) -> list[Row]:
    timer = Child("timer", "1000")
    try:
        late_ms = sorted(x * 1000 for x in json.loads(timer.line())["late"])
    finally:
        timer.close()
    rows: list[Row] = [Row("baseline: plain process timer lateness", f"mean {statistics.fmean(late_ms):.3f} ms, "
                           f"p99 {late_ms[int(0.99 * len(late_ms))]:.2f} ms", "(machine noise)", None)]
    for delay_ms in (10, 100, 500):
        jitter_ms = delay_ms / 5
        received, stats, _drops = run_udp(point, f"delay{delay_ms}", count, 0.001, delay_ms / 1000 * 2 + 1.0,
                                  delay=f"{delay_ms}ms", jitter=f"{jitter_ms}ms", distribution="normal")
        delays_ms = [d * 1000 for d in received["delays"]]
        mean = statistics.fmean(delays_ms)
        std = statistics.stdev(delays_ms)
        limit = 1.0 + 0.02 * delay_ms
        rows.append(Row(f"UDP delay {delay_ms}ms +/- {jitter_ms:g}ms normal: mean",
                        f"{mean:.2f} ms (std {std:.2f}, n={len(delays_ms)})",
                        f"{delay_ms} +/- {limit:.1f} ms", abs(mean - delay_ms) <= limit))
        self_mean = stats["produced"]["delay_ms"]["mean"]
        rows.append(Row("  point's own measurement", f"{self_mean:.2f} ms", "(informational)", None))

        def cdf(x: float, d: float = delay_ms, j: float = jitter_ms) -> float:
            return standard_cdf("normal", (x - d) / j)

        raw = ks_statistic(delays_ms, cdf)
        offset = mean - delay_ms
        shape = ks_statistic([x - offset for x in delays_ms], cdf)
        crit = 1.63 / math.sqrt(len(delays_ms))
        pvalue = ""
        try:
            from scipy import stats as sps

            result = sps.kstest([(x - offset - delay_ms) / jitter_ms for x in delays_ms], "norm")
            pvalue = f", p={result.pvalue:.2f}"
        except ImportError:
            pass
        rows.append(Row("  shape (KS, mean offset removed)", f"D={shape:.4f}{pvalue} (raw D={raw:.4f})",
                        f"D < {max(crit, 0.05):.3f}", shape < max(crit, 0.05)))
    return rows


def bench_loss(point: ImpairmentPoint, count: int, interval: float) -> list[Row]:
    rows: list[Row] = []
    for pct in (1, 5, 20):
        received, stats, drops = run_udp(point, f"loss{pct}", count, interval, 3.0, loss=f"{pct}%")
        produced = stats["produced"]
        offered = produced["offered_packets"]
        p = pct / 100
        lo = offered * p - Z99 * math.sqrt(offered * p * (1 - p))
        hi = offered * p + Z99 * math.sqrt(offered * p * (1 - p))
        lost_seen = count - len(set(received["seqs"]))
        unexplained = lost_seen - produced["lost"] - drops
        rows.append(Row(f"UDP loss {pct}% over {count:,}",
                        f"{produced['lost']:,} lost = {produced['loss_pct']:.3f}%",
                        f"99% interval [{lo:,.0f}, {hi:,.0f}]", lo <= produced["lost"] <= hi))
        rows.append(Row("  receiver-side loss not produced by the point", f"{unexplained}",
                        "0", unexplained == 0))
        rows.append(Row("  kernel socket drops (point or receiver overrun)", f"{drops}", "0", drops == 0))
    return rows


def bench_gemodel(point: ImpairmentPoint, count: int, interval: float) -> list[Row]:
    p, r = 0.01, 0.25
    received, stats, drops = run_udp(point, "ge", count, interval, 3.0, gemodel=(p, r))
    got = sorted(set(received["seqs"]))
    bursts: list[int] = []
    expected_next = 0
    for seq in got:
        if seq > expected_next:
            bursts.append(seq - expected_next)
        expected_next = seq + 1
    if expected_next < count:
        bursts.append(count - expected_next)
    mean = statistics.fmean(bursts) if bursts else float("nan")
    model_mean = 1 / r
    # standard error of a geometric mean-burst estimate: sqrt(1-r)/r/sqrt(n)
    se = math.sqrt(1 - r) / r / math.sqrt(max(1, len(bursts)))
    ok = abs(mean - model_mean) <= max(3 * se, 0.05 * model_mean)
    own = stats["produced"]["loss_bursts"]["mean"]
    loss_pct = stats["produced"]["loss_pct"]
    return [
        Row(f"GE p={p:.0%} r={r:.0%}: mean burst (receiver)", f"{mean:.2f} over {len(bursts):,} bursts",
            f"{model_mean:.2f} +/- {max(3 * se, 0.05 * model_mean):.2f}", ok),
        Row("  point's own burst mean / loss", f"{own:.2f} / {loss_pct:.2f}%",
            f"model loss {100 * p / (p + r):.2f}%", None),
        Row("  kernel socket drops (point or receiver overrun)", f"{drops}", "0", drops == 0),
    ]


def print_table(rows: list[Row]) -> None:
    widths = [max(len(getattr(r, f)) for r in rows) for f in ("check", "measured", "target")]
    header = ("check", "measured", "target")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + "  result")
    print("-" * (sum(widths) + 14))
    for r in rows:
        verdict = "" if r.ok is None else ("PASS" if r.ok else "FAIL")
        print("  ".join(v.ljust(w) for v, w in zip((r.check, r.measured, r.target), widths, strict=True))
              + "  " + verdict)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller transfers and datagram counts")
    parser.add_argument("--seed", default="1", help="seed of the point's random streams")
    parser.add_argument("--role", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role:
        role, *rest = args.role
        if role in ("udp", "timer", "ping", "echo"):  # timing roles: the same priority as the point
            with contextlib.suppress(OSError, AttributeError):
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
        if role == "sink":
            role_sink()
        elif role == "send":
            role_send(rest[0], int(rest[1]), int(rest[2]))
        elif role == "timer":
            role_timer(int(rest[0]))
        elif role == "echo":
            role_echo()
        elif role == "ping":
            role_ping(rest[0], int(rest[1]), int(rest[2]))
        elif role == "udp":
            role_udp(int(rest[0]), float(rest[1]), float(rest[2]))
        return 0
    nbytes = (256 if args.quick else 1024) * 1024 * 1024
    datagrams = 20_000 if args.quick else 100_000
    interval = 150e-6  # ~6,700 datagrams/s: well inside what the point sustains on a loaded 2-core box
    print(f"bench/netem.py: {os.cpu_count()} CPUs, {nbytes >> 20} MiB per transfer, "
          f"{datagrams:,} datagrams per loss run, seed {args.seed}")
    started = time.monotonic()
    rows = bench_throughput(nbytes, runs=3)
    rows += bench_tcp_rtt(200)
    with ImpairmentPoint(seed=args.seed, stats_interval=None, realtime=REALTIME) as point:
        print(f"point loop priority: {point.priority}")
        rows += bench_delay(point, 2000 if not args.quick else 1000)
        rows += bench_loss(point, datagrams, interval)
        rows += bench_gemodel(point, datagrams, interval)
    print_table(rows)
    print(f"total {time.monotonic() - started:.0f}s")
    return 1 if any(r.ok is False for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
