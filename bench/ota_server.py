"""Benchmark of the OTA artifact server: 1 MiB image downloads over loopback against a stdlib baseline.

Three servers, all serving the same signed 1 MiB image from the same folder:

1. ``http.server``: the standard library's ``ThreadingHTTPServer`` + ``SimpleHTTPRequestHandler``
   (what ``python -m http.server`` runs), in a child process: the baseline;
2. the artifact server in a child process (aiohttp in its background thread, as the harness runs it);
3. the artifact server in this process, sharing the interpreter with the client, as a test runs it.

One client (``http.client``, one keep-alive connection per round) downloads the image ``--downloads``
times per round; rounds are interleaved across servers so drift in machine load hits all alike, and
the median round is reported. Every download's bytes are checked against the image. Prints one table
and the ratio artifact/baseline. Usage: ``python bench/ota_server.py [--rounds 5] [--downloads 20]``.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import http.server
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.ota import KeyPair, build_signed_image
from harness.services.artifacts import ArtifactServer

NAME = "fw-bench.img"
START_TIMEOUT = 30.0


def role_baseline(folder: str) -> None:
    """Serve ``folder`` with the standard library until stdin closes; print the port first."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the artifact server does

        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=folder, **kwargs)  # type: ignore[arg-type]

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(server.server_address[1], flush=True)
    sys.stdin.read()
    server.shutdown()


def role_artifact(folder: str) -> None:
    """Serve ``folder`` with the artifact server until stdin closes; print the port first."""
    with ArtifactServer(folder) as server:
        print(server.port, flush=True)
        sys.stdin.read()


def start_child(stack: ExitStack, role: str, folder: Path) -> int:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--role", role, str(folder)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    stack.callback(_end_child, proc)
    port: list[str] = []
    reader = threading.Thread(target=lambda: port.append(proc.stdout.readline() if proc.stdout else ""), daemon=True)
    reader.start()
    reader.join(START_TIMEOUT)
    if not port or not port[0].strip().isdigit():
        raise SystemExit(f"bench: {role} server did not print its port within {START_TIMEOUT:g}s (got {port!r})")
    return int(port[0])


def _end_child(proc: subprocess.Popen[str]) -> None:
    if proc.stdin:
        proc.stdin.close()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def round_mib_per_s(port: int, downloads: int, expected: bytes) -> float:
    """One keep-alive connection, ``downloads`` GETs of the image; MiB/s over the round."""
    digest = hashlib.sha256(expected).digest()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        started = time.perf_counter()
        for _ in range(downloads):
            conn.request("GET", f"/{NAME}")
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 200 or hashlib.sha256(body).digest() != digest:
                raise SystemExit(f"bench: port {port} answered {resp.status} with {len(body)} wrong bytes")
        seconds = time.perf_counter() - started
    finally:
        conn.close()
    return downloads * len(expected) / seconds / 2**20


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--downloads", type=int, default=20, help="downloads of the image per round")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object too")
    parser.add_argument("--role", nargs=2, help=argparse.SUPPRESS)
    ns = parser.parse_args(argv)
    if ns.role:
        {"baseline": role_baseline, "artifact": role_artifact}[ns.role[0]](ns.role[1])
        return 0
    image = build_signed_image("9.9.9", KeyPair.ephemeral(), size=2**20).data
    with tempfile.TemporaryDirectory(prefix="bench-ota-") as tmp, ExitStack() as stack:
        folder = Path(tmp)
        (folder / NAME).write_bytes(image)
        in_process = stack.enter_context(ArtifactServer(folder))
        servers: dict[str, Callable[[], float]] = {}
        for label, port in (
            ("http.server (child)", start_child(stack, "baseline", folder)),
            ("artifact server (child)", start_child(stack, "artifact", folder)),
            ("artifact server (in-process)", in_process.port),
        ):
            servers[label] = lambda port=port: round_mib_per_s(port, ns.downloads, image)  # type: ignore[misc]
        for run in servers.values():  # warm-up: connections, page cache, first-request costs
            run()
        results: dict[str, list[float]] = {label: [] for label in servers}
        for _ in range(ns.rounds):
            for label, run in servers.items():
                results[label].append(run())
    medians = {label: statistics.median(values) for label, values in results.items()}
    base = medians["http.server (child)"]
    print(f"{len(image)}-byte image, {ns.rounds} rounds x {ns.downloads} downloads, median MiB/s over loopback")
    print(f"{'server':<30} {'MiB/s':>9} {'min':>9} {'max':>9} {'ratio':>7}")
    for label, values in results.items():
        low, high, ratio = min(values), max(values), medians[label] / base
        print(f"{label:<30} {medians[label]:>9.1f} {low:>9.1f} {high:>9.1f} {ratio:>7.2f}")
    ratio = medians["artifact server (child)"] / base
    print(f"artifact server / http.server throughput ratio: {ratio:.2f}")
    if ns.json:
        print(json.dumps({"median_mib_s": medians, "ratio": ratio}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
