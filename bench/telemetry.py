"""Telemetry benchmark: how many 1 Hz devices one broker + collector take with zero loss, and the
collector's CPU cost per message relative to a bare paho subscriber measured in the same run.

    python bench/telemetry.py                       # both broker kinds present, default ramp
    python bench/telemetry.py --broker mosquitto --max-devices 3200 --duration 10
    python bench/telemetry.py --skip-capacity        # only the cost ratio

Capacity: for N = start, 2*start, ... simulated devices (raw asyncio MQTT 3.1.1 clients in one load
generator process, each its own TCP connection, QoS 1, phases spread over the second) publish at
1 Hz for ``--duration`` seconds. A step passes when the collector accounts for every message
produced (no gap, nothing missing) and p99 device-to-collector latency stays under ``--p99``
seconds (a collector that cannot keep up shows as growing latency before it loses anything). The
generator reports how late it ran behind its own schedule; if it lagged, the step measured the
generator, and the report says so.

Cost: a collector (journal included) and a bare paho subscriber that only counts, each in its own
process, subscribe to the same burst of messages; each reports its own CPU time (getrusage), so
the ratio holds on a loaded machine. The absolute figures depend on the machine; the ratio is the
figure to compare between runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from harness.run.journal import Journal, read_journal  # noqa: E402
from harness.services.accounting import account  # noqa: E402
from harness.services.broker import Broker, available_kinds  # noqa: E402
from harness.services.collector import TelemetryCollector  # noqa: E402
from harness.services.mqtt_client import connect_packet  # noqa: E402

READY = "READY"


# -- load generator (its own process) ----------------------------------------------------------------
def _publish_packet(topic: str, payload: bytes, packet_id: int) -> bytes:
    body = len(topic).to_bytes(2, "big") + topic.encode() + packet_id.to_bytes(2, "big") + payload
    length, n = bytearray(), len(body)
    while True:
        byte, n = n % 128, n // 128
        length.append(byte | (0x80 if n else 0))
        if not n:
            break
    return b"\x32" + bytes(length) + body


async def _device(
    host: str, port: int, name: str, start: float, end: float, rate: float, limit: int, stats: dict[str, Any]
) -> None:
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 30)
    writer.write(connect_packet(f"bench-{name}-{uuid.uuid4().hex[:6]}"))
    connack = await asyncio.wait_for(reader.readexactly(4), 30)
    if connack[0] != 0x20 or connack[3] != 0:
        raise ConnectionError(f"{name}: broker refused the connection ({connack!r})")
    acked = 0

    async def read_acks() -> None:
        nonlocal acked
        while True:
            packet = await reader.readexactly(4)
            if packet[0] == 0x40:
                acked += 1

    acks = asyncio.create_task(read_acks())
    boot_id = uuid.uuid4().hex[:12]
    topic = f"devices/{name}/telemetry"
    seq, due = 0, start
    while due < end and (limit <= 0 or seq < limit):
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)  # the device's 1 Hz schedule
        else:
            stats["max_lag"] = max(stats["max_lag"], -delay)
        seq += 1
        payload = {
            "device": name, "boot_id": boot_id, "seq": seq, "uptime": float(seq), "heap_free": 40000,
            "battery_v": 3.7, "rssi": -60, "temp_c": 24.0, "fw": "bench", "ts": time.time(), "dropped": 0,
        }  # fmt: skip
        writer.write(_publish_packet(topic, json.dumps(payload).encode(), (seq % 65535) + 1))
        due += 1.0 / rate
    deadline = loop.time() + 30
    while acked < seq and loop.time() < deadline:
        await asyncio.sleep(0.05)  # bounded poll for the last PUBACKs
    acks.cancel()
    writer.write(b"\xe0\x00")
    writer.close()
    stats["produced"] += seq
    stats["acked"] += acked


async def _generate(host: str, port: int, devices: int, duration: float, rate: float, limit: int) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    begin = loop.time() + 2.0 + devices / 2000  # time to connect everyone first
    stats: dict[str, Any] = {"produced": 0, "acked": 0, "max_lag": 0.0, "devices": devices}
    await asyncio.gather(
        *(
            _device(host, port, f"bench-{i:05d}", begin + (i / devices) / rate, begin + duration, rate, limit, stats)
            for i in range(devices)
        )
    )
    return stats


def generator_main(args: argparse.Namespace) -> int:
    stats = asyncio.run(_generate(args.host, args.port, args.devices, args.duration, args.rate, args.messages))
    print(json.dumps(stats), flush=True)
    return 0


# -- subscribers for the cost ratio (their own processes) -------------------------------------------
def subscriber_main(args: argparse.Namespace) -> int:
    import paho.mqtt.client as mqtt

    from harness.services.endpoint import BrokerEndpoint

    done = threading.Event()
    count = 0
    cpu0 = 0.0
    endpoint = BrokerEndpoint(args.host, args.port)

    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    if args.kind == "bare":
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bare-{os.getpid()}")
        subscribed = threading.Event()

        def on_message(c: Any, u: Any, msg: Any) -> None:
            nonlocal count
            count += 1
            if count >= args.count:
                done.set()

        client.on_message = on_message
        client.on_subscribe = lambda *a: subscribed.set()
        client.on_connect = lambda c, *a: c.subscribe("devices/+/telemetry", 1)
        client.connect(args.host, args.port)
        client.loop_start()
        if not subscribed.wait(30):
            print(json.dumps({"error": "bare subscriber: no SUBACK within 30s"}), flush=True)
            return 1
        cpu0 = cpu()
        print(READY, flush=True)
        ok = done.wait(args.timeout)
        cpu1 = cpu()
        client.disconnect()
        client.loop_stop()
    else:
        folder = Path(tempfile.mkdtemp(prefix="bench-collector-"))
        journal = Journal(folder / "journal.jsonl")
        collector = TelemetryCollector(endpoint, journal).start()
        cpu0 = cpu()
        print(READY, flush=True)
        try:
            collector.wait_for(args.count, timeout=args.timeout)
            ok = True
        except TimeoutError:
            ok = False
        cpu1 = cpu()
        count = len(collector.messages())
        collector.close()
        journal.close()
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()
    print(json.dumps({"kind": args.kind, "ok": ok, "count": count, "cpu": cpu1 - cpu0}), flush=True)
    return 0 if ok else 1


# -- orchestration -----------------------------------------------------------------------------------
def _run_generator(broker: Broker, devices: int, duration: float, rate: float, messages: int = 0) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "generate", "--host", broker.host, "--port", str(broker.port),
           "--devices", str(devices), "--duration", str(duration), "--rate", str(rate),
           "--messages", str(messages)]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=min(duration, 600) + 120, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"load generator failed ({out.returncode}): {out.stderr.strip()[-500:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def capacity_step(kind: str, devices: int, duration: float, p99_bound: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-telemetry-") as tmp:
        journal = Journal(Path(tmp) / "journal.jsonl")
        broker = Broker.start(tmp, kind, journal)
        collector = TelemetryCollector(broker, journal).start()
        try:
            cpu0 = time.process_time()
            gen = _run_generator(broker, devices, duration, 1.0)
            with contextlib.suppress(TimeoutError):  # a shortfall is what the step measures
                collector.wait_for(gen["produced"], timeout=30)
            collector.wait_quiet(quiet=1.0, timeout=30)
            cpu = time.process_time() - cpu0
        finally:
            collector.close()
            broker.close()
            journal.close()
        acc = account(read_journal(journal.path))
    lat = acc.latency()
    missing = gen["produced"] - acc.unique
    ok = missing == 0 and acc.lost() == 0 and lat["p99"] <= p99_bound
    return {
        "broker": kind, "devices": devices, "msgs_per_s": devices, "produced": gen["produced"],
        "acked": gen["acked"], "collected": acc.unique, "missing": missing, "gaps": acc.lost(),
        "p50_ms": round(lat["p50"] * 1000, 1), "p99_ms": round(lat["p99"] * 1000, 1),
        "collector_cpu_pct": round(100 * cpu / (duration + 2), 1),
        "generator_max_lag_s": round(gen["max_lag"], 3), "loadavg_1m": os.getloadavg()[0], "ok": ok,
    }  # fmt: skip


def capacity(
    kind: str, start: int, max_devices: int, duration: float, p99_bound: float, factor: float
) -> list[dict[str, Any]]:
    rows = []
    devices = start
    while devices <= max_devices:
        row = capacity_step(kind, devices, duration, p99_bound)
        rows.append(row)
        print(json.dumps(row), flush=True)
        if not row["ok"]:
            break
        devices = max(devices + 1, round(devices * factor))
    return rows


def _spawn_subscriber(kind: str, broker: Broker, count: int) -> subprocess.Popen[str]:
    cmd = [sys.executable, __file__, "subscribe", "--kind", kind, "--host", broker.host,
           "--port", str(broker.port), "--count", str(count)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()  # blocks until READY or the child dies (EOF)
    if line != READY:
        proc.kill()
        raise RuntimeError(f"{kind} subscriber did not become ready: {line or proc.stderr.read()[-500:]}")
    return proc


def cost_ratio(kind: str, messages: int, rounds: int) -> dict[str, Any]:
    """CPU seconds per message, collector vs bare paho subscriber, same bursts, same broker."""
    devices = 50
    per_device = max(1, messages // devices)  # a burst at 200 Hz per simulated device, not a 1 Hz fleet
    expected = per_device * devices
    ratios, per_msg = [], {"bare": [], "collector": []}
    with tempfile.TemporaryDirectory(prefix="bench-telemetry-") as tmp, Broker.start(tmp, kind) as broker:
        for _ in range(rounds):
            subs = {k: _spawn_subscriber(k, broker, expected) for k in ("bare", "collector")}
            gen = _run_generator(broker, devices, 3600.0, 200.0, per_device)
            results = {}
            for k, proc in subs.items():
                out, _ = proc.communicate(timeout=180)
                results[k] = json.loads(out.strip().splitlines()[-1])
                if not results[k]["ok"]:
                    raise RuntimeError(f"{k} subscriber got {results[k]['count']} of {gen['produced']}")
            for k in results:
                per_msg[k].append(results[k]["cpu"] / results[k]["count"])
            ratios.append(per_msg["collector"][-1] / per_msg["bare"][-1])
    return {
        "broker": kind, "messages_per_round": expected, "rounds": rounds,
        "bare_us_per_msg": round(statistics.median(per_msg["bare"]) * 1e6, 1),
        "collector_us_per_msg": round(statistics.median(per_msg["collector"]) * 1e6, 1),
        "ratio_median": round(statistics.median(ratios), 2),
        "ratios": [round(r, 2) for r in ratios],
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    gen = sub.add_parser("generate", help="(internal) run the load generator")
    gen.add_argument("--host", required=True)
    gen.add_argument("--port", type=int, required=True)
    gen.add_argument("--devices", type=int, required=True)
    gen.add_argument("--duration", type=float, required=True)
    gen.add_argument("--rate", type=float, default=1.0)
    gen.add_argument("--messages", type=int, default=0, help="stop each device after this many (0: no limit)")
    sb = sub.add_parser("subscribe", help="(internal) run one subscriber for the cost ratio")
    sb.add_argument("--kind", choices=("bare", "collector"), required=True)
    sb.add_argument("--host", required=True)
    sb.add_argument("--port", type=int, required=True)
    sb.add_argument("--count", type=int, required=True)
    sb.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--broker", choices=("mosquitto", "embedded", "all"), default="all")
    parser.add_argument("--start-devices", type=int, default=100)
    parser.add_argument("--max-devices", type=int, default=6400)
    parser.add_argument("--factor", type=float, default=2.0, help="device count growth per step")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of 1 Hz traffic per step")
    parser.add_argument("--p99", type=float, default=1.0, help="p99 latency bound (s) for a step to pass")
    parser.add_argument("--cost-messages", type=int, default=20000)
    parser.add_argument("--cost-rounds", type=int, default=3)
    parser.add_argument("--skip-capacity", action="store_true")
    parser.add_argument("--skip-cost", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    if args.command == "generate":
        return generator_main(args)
    if args.command == "subscribe":
        return subscriber_main(args)
    kinds = available_kinds() if args.broker == "all" else [args.broker]
    results: dict[str, Any] = {"cpus": os.cpu_count(), "loadavg_at_start": os.getloadavg()}
    for kind in kinds:
        if not args.skip_capacity:
            rows = capacity(kind, args.start_devices, args.max_devices, args.duration, args.p99, args.factor)
            passed = [r for r in rows if r["ok"]]
            results[f"{kind}_capacity"] = rows
            best = passed[-1]["devices"] if passed else 0
            print(f"{kind}: {best} devices at 1 Hz ({best} msg/s) with zero loss and p99 <= {args.p99:g}s")
        if not args.skip_cost:
            cost = cost_ratio(kind, args.cost_messages, args.cost_rounds)
            results[f"{kind}_cost"] = cost
            print(json.dumps(cost), flush=True)
            print(
                f"{kind}: collector {cost['collector_us_per_msg']} us CPU/msg vs bare paho "
                f"{cost['bare_us_per_msg']} us/msg: ratio {cost['ratio_median']}"
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
