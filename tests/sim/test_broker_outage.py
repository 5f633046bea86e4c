"""Broker outages in the model: stop (clean or killed) and start, with and without persistence (mosquitto)."""

from __future__ import annotations

import pytest

from harness.sim.broker import BrokerModel
from harness.sim.broker_actions import BrokerAction, Closed, Connack, Deliver
from harness.twin.events import Will

WILL = Will("devices/d1/status", b"offline", qos=1, retain=True)


def conn_of(actions: list[BrokerAction]) -> int:
    assert isinstance(actions[0], Connack), actions
    return actions[0].conn


def rig(b: BrokerModel) -> tuple[int, int, int]:
    """A collector (persistent, one delivery in flight), a device with a will, a deployer's retained job."""
    col = conn_of(b.connect("collector", clean_session=False, keepalive=60, now=0))
    b.subscribe(col, "devices/+/telemetry", 1, now=0, packet_id=1)
    b.subscribe(col, "devices/+/status", 1, now=0, packet_id=2)
    dev = conn_of(b.connect("d1", clean_session=True, keepalive=10, now=0, will=WILL))
    b.publish(dev, "devices/d1/telemetry", b"r1", qos=1, retain=False, packet_id=1, now=1)  # not acked
    dep = conn_of(b.connect("deployer", clean_session=True, keepalive=60, now=0))
    b.publish(dep, "devices/d1/ota/job", b"job", qos=1, retain=True, packet_id=1, now=1)
    return col, dev, dep


@pytest.mark.parametrize(
    ("persistence", "kill", "session_present", "redelivered", "retained"),
    [
        # a clean stop publishes the wills, then saves: the collector gets r1 again (DUP) and the will
        (True, False, True, [(b"r1", True), (b"offline", False)], {"devices/d1/ota/job", "devices/d1/status"}),
        (False, False, False, [], set()),  # no persistence: an empty broker comes back
        (True, True, False, [], set()),  # killed: no wills, nothing saved since it started
        (False, True, False, [], set()),
    ],
)
def test_stop_and_start(persistence: bool, kill: bool, session_present: bool,
                        redelivered: list[tuple[bytes, bool]], retained: set[str]) -> None:  # fmt: skip
    b = BrokerModel(persistence=persistence)
    col, dev, dep = rig(b)
    out = b.stop(10, kill=kill)
    reason = "broker killed" if kill else "broker stopped"
    assert out == [Closed(col, reason), Closed(dev, reason), Closed(dep, reason)]  # nobody online gets the will
    assert b.statistics().wills == (0 if kill else 1)
    assert b.stop(11) == []  # already down
    assert b.connect("d1", clean_session=True, keepalive=10, now=12) == [
        Closed(4, "connection refused: the broker is down")
    ]
    assert b.publish(dev, "devices/d1/telemetry", b"late", qos=1, retain=False, packet_id=2, now=12) == []
    b.start(20)
    assert set(b.retained()) == retained
    back = b.connect("collector", clean_session=False, keepalive=60, now=21)
    assert back[0] == Connack(back[0].conn, session_present, client_id="collector")
    assert [(a.payload, a.dup) for a in back if isinstance(a, Deliver)] == redelivered
    stats = b.statistics()
    assert (stats.stops, stats.starts, stats.refused, stats.running) == (1, 1, 1, True)


def test_a_killed_broker_comes_back_as_it_was_last_saved() -> None:
    b = BrokerModel(persistence=True)
    rig(b)
    b.stop(10)  # saved: the job and the will retained, the collector's session
    b.start(20)
    dep = conn_of(b.connect("deployer", clean_session=True, keepalive=60, now=21))
    b.publish(dep, "devices/d1/ota/job", b"", qos=1, retain=True, packet_id=1, now=22)  # cleared, not saved
    assert set(b.retained()) == {"devices/d1/status"}
    b.stop(30, kill=True)
    b.start(40)
    assert set(b.retained()) == {"devices/d1/ota/job", "devices/d1/status"}  # the clear is lost
    session = b.session("collector")
    assert session is not None and session.conn is None and len(session.subscriptions) == 2


def test_clean_sessions_do_not_survive_a_restart_even_with_persistence() -> None:
    b = BrokerModel(persistence=True)
    rig(b)
    b.stop(10)
    b.start(20)
    assert b.session("d1") is None and b.session("deployer") is None
    assert b.statistics().sessions == 1
