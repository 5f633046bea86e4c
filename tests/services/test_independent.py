"""An independent subscriber (Debian's mosquitto_sub) sees exactly what the collector counts."""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from harness.run.journal import Journal
from harness.services.broker import Broker
from harness.services.collector import TelemetryCollector
from tests.services.publisher import DevicePublisher

Publisher = Callable[..., DevicePublisher]


class Subscriber:
    """mosquitto_sub in a child process; its stdout lines arrive on a queue."""

    def __init__(self, broker: Broker, count: int) -> None:
        binary = shutil.which("mosquitto_sub")
        if binary is None:
            pytest.skip("mosquitto_sub not installed (apt-get install mosquitto-clients)")
        stdbuf = shutil.which("stdbuf")
        if stdbuf is None:
            pytest.skip("stdbuf (coreutils) is needed to line-buffer mosquitto_sub's output")
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.proc = subprocess.Popen(
            [
                stdbuf,
                "-oL",
                binary,
                "-h",
                broker.host,
                "-p",
                str(broker.port),
                "-t",
                "devices/+/telemetry",
                "-q",
                "1",
                "-v",
                "-d",
                "-C",
                str(count),
                "-i",
                "independent-sub",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.seen: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = self.lines.get(timeout=max(0.0, remaining))
            except queue.Empty:
                line = ""
            if line is None or remaining <= 0:
                raise TimeoutError(
                    f"mosquitto_sub: no line containing {text!r} after {timeout:g}s; "
                    f"last output: {' | '.join(self.seen[-5:]) or '<nothing>'}"
                )
            self.seen.append(line)
            if text in line:
                return

    def finish(self, timeout: float) -> list[str]:
        """Wait for mosquitto_sub to exit after its -C count; the message lines it printed."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.close()
            raise TimeoutError(
                f"mosquitto_sub did not see all messages within {timeout:g}s; last output: {' | '.join(self.seen[-5:])}"
            ) from None
        self._reader.join(timeout=10)
        while (line := self.lines.get_nowait() if not self.lines.empty() else None) is not None:
            self.seen.append(line)
        return [line for line in self.seen if line.startswith("devices/")]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def subscriber(broker: Broker) -> Iterator[Callable[[int], Subscriber]]:
    made: list[Subscriber] = []

    def make(count: int) -> Subscriber:
        sub = Subscriber(broker, count)
        made.append(sub)
        return sub

    yield make
    for sub in made:
        sub.close()


def test_mosquitto_sub_sees_what_the_collector_counts(
    broker: Broker, journal: Journal, make_publisher: Publisher, subscriber: Callable[[int], Subscriber]
) -> None:
    pubs = [make_publisher(f"dev-{i}") for i in range(3)]
    plan = [(pub, n) for n in range(12) for pub in pubs]  # 36 produced, some never sent, one garbage
    sent = sum(1 for pub, n in plan if n % 5 != 3) + 1
    sub = subscriber(sent)
    sub.expect("SUBACK", timeout=20)
    with TelemetryCollector(broker, journal) as col:
        # garbage first: dev-0's later messages arrive after it on the same session
        pubs[0].publish_payload(b'{"device": "dev-0", "seq": "garbage"}')
        for pub, n in plan:
            if n % 5 == 3:
                pub.skip()
            else:
                pub.publish()
        lines = sub.finish(timeout=30)
        col.wait_for(sent - 1, timeout=30)
        summary = col.summary()
    independent = set()
    for line in lines:
        topic, _, body = line.partition(" ")
        payload = json.loads(body)
        assert topic == f"devices/{payload['device']}/telemetry"
        if isinstance(payload.get("seq"), int):
            independent.add((payload["device"], payload["seq"]))
    collected = {(m.device, m.seq) for m in col.messages()}
    assert len(lines) == sent
    assert independent == collected
    assert summary.unique == len(collected) == sent - 1
    assert summary.malformed == 1
    assert summary.lost("unexplained") == 3 * 2  # seqs 4 and 9 of each device
