"""The broker model on a simpy clock: keep alive timer, per-connection delays, outages, determinism."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import pytest
import simpy

from harness.sim.broker import BrokerModel
from harness.sim.broker_actions import BrokerAction, Closed, Connack, Deliver, Puback
from harness.sim.sim_broker import SimBroker
from harness.twin.events import Will

WILL = Will("devices/d1/status", b"offline", qos=1, retain=True)
Log = list[tuple[float, BrokerAction]]


class Client:
    """Records what reaches it, with the simulated time; acknowledges QoS 1 deliveries."""

    def __init__(self, sim: SimBroker, client_id: str, *, clean: bool = True, keepalive: float = 0,
                 will: Will | None = None, auto_ack: bool = True,
                 tap: Callable[[BrokerAction], None] | None = None) -> None:  # fmt: skip
        self.sim, self.auto_ack, self.tap = sim, auto_ack, tap
        self.log: Log = []
        self.closed = False
        self.conn = sim.connect(client_id, clean_session=clean, keepalive=keepalive, will=will, receive=self.receive)

    def receive(self, action: BrokerAction) -> None:
        self.log.append((self.sim.env.now, action))
        self.closed = self.closed or isinstance(action, Closed)
        if self.tap is not None:
            self.tap(action)
        if self.auto_ack and isinstance(action, Deliver) and action.qos == 1:
            self.sim.puback(action.conn, action.packet_id)

    def deliveries(self) -> list[tuple[float, bytes]]:
        return [(t, a.payload) for t, a in self.log if isinstance(a, Deliver)]


def pings(sim: SimBroker, conn: int, at: list[float]) -> Generator[simpy.Event, Any, None]:
    for t in at:
        yield sim.env.timeout(t - sim.env.now)
        sim.ping(conn)


@pytest.mark.parametrize(
    ("keepalive", "pings_at", "expected_at"),
    [
        (10, [], 15.0),
        (10, [6.0], 21.0),
        (10, [6.0, 20.5], 35.5),
        (4, [], 6.0),
    ],
)
def test_the_will_arrives_at_exactly_one_and_a_half_keepalives_after_the_last_packet(
    keepalive: float, pings_at: list[float], expected_at: float
) -> None:
    env = simpy.Environment()
    sim = SimBroker(env)
    watcher = Client(sim, "collector")
    sim.subscribe(watcher.conn, "devices/+/status")
    device = Client(sim, "d1", keepalive=keepalive, will=WILL)
    env.process(pings(sim, device.conn, pings_at))
    env.run(until=100)
    assert watcher.deliveries() == [(expected_at, b"offline")]
    closed = [(t, a) for t, a in device.log if isinstance(a, Closed)]
    assert [t for t, _ in closed] == [expected_at]
    assert sim.statistics().keepalive_expiries == 1


def test_no_will_after_a_clean_disconnect_and_none_while_packets_flow() -> None:
    env = simpy.Environment()
    sim = SimBroker(env)
    watcher = Client(sim, "collector")
    sim.subscribe(watcher.conn, "devices/+/status")
    device = Client(sim, "d1", keepalive=10, will=WILL)
    env.process(pings(sim, device.conn, [9.0, 18.0, 27.0]))
    env.run(until=30)
    sim.disconnect(device.conn)
    env.run(until=200)
    assert watcher.deliveries() == []
    assert sim.statistics().connections == 1


def test_a_will_at_a_fractional_time_fires_once() -> None:
    env = simpy.Environment(initial_time=0.1)
    sim = SimBroker(env)
    watcher = Client(sim, "collector")
    sim.subscribe(watcher.conn, "devices/+/status")
    Client(sim, "d1", keepalive=0.7, will=WILL)
    env.run(until=10)
    assert [t for t, _ in watcher.deliveries()] == [pytest.approx(0.1 + 1.05)]


def test_delays_are_per_connection_and_nothing_overtakes_what_was_sent_before() -> None:
    env = simpy.Environment()
    delays = iter([0.0, 5.0, 1.0, 0.5])  # CONNACK, SUBACK, then two deliveries
    sim = SimBroker(env, delay=lambda conn, action: next(delays) if conn == 1 else 0.25)
    slow = Client(sim, "slow")
    sim.subscribe(slow.conn, "t")
    fast = Client(sim, "fast")
    sim.publish(fast.conn, "t", b"a", qos=1, retain=False, packet_id=1)
    sim.publish(fast.conn, "t", b"b", qos=1, retain=False, packet_id=2)
    env.run()
    assert [(t, type(a).__name__) for t, a in slow.log] == [
        (0.0, "Connack"), (5.0, "Suback"), (5.0, "Deliver"), (5.0, "Deliver")
    ]  # fmt: skip
    assert [p for _, p in slow.deliveries()] == [b"a", b"b"]
    assert [(t, a) for t, a in fast.log if isinstance(a, Puback)] == [(0.25, Puback(2, 1)), (0.25, Puback(2, 2))]
    assert sim.statistics().in_flight == 0  # the callback's PUBACKs reached the broker


def test_an_outage_process_cuts_everyone_refuses_connects_and_restores_the_persistent_session() -> None:
    env = simpy.Environment()
    sim = SimBroker(env, BrokerModel(persistence=True))
    collector = Client(sim, "collector", clean=False, auto_ack=False)
    sim.subscribe(collector.conn, "devices/+/telemetry")
    device = Client(sim, "d1", keepalive=10, will=WILL)
    sim.publish(device.conn, "devices/d1/telemetry", b"r1", qos=1, retain=False, packet_id=1)
    env.run(until=1)
    env.process(sim.outage(5))
    env.run(until=2)
    assert [type(a) for _, a in collector.log][-1] is Closed
    refused = Client(sim, "d1", keepalive=10)
    env.run(until=7)
    assert [a for _, a in refused.log] == [Closed(refused.conn, "connection refused: the broker is down")]
    again = Client(sim, "collector", clean=False)
    env.run(until=8)
    assert again.log[0] == (7, Connack(again.conn, True, client_id="collector"))
    assert [(a.payload, a.dup) for _, a in again.log if isinstance(a, Deliver)] == [(b"r1", True)]


def test_after_the_client_lets_go_nothing_more_reaches_its_callback() -> None:
    env = simpy.Environment()
    sim = SimBroker(env, delay=1.0)
    sub = Client(sim, "s")
    sim.subscribe(sub.conn, "t")
    pub = Client(sim, "p")
    env.run(until=2)
    sim.publish(pub.conn, "t", b"on the wire", qos=0, retain=False)
    sim.connection_lost(sub.conn)
    env.run()
    assert sub.deliveries() == []
    assert sim.statistics().stale == 0


def scenario(order: list[str]) -> list[tuple[str, float, BrokerAction]]:
    """Devices, a collector, a broker restart and keep alive expiries; everything each client saw."""
    env = simpy.Environment()
    sim = SimBroker(env, BrokerModel(persistence=True), delay=lambda conn, action: 0.01 * (conn % 3))
    seen: list[tuple[str, float, BrokerAction]] = []

    def tap(name: str) -> Callable[[BrokerAction], None]:
        return lambda action: seen.append((name, env.now, action))

    def device(name: str, period: float) -> Generator[simpy.Event, Any, None]:
        will = Will(f"devices/{name}/status", b"offline")
        c = Client(sim, name, keepalive=3, will=will, tap=tap(name))
        for i in range(8):
            yield env.timeout(period)
            if c.closed:  # the broker went away: connect again
                c = Client(sim, name, keepalive=3, will=will, tap=tap(name))
            sim.publish(c.conn, f"devices/{name}/telemetry", str(i).encode(), qos=1, retain=False, packet_id=i + 1)
        # then silence: the keep alive runs out and the will goes out

    def outage(at: float, duration: float) -> Generator[simpy.Event, Any, None]:
        yield env.timeout(at)
        yield from sim.outage(duration)

    def collector() -> Generator[simpy.Event, Any, None]:
        c = Client(sim, "collector", clean=False, keepalive=60, tap=tap("collector"))
        sim.subscribe(c.conn, "devices/#")
        while True:
            yield env.timeout(0.5)
            if c.closed:  # the persistent session keeps the subscription
                c = Client(sim, "collector", clean=False, keepalive=60, tap=tap("collector"))

    env.process(collector())
    for k, name in enumerate(order):
        env.process(device(name, 0.7 + 0.3 * k))
    env.process(outage(3.0, 1.5))
    env.run(until=30)
    return seen


def test_the_same_inputs_give_the_same_actions_at_the_same_times() -> None:
    first = scenario(["d1", "d2", "d3"])
    assert first == scenario(["d1", "d2", "d3"])
    assert any(isinstance(a, Closed) and a.reason == "broker stopped" for _, _, a in first)
    assert any(isinstance(a, Deliver) and a.payload == b"offline" for _, _, a in first)
    assert first != scenario(["d2", "d1", "d3"])  # and the log is sensitive to what changed
