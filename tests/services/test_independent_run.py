"""The collector's accounting, verified from outside a whole run.

An inner pytest run against the twin goes through consecutive tests on one boot, a partition, a
broker restart, a power cut, loss configured on the TCP path, two consecutive scenarios (partition,
broker restart, power cut) and a test after them. This test finds the run's broker the documented
way (``<run folder>/services.json``), subscribes an independent paho client to it (its own
persistent QoS 1 session; none of the harness's code on its receive path), and for every window
compares, per device and boot, what the harness reported — the ``telemetry`` fixture's
``summary()``, the per-test JUnit properties in results.json, the scenario metrics — with what the
independent subscriber saw: received, unique, duplicates and the seqs lost, computed here from its
own arrivals.

Each of the outsider's arrivals is placed at the time the collector journaled the same arrival
(the n-th copy of a device, boot and seq on both sides), so a window edge cannot fall between the
two clients' copies of one message; where a source's edge is not known exactly (a test's call,
a scenario's end) the test checks no message arrived there. What a broker re-sends to one session
only (MQTT DUP, after a lost acknowledgement) is per subscriber and compared apart.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from harness.run.journal import read_run
from harness.services import discovery
from harness.services.broker import find_mosquitto

RUN_TIMEOUT = 420.0
# How long before its first record a source's journal tap may have begun: a scenario taps the journal
# right before its start record; a test's call, a few hook calls before the test's first statement.
TAP_START = 0.001
CALL_START = 0.003

INNER_TESTS = '''
import json
import os
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

DUMP = os.environ["OUTSIDE_DUMP"]


def steady(after=0.0):
    """A new message that came straight through (not a buffered one): the next is a second away."""
    return lambda m: not m.duplicate and m.arrival - m.ts < 0.3 and m.ts > after


def open_window(name, journal):
    journal.record("mark", name=f"outside:open:{name}")


def close_window(name, telemetry, journal, after=0.0):
    telemetry.wait_for(steady(max(after, time.time())), timeout=60)  # one produced from now on
    journal.record("mark", name=f"outside:close:{name}")
    until = time.time()
    summary = telemetry.summary().to_dict()  # the records from telemetry.t0 to now
    with open(DUMP, "a") as out:
        out.write(json.dumps({"window": name, "since": telemetry.t0, "until": until, "summary": summary}) + "\\n")


def test_0_gate(telemetry, broker, journal):
    """Wait for the outside subscriber (it publishes a retained 'ready' once subscribed)."""
    ready = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="outside-gate")
    client.on_connect = lambda c, u, f, rc, p=None: c.subscribe("independent/ready", 1)
    client.on_message = lambda c, u, m: ready.set()
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        assert ready.wait(60), "the outside subscriber did not say it was ready within 60 s"
    finally:
        client.disconnect()
        client.loop_stop()
    telemetry.wait_for(2, timeout=30)
    close_window("gate", telemetry, journal)


def test_1_steady(telemetry, journal):
    open_window("steady-1", journal)
    telemetry.wait_for(3, timeout=30)
    close_window("steady-1", telemetry, journal)


def test_2_steady_again(telemetry, journal):
    open_window("steady-2", journal)
    telemetry.wait_for(3, timeout=30)
    close_window("steady-2", telemetry, journal)


def test_3_partition(telemetry, network, journal):
    open_window("partition", journal)
    telemetry.wait_for(1, timeout=30)
    network.partition(3)
    close_window("partition", telemetry, journal, after=time.time() + 3.5)


def test_4_broker_restart(telemetry, broker, journal):
    open_window("broker-restart", journal)
    telemetry.wait_for(1, timeout=30)
    broker.restart()
    close_window("broker-restart", telemetry, journal, after=time.time() + 1)


def test_5_power_cut(telemetry, dut, journal):
    open_window("power-cut", journal)
    telemetry.wait_for(2, timeout=30)
    dut.power_cycle()
    close_window("power-cut", telemetry, journal, after=time.time() + 1)


def test_6_loss_on_the_tcp_path(telemetry, network, journal):
    open_window("tcp-loss", journal)
    network.apply(loss="50%")
    telemetry.wait_for(3, timeout=30)
    close_window("tcp-loss", telemetry, journal)
'''

INNER_AFTER = '''
from test_windows import close_window, open_window


def test_7_after_the_scenarios(telemetry, journal):
    open_window("after-scenarios", journal)
    telemetry.wait_for(3, timeout=30)
    close_window("after-scenarios", telemetry, journal)
'''

TESTS = {  # window -> the inner test that closes it
    "steady-1": "test_windows.py::test_1_steady",
    "steady-2": "test_windows.py::test_2_steady_again",
    "partition": "test_windows.py::test_3_partition",
    "broker-restart": "test_windows.py::test_4_broker_restart",
    "power-cut": "test_windows.py::test_5_power_cut",
    "tcp-loss": "test_windows.py::test_6_loss_on_the_tcp_path",
    "after-scenarios": "test_zafter.py::test_7_after_the_scenarios",
}

SCENARIO_A = """
scenario: outside-a
description: a partition and a broker restart, seen from outside
requires: [console, power, network, telemetry]
steps:
  - wait: {until: telemetry, count: 2, timeout: 30s}
  - network: {partition: 3s}
  - wait: 5s
  - telemetry: {messages: 2, timeout: 60s}
  - broker: {action: restart, outage: 2s}
  - wait: 3s
  - telemetry: {messages: 1, timeout: 60s}
checks:
  - telemetry.loss.unexplained == 0
"""

SCENARIO_B = """
scenario: outside-b
description: a power cut, seen from outside
requires: [console, power, network, telemetry]
steps:
  - telemetry: {messages: 2, timeout: 30s}
  - power: {action: cycle, off: 300ms}
  - wait: 3s
  - telemetry: {messages: 1, timeout: 60s}
checks:
  - telemetry.loss.unexplained == 0
"""


@dataclass
class Seen:
    """What the independent subscriber received: (arrival time, device, boot, seq) per arrival."""

    arrivals: list[tuple[float, str, str, int, bool]] = field(default_factory=list)  # ..., MQTT DUP
    lock: threading.Lock = field(default_factory=threading.Lock)


class Outsider:
    """A plain paho subscriber with its own persistent session; nothing of the harness receives for it."""

    def __init__(self, host: str, port: int) -> None:
        self.seen = Seen()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="outside-independent", clean_session=False)
        self.client.reconnect_delay_set(min_delay=0.1, max_delay=1.0)
        self.client.on_connect = lambda c, u, f, rc, p=None: c.subscribe("devices/+/telemetry", 1)
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.connect(host, port)
        self.client.loop_start()

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, codes: Any, props: Any = None) -> None:
        if not self.subscribed.is_set():
            self.subscribed.set()
            client.publish("independent/ready", b"1", qos=1, retain=True)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        t = time.time()
        try:
            body = json.loads(msg.payload)
            key = (str(body["device"]), str(body["boot_id"]), int(body["seq"]))
        except (ValueError, KeyError, TypeError):
            return
        with self.seen.lock:
            self.seen.arrivals.append((t, *key, bool(msg.dup)))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class Span:
    """A window of one figure source, in the collector's journal time, and where its edges are
    uncertain (no collector record may fall in ``fuzzy``: the two sides could place it differently)."""

    name: str
    start: float
    end: float
    fuzzy: list[tuple[float, float]] = field(default_factory=list)


@dataclass
class BootFigures:
    received: int = 0
    unique: int = 0
    duplicates: int = 0
    redelivered: int = 0  # duplicates the broker re-sent to this session (MQTT DUP)
    lost: set[int] = field(default_factory=set)
    last_seq: int = 0


Arrival = tuple[float, str, str, int, bool]  # (time, device, boot, seq, MQTT DUP)


def on_collector_clock(outside: list[Arrival], journal: list[dict[str, Any]]) -> list[Arrival]:
    """The outsider's arrivals, each placed at the time the collector journaled the same arrival (the
    n-th arrival of a device, boot and seq on both sides), so a window edge cannot fall between the
    two clients' copies of one message; an arrival the collector never had keeps the outsider's time."""
    collected: dict[tuple[str, str, int], list[float]] = {}
    for r in journal:
        if r["kind"] == "telemetry":
            p = r["payload"]
            collected.setdefault((p["device"], p["boot_id"], p["seq"]), []).append(r["t"])
    seen: dict[tuple[str, str, int], int] = {}
    out = []
    for t, device, boot, seq, dup in sorted(outside):
        key = (device, boot, seq)
        n = seen[key] = seen.get(key, -1) + 1
        times = collected.get(key, [])
        out.append((times[n] if n < len(times) else t, device, boot, seq, dup))
    return sorted(out)


def independent_figures(arrivals: list[Arrival], start: float, end: float) -> dict[tuple[str, str], BootFigures]:
    """Per device and boot, from the outsider's arrivals only: the window accounts for the seqs after
    the highest one of the boot received before it; an arrival of a seq received before is a duplicate."""
    before: dict[tuple[str, str], set[int]] = {}
    for t, device, boot, seq, _ in arrivals:
        if t < start:
            before.setdefault((device, boot), set()).add(seq)
    figures: dict[tuple[str, str], BootFigures] = {}
    here: dict[tuple[str, str], set[int]] = {}
    for t, device, boot, seq, dup in arrivals:
        if not start <= t <= end:
            continue
        key = (device, boot)
        f = figures.setdefault(key, BootFigures())
        f.received += 1
        if seq in before.get(key, set()) or seq in here.get(key, set()):
            f.duplicates += 1
            f.redelivered += dup
        else:
            f.unique += 1
            here.setdefault(key, set()).add(seq)
    for key, f in figures.items():
        old, got = before.get(key, set()), here.get(key, set())
        if got:
            f.lost = set(range(max(old, default=0) + 1, max(got) + 1)) - got
        f.last_seq = max(old | got)
    return figures


def spans(journal: list[dict[str, Any]], dumps: list[dict[str, Any]]) -> dict[str, dict[str, Span]]:
    """Each source's windows: the fixture's summary() ([telemetry.t0, the summary's time], exact), the
    per-test JUnit properties (the call: just before the open mark to just after the close mark) and a
    scenario's metrics (its start record to its checks)."""
    marks: dict[str, float] = {}
    steps: dict[str, float] = {}
    out: dict[str, dict[str, Span]] = {"summary": {}, "junit": {}, "scenario": {}}
    for d in dumps:
        out["summary"][d["window"]] = Span(d["window"], d["since"], d["until"])
    for r in journal:
        name = str(r.get("name", ""))
        if r["kind"] == "mark" and name.startswith("outside:"):
            marks[name] = r["t"]
            if name.startswith("outside:close:"):
                w = name.removeprefix("outside:close:")
                if f"outside:open:{w}" in marks:  # the call began just before its first statement
                    opened = marks[f"outside:open:{w}"]
                    out["junit"][w] = Span(w, opened, r["t"], [(opened - CALL_START, opened), (r["t"], r["t"] + 0.2)])
        elif r["kind"] == "scenario" and r.get("action") == "start":
            marks[r["scenario"]] = r["t"]
        elif r["kind"] == "step" and r.get("scenario"):
            steps[r["scenario"]] = r["t"]
        elif r["kind"] == "check" and r.get("scenario") and r["scenario"] not in out["scenario"]:
            sc = r["scenario"]
            fuzzy = [(marks[sc] - TAP_START, marks[sc]), (steps[sc], steps[sc] + 0.2)]  # last step, then metrics
            out["scenario"][sc] = Span(sc, marks[sc], steps[sc], fuzzy)
    return out


@pytest.fixture
def inner_run(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[subprocess.Popen[bytes], Path, Path]]:
    if find_mosquitto() is None:
        pytest.skip("Debian's mosquitto is not installed (apt-get install mosquitto)")
    pytester.makepyfile(test_windows=INNER_TESTS, test_zafter=INNER_AFTER)
    (pytester.path / "scenarios").mkdir()
    (pytester.path / "scenarios" / "outside-a.yaml").write_text(SCENARIO_A)
    (pytester.path / "scenarios" / "outside-b.yaml").write_text(SCENARIO_B)
    dump = tmp_path / "summaries.jsonl"
    reports = tmp_path / "reports"
    monkeypatch.setenv("OUTSIDE_DUMP", str(dump))
    log = tmp_path / "inner.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-p", "no:xdist", "-p", "no:cacheprovider", "-q",
             "test_windows.py", "scenarios/outside-a.yaml", "scenarios/outside-b.yaml", "test_zafter.py",
             "--reports-dir", str(reports), "--run-id", "outside", "--junitxml", str(tmp_path / "junit.xml")],
            cwd=pytester.path, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        yield proc, reports / "outside", dump
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def _inner_output(folder: Path) -> str:
    return (folder.parents[1] / "inner.log").read_text(errors="replace")[-4000:]


def _wait_for_services(proc: subprocess.Popen[bytes], folder: Path, timeout: float) -> dict[str, Any]:
    """The run's services file, once the inner run has started its broker (paced by the process's exit)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            info = discovery.read(folder)
            if info.get("state") == "running":
                return info
        except ValueError as exc:
            last = str(exc)
        else:
            last = f"state {info.get('state')!r}"
        if time.monotonic() > deadline:
            raise TimeoutError(f"no running services file in {folder} after {timeout:g}s; last: {last}")
        try:
            proc.wait(timeout=0.1)
        except subprocess.TimeoutExpired:
            continue
        raise AssertionError(f"the inner run ended before its services started:\n{_inner_output(folder)}")


def test_an_independent_subscriber_sees_what_the_harness_reports(
    inner_run: tuple[subprocess.Popen[bytes], Path, Path],
) -> None:
    proc, folder, dump = inner_run
    info = _wait_for_services(proc, folder, timeout=120)
    assert info["broker"]["password"] == "none" and info["topics"]["telemetry"] == "devices/+/telemetry"
    outsider = Outsider(info["broker"]["host"], info["broker"]["port"])
    try:
        assert outsider.subscribed.wait(30), f"no SUBACK from {info['broker']['url']} within 30 s"
        try:
            proc.wait(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
            pytest.fail(f"the inner run did not finish in {RUN_TIMEOUT:g}s:\n{_inner_output(folder)}")
    finally:
        outsider.close()
    assert proc.returncode == 0, _inner_output(folder)
    assert discovery.read(folder)["state"] == "stopped"

    journal = read_run(folder)
    dumps = [json.loads(line) for line in dump.read_text().splitlines()]
    windows = spans(journal, dumps)
    assert list(windows["summary"]) == ["gate", "steady-1", "steady-2", "partition", "broker-restart",
                                        "power-cut", "tcp-loss", "after-scenarios"]  # fmt: skip
    assert list(windows["scenario"]) == ["outside-a", "outside-b"]
    collected = [r["t"] for r in journal if r["kind"] == "telemetry"]
    # A message that arrived within a few ms of an edge known only roughly could be counted on either
    # side; such a window (rare: one in a few hundred) is left out, and at most one may be.
    at_edge = []
    for kind, source in windows.items():
        for name, span in list(source.items()):
            edge = [t for lo, hi in span.fuzzy for t in collected if lo <= t <= hi]
            if edge:
                at_edge.append(f"{kind} {name}: {edge}")
                del source[name]
    assert len(at_edge) <= 1, f"messages arrived at the edge of more than one window: {at_edge}"
    arrivals = on_collector_clock(outsider.seen.arrivals, journal)
    summaries = {d["window"]: d["summary"] for d in dumps}
    results = {t["test"]: t["properties"] for t in json.loads((folder / "results.json").read_text())["tests"]}
    problems: list[str] = []
    for name, span in windows["summary"].items():
        if name != "gate":  # the outsider joined during it
            problems += _compare_summary(name, summaries[name], independent_figures(arrivals, span.start, span.end))
    for name, span in windows["junit"].items():
        figures = independent_figures(arrivals, span.start, span.end)
        p = results[TESTS[name]]
        received = sum(f.received - f.redelivered for f in figures.values())
        got = int(p.get("harness.telemetry.received", -1)) - _session_redeliveries(journal, span)
        if got != received:
            problems.append(f"{name}: results.json received {p.get('harness.telemetry.received')} "
                            f"({got} without session redeliveries), outside {received}")
        if p.get("harness.telemetry.loss.unexplained") != "0":
            problems.append(f"{name}: results.json unexplained {p.get('harness.telemetry.loss.unexplained')}")
    for name, span in windows["scenario"].items():
        figures = independent_figures(arrivals, span.start, span.end)
        p = results[f"scenarios/{name}.yaml::{name}"]
        again = _session_redeliveries(journal, span)
        got = (p["metric.telemetry.received"] - again, p["metric.telemetry.unique"],
               p["metric.telemetry.duplicates"] - again,
               p["metric.telemetry.loss.total"] - p["metric.telemetry.loss.power_cut"])  # fmt: skip
        want = (sum(f.received - f.redelivered for f in figures.values()), sum(f.unique for f in figures.values()),
                sum(f.duplicates - f.redelivered for f in figures.values()),
                sum(len(f.lost) for f in figures.values()))  # fmt: skip
        if got != want:
            problems.append(f"{name}: scenario metrics received/unique/duplicates/lost {got}, outside {want}")
        if p["metric.telemetry.loss.unexplained"] != 0:
            problems.append(f"{name}: scenario unexplained {p['metric.telemetry.loss.unexplained']}")
        if name == "outside-b" and len(figures) != 2:
            problems.append(f"{name}: the power cut should start a second boot, outside saw {sorted(figures)}")
    assert not problems, "\n".join(problems)
    cut = independent_figures(arrivals, windows["summary"]["power-cut"].start, windows["summary"]["power-cut"].end)
    assert len(cut) == 2, f"the power cut should start a second boot, outside saw {sorted(cut)}"


def _session_redeliveries(journal: list[dict[str, Any]], span: Span) -> int:
    """Duplicates the broker re-sent to the collector's own session in ``span`` (journal flags)."""
    return sum(1 for r in journal if r["kind"] == "telemetry" and span.start <= r["t"] <= span.end
               and r.get("redelivered") and r.get("duplicate"))  # fmt: skip


def _compare_summary(name: str, summary: dict[str, Any], figures: dict[tuple[str, str], BootFigures]) -> list[str]:
    problems = []
    boots = {(dev, b["boot_id"]): b for dev, d in summary["devices"].items() for b in d["boots"] if b["received"]}
    if set(boots) != set(figures):
        return [f"{name}: boots {sorted(boots)} reported, {sorted(figures)} seen outside"]
    for key, f in figures.items():
        b = boots[key]
        if b["received"] != b["unique"] + b["duplicates"]:
            problems.append(f"{name} {key}: received {b['received']} != unique {b['unique']} + duplicates {b['duplicates']}")
        # a broker re-sends to one session what that session failed to acknowledge: per subscriber
        got = (b["received"] - b["redelivered"], b["unique"], b["duplicates"] - b["redelivered"])
        want = (f.received - f.redelivered, f.unique, f.duplicates - f.redelivered)
        if got != want:
            problems.append(f"{name} {key}: received/unique/duplicates without session redeliveries {got}, "
                            f"outside {want} (redelivered to the collector {b['redelivered']}, outside {f.redelivered})")
        gaps = summary["devices"][key[0]]["gaps"]
        counted = {s for g in gaps if g["boot_id"] == key[1] and not g["estimated"]
                   for s in range(g["first_seq"], g["last_seq"] + 1)}  # fmt: skip
        if counted != f.lost:
            problems.append(f"{name} {key}: lost seqs {sorted(counted)}, outside {sorted(f.lost)}")
        for g in gaps:
            if g["boot_id"] == key[1] and g["estimated"] and g["first_seq"] != f.last_seq + 1:
                problems.append(f"{name} {key}: power-cut tail from seq {g['first_seq']}, outside last {f.last_seq}")
        unexplained = [g for g in gaps if g["cause"] == "unexplained"]
        if unexplained:
            problems.append(f"{name} {key}: unexplained {unexplained}")
    return problems
