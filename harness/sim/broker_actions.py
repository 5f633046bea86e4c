"""What the simulated broker (:mod:`harness.sim.broker`) hands out: packets to clients, and its counters.

Every call into :class:`~harness.sim.broker.BrokerModel` returns a list of :data:`BrokerAction`, in the
order the broker sends them; each names the connection (``conn``) it goes to. The carrier routes
them (after whatever link delay) to the client on that connection. :class:`Closed` is the broker
ending a connection itself (takeover, keep alive expiry, protocol error, outage, refused); a
connection the client ended (:meth:`~harness.sim.broker.BrokerModel.disconnect`,
:meth:`~harness.sim.broker.BrokerModel.connection_lost`) gets nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

# CONNACK return codes (MQTT 3.1.1 §3.2.2.3)
ACCEPTED = 0
IDENTIFIER_REJECTED = 2
SUBACK_FAILURE = 0x80  # §3.9.3


class WillSpec(Protocol):
    """A last will as a CONNECT carries it; :class:`harness.twin.events.Will` is one."""

    @property
    def topic(self) -> str: ...

    @property
    def payload(self) -> bytes: ...

    @property
    def qos(self) -> int: ...

    @property
    def retain(self) -> bool: ...


@dataclass(frozen=True)
class Message:
    """An application message as the broker stores it (retained, queued, in flight)."""

    topic: str
    payload: bytes
    qos: int
    retain: bool = False


@dataclass(frozen=True)
class Connack:
    """CONNACK on ``conn``: ``code`` 0 accepted (else the connection is closed right after)."""

    conn: int
    session_present: bool
    code: int = ACCEPTED
    client_id: str = ""  # the client id in force (the broker's own choice for an empty one)


@dataclass(frozen=True)
class Deliver:
    """A PUBLISH to a subscriber. ``packet_id`` is 0 for QoS 0; QoS 1 wants :meth:`puback` with it.

    ``retain`` is set only for a retained copy sent because of a new subscription (§3.3.1.3);
    ``dup`` for a redelivery of an unacknowledged QoS 1 message at reconnect (§4.4).
    """

    conn: int
    topic: str
    payload: bytes
    qos: int
    retain: bool
    dup: bool
    packet_id: int


@dataclass(frozen=True)
class Puback:
    """PUBACK to the publisher of the QoS 1 PUBLISH ``packet_id``."""

    conn: int
    packet_id: int


@dataclass(frozen=True)
class Suback:
    """SUBACK for ``packet_id``: ``granted`` is the QoS granted for ``topic_filter``, or 0x80 refused."""

    conn: int
    packet_id: int
    topic_filter: str
    granted: int


@dataclass(frozen=True)
class Unsuback:
    """UNSUBACK for ``packet_id``."""

    conn: int
    packet_id: int


@dataclass(frozen=True)
class Pingresp:
    """PINGRESP to a PINGREQ."""

    conn: int


@dataclass(frozen=True)
class Closed:
    """The broker closed network connection ``conn``; ``reason`` is one line."""

    conn: int
    reason: str


BrokerAction = Connack | Deliver | Puback | Suback | Unsuback | Pingresp | Closed


@dataclass(frozen=True)
class BrokerStatistics:
    """A snapshot of the broker's state and counters (since it was made, across restarts)."""

    running: bool
    persistence: bool
    connections: int  # open now
    sessions: int  # stored now, online or not
    retained: int  # retained messages stored now
    queued: int  # QoS 1 messages waiting for an offline or busy client, now
    in_flight: int  # deliveries awaiting PUBACK, now
    connects: int  # CONNACKs accepted
    refused: int  # connects refused (broker down, bad client id)
    messages_in: int  # PUBLISH received from clients (wills not included)
    messages_out: int  # PUBLISH sent to clients, redeliveries included
    dropped: int  # messages a full queue could not take
    wills: int  # wills published
    takeovers: int
    keepalive_expiries: int
    stops: int
    starts: int
    stale: int  # calls about a connection that was already closed
