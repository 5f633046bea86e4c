"""The broker model's MQTT semantics, call by call, in fake seconds (no simpy: the core alone)."""

from __future__ import annotations

import pytest

from harness.sim.broker import BrokerModel, BrokerModelError
from harness.sim.broker_actions import (
    IDENTIFIER_REJECTED,
    BrokerAction,
    Closed,
    Connack,
    Deliver,
    Puback,
    Suback,
)
from harness.twin.events import Will

WILL = Will("devices/d1/status", b"offline", qos=1, retain=True)


def conn_of(actions: list[BrokerAction]) -> int:
    first = actions[0]
    assert isinstance(first, Connack), actions
    return first.conn


def delivered(actions: list[BrokerAction], conn: int | None = None) -> list[Deliver]:
    return [a for a in actions if isinstance(a, Deliver) and (conn is None or a.conn == conn)]


def subscriber(b: BrokerModel, client_id: str, topic_filter: str, *, clean: bool = True, now: float = 0.0) -> int:
    conn = conn_of(b.connect(client_id, clean_session=clean, keepalive=0, now=now))
    b.subscribe(conn, topic_filter, 1, now=now, packet_id=1)
    return conn


def test_qos1_publish_is_routed_then_acknowledged() -> None:
    b = BrokerModel()
    sub = subscriber(b, "collector", "devices/+/telemetry")
    pub = conn_of(b.connect("d1", clean_session=True, keepalive=10, now=1.0))
    out = b.publish(pub, "devices/d1/telemetry", b"r1", qos=1, retain=False, packet_id=7, now=2.0)
    assert out == [Deliver(sub, "devices/d1/telemetry", b"r1", 1, False, False, 1), Puback(pub, 7)]
    assert b.publish(pub, "devices/d1/telemetry", b"r2", qos=0, retain=False, now=2.0) == [
        Deliver(sub, "devices/d1/telemetry", b"r2", 0, False, False, 0)
    ]  # QoS 0: no PUBACK, no packet id
    stats = b.statistics()
    assert (stats.messages_in, stats.messages_out, stats.in_flight) == (2, 2, 1)
    assert b.puback(sub, 1, now=3.0) == []
    assert b.statistics().in_flight == 0


def test_subscription_qos_caps_the_delivery_and_qos2_is_granted_as_1() -> None:
    b = BrokerModel()
    sub = conn_of(b.connect("s", clean_session=True, keepalive=0, now=0))
    assert b.subscribe(sub, "a/#", 0, now=0, packet_id=3) == [Suback(sub, 3, "a/#", 0)]
    assert b.subscribe(sub, "b", 2, now=0, packet_id=4) == [Suback(sub, 4, "b", 1)]
    pub = conn_of(b.connect("p", clean_session=True, keepalive=0, now=0))
    assert delivered(b.publish(pub, "a/x", b"1", qos=1, retain=False, packet_id=1, now=0)) == [
        Deliver(sub, "a/x", b"1", 0, False, False, 0)
    ]


def test_retained_message_reaches_each_new_subscription_and_an_empty_one_clears_it() -> None:
    b = BrokerModel()
    pub = conn_of(b.connect("deployer", clean_session=True, keepalive=0, now=0))
    b.publish(pub, "devices/d1/ota/job", b"job-1", qos=1, retain=True, packet_id=1, now=0)
    b.publish(pub, "devices/d1/ota/job", b"job-2", qos=1, retain=True, packet_id=2, now=0)  # replaces
    dev = conn_of(b.connect("d1", clean_session=True, keepalive=0, now=1))
    out = b.subscribe(dev, "devices/d1/ota/job", 1, now=1, packet_id=1)
    assert out[1:] == [Deliver(dev, "devices/d1/ota/job", b"job-2", 1, True, False, 1)]
    assert b.statistics().retained == 1
    # an empty retained PUBLISH clears the copy; the current subscriber still gets it, retain flag clear
    out = b.publish(pub, "devices/d1/ota/job", b"", qos=1, retain=True, packet_id=3, now=2)
    assert delivered(out) == [Deliver(dev, "devices/d1/ota/job", b"", 1, False, False, 2)]
    assert b.retained() == {}
    late = conn_of(b.connect("d1-again", clean_session=True, keepalive=0, now=3))
    assert delivered(b.subscribe(late, "devices/+/ota/job", 1, now=3, packet_id=1)) == []


@pytest.mark.parametrize(
    ("ending", "will_published"),
    [
        ("connection_lost", True),
        ("disconnect", False),
        ("protocol_error", True),
        ("bad_filter", True),
    ],
)
def test_the_will_goes_out_only_when_the_connection_ends_without_disconnect(ending: str, will_published: bool) -> None:
    b = BrokerModel()
    sub = subscriber(b, "collector", "devices/+/status")
    dev = conn_of(b.connect("d1", clean_session=True, keepalive=10, now=0, will=WILL))
    if ending == "connection_lost":
        out = b.connection_lost(dev, now=5)
    elif ending == "disconnect":
        out = b.disconnect(dev, now=5)
    elif ending == "protocol_error":  # a wildcard in a PUBLISH topic: the broker closes the connection
        out = b.publish(dev, "devices/+/status", b"x", qos=1, retain=False, packet_id=1, now=5)
        assert isinstance(out[0], Closed) and "wildcard" in out[0].reason
    else:
        out = b.subscribe(dev, "devices/#/status", 1, now=5, packet_id=1)
        assert isinstance(out[0], Closed) and "last level" in out[0].reason
    wills = delivered(out, sub)
    assert wills == ([Deliver(sub, WILL.topic, b"offline", 1, False, False, 1)] if will_published else [])
    assert (WILL.topic in b.retained()) is will_published
    assert b.statistics().wills == int(will_published)
    assert b.statistics().connections == 1


@pytest.mark.parametrize(
    ("packets_at", "quiet_until", "expires_at"),
    [
        ([], 14.999, 15.0),  # 1.5 x keep alive 10 s after the CONNECT
        ([4.0], 18.999, 19.0),  # any control packet restarts the clock
        ([4.0, 12.5], 27.4, 27.5),
    ],
)
def test_keepalive_expiry_at_one_and_a_half_keepalives_publishes_the_will(
    packets_at: list[float], quiet_until: float, expires_at: float
) -> None:
    b = BrokerModel()
    sub = subscriber(b, "collector", "devices/+/status")
    dev = conn_of(b.connect("d1", clean_session=True, keepalive=10, now=0, will=WILL))
    for t in packets_at:
        b.ping(dev, now=t)
    assert b.next_deadline() == expires_at
    assert b.expire(quiet_until) == []
    out = b.expire(expires_at)
    assert out[0] == Closed(dev, "keep alive expired: no control packet for 15s")
    assert delivered(out) == [Deliver(sub, WILL.topic, b"offline", 1, False, False, 1)]
    assert b.next_deadline() is None
    assert b.publish(dev, "x", b"", qos=0, retain=False, now=expires_at) == []  # too late: stale
    assert (b.statistics().keepalive_expiries, b.statistics().stale) == (1, 1)


def test_any_call_past_a_deadline_expires_first() -> None:
    b = BrokerModel()
    dev = conn_of(b.connect("d1", clean_session=True, keepalive=2, now=0, will=WILL))
    sub = conn_of(b.connect("s", clean_session=True, keepalive=0, now=0))
    out = b.subscribe(sub, "devices/#", 1, now=10, packet_id=1)
    assert out[0] == Closed(dev, "keep alive expired: no control packet for 10s")
    assert out[1] == Suback(sub, 1, "devices/#", 1)
    assert delivered(out) == [Deliver(sub, WILL.topic, b"offline", 1, True, False, 1)]  # now retained


def test_persistent_session_queues_while_offline_and_redelivers_unacked_with_dup() -> None:
    b = BrokerModel()
    col = subscriber(b, "collector", "devices/+/telemetry", clean=False)
    pub = conn_of(b.connect("d1", clean_session=True, keepalive=0, now=0))
    b.publish(pub, "devices/d1/telemetry", b"1", qos=1, retain=False, packet_id=1, now=1)
    b.publish(pub, "devices/d1/telemetry", b"2", qos=1, retain=False, packet_id=2, now=1)
    b.puback(col, 1, now=1)  # "1" acknowledged, "2" in flight
    b.connection_lost(col, now=2)
    b.publish(pub, "devices/d1/telemetry", b"3", qos=1, retain=False, packet_id=3, now=3)
    b.publish(pub, "devices/d1/telemetry", b"q0", qos=0, retain=False, now=3)  # not queued for the offline
    assert (b.statistics().queued, b.statistics().in_flight) == (1, 1)
    out = b.connect("collector", clean_session=False, keepalive=0, now=4)
    col2 = conn_of(out)
    assert out[0] == Connack(col2, True, client_id="collector")
    assert delivered(out) == [
        Deliver(col2, "devices/d1/telemetry", b"2", 1, False, True, 2),  # same packet id, DUP
        Deliver(col2, "devices/d1/telemetry", b"3", 1, False, False, 3),
    ]
    # a clean session throws the stored one away
    b.connection_lost(col2, now=5)
    out = b.connect("collector", clean_session=True, keepalive=0, now=6)
    assert out == [Connack(out[0].conn, False, client_id="collector")]


def test_a_full_window_queues_until_pubacks_make_room() -> None:
    b = BrokerModel(max_inflight=2, max_queued=1)
    sub = subscriber(b, "s", "t")
    pub = conn_of(b.connect("p", clean_session=True, keepalive=0, now=0))
    outs = [b.publish(pub, "t", bytes([i]), qos=1, retain=False, packet_id=i + 1, now=0) for i in range(4)]
    assert [len(delivered(o)) for o in outs] == [1, 1, 0, 0]  # third queued, fourth dropped
    assert b.statistics().dropped == 1
    assert delivered(b.puback(sub, 1, now=1)) == [Deliver(sub, "t", b"\x02", 1, False, False, 3)]


@pytest.mark.parametrize(
    ("old_clean", "new_clean", "will_published", "session_present"),
    [
        (True, True, True, False),
        (False, True, True, False),
        (True, False, True, False),
        (False, False, False, True),  # both persistent: the session moves over, no will (mosquitto)
    ],
)
def test_a_second_connect_with_the_same_client_id_takes_the_session_over(
    old_clean: bool, new_clean: bool, will_published: bool, session_present: bool
) -> None:
    b = BrokerModel()
    watcher = subscriber(b, "watcher", "devices/+/status")
    old = conn_of(b.connect("d1", clean_session=old_clean, keepalive=10, now=0, will=WILL))
    b.subscribe(old, "devices/d1/cmd", 1, now=0, packet_id=1)
    out = b.connect("d1", clean_session=new_clean, keepalive=10, now=1, will=WILL)
    assert out[0] == Closed(old, "session taken over by a new connection with the same client id")
    new = out[-1].conn
    assert out[-1] == Connack(new, session_present, client_id="d1")
    assert bool(delivered(out, watcher)) is will_published
    assert b.statistics().takeovers == 1
    assert b.statistics().connections == 2
    assert b.publish(old, "devices/d1/x", b"", qos=0, retain=False, now=2) == []  # the old one is gone
    cmd = b.publish(watcher, "devices/d1/cmd", b"go", qos=0, retain=False, now=2)
    assert bool(delivered(cmd, new)) is session_present  # subscriptions moved with a persistent session


def test_client_ids_empty_assigned_for_clean_sessions_refused_for_persistent_ones() -> None:
    b = BrokerModel()
    out = b.connect("", clean_session=True, keepalive=0, now=0)
    assert out == [Connack(out[0].conn, False, client_id="auto-1")]
    out = b.connect("", clean_session=False, keepalive=0, now=0)
    conn = out[0].conn
    assert out == [Connack(conn, False, IDENTIFIER_REJECTED), Closed(conn, "identifier rejected")]
    assert b.statistics().refused == 1


@pytest.mark.parametrize("bad", [{"qos": 2}, {"keepalive": -1}])
def test_what_the_model_cannot_carry_is_a_carrier_error(bad: dict[str, int]) -> None:
    b = BrokerModel()
    with pytest.raises(BrokerModelError):
        if "qos" in bad:
            conn = conn_of(b.connect("c", clean_session=True, keepalive=0, now=0))
            b.publish(conn, "t", b"", qos=bad["qos"], retain=False, now=0)
        else:
            b.connect("c", clean_session=True, keepalive=bad["keepalive"], now=0)
