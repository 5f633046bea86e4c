"""The simulated MQTT broker: MQTT 3.1.1 semantics the twin and collector rely on, sans-IO.

Calls come in with the time on the caller's clock (``now``); what the broker sends comes back as
:data:`~harness.sim.broker_actions.BrokerAction` objects in sending order, for the carrier to route
(:class:`harness.sim.sim_broker.SimBroker` under simpy). No thread, no socket, no clock of its own.
mosquitto, as the harness configures it (``harness.services.broker.mosquitto_config``), is the
reference where the standard leaves a choice:

- QoS 0 and 1 (a QoS 2 request is granted QoS 1); a QoS 1 PUBLISH is answered with PUBACK after it
  has been routed; a subscriber receives a message once, at the highest QoS its matching
  subscriptions grant.
- Retained messages: stored per topic, sent with the retain flag to each new subscription, replaced
  by the next retained PUBLISH and cleared by an empty one (which current subscribers still get).
- Sessions (:mod:`harness.sim.broker_session`): ``clean_session=False`` keeps subscriptions, queues
  and in-flight deliveries across connections and says ``session_present`` in the CONNACK.
- A second CONNECT with a connected client id takes the session over: the old connection is closed
  (§3.1.4); its will goes out unless both connections asked for a persistent session (mosquitto).
- The last will is published when a connection ends without DISCONNECT: lost, closed by the broker
  for a protocol error, silent for 1.5 x its keep alive (§3.1.2.10; :meth:`expire` at
  :meth:`next_deadline`), taken over, or cut by a broker stop.
- :meth:`stop` is an outage: a clean stop publishes every connected client's will and then (with
  ``persistence``) saves sessions and retained messages; ``kill=True`` does neither. :meth:`start`
  restores what was last saved (an empty broker without persistence). Connects while stopped are
  refused.

Every call first expires the keep alives due by ``now``, so the order of events does not depend on
when the carrier's timer fires. Calls about a connection the broker no longer has are ignored and
counted (``stale``): a packet still on a simulated link when its connection died.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from harness.services.keepalive import KeepaliveTracker
from harness.sim.broker_actions import (
    IDENTIFIER_REJECTED,
    SUBACK_FAILURE,
    BrokerAction,
    BrokerStatistics,
    Closed,
    Connack,
    Deliver,
    Message,
    Pingresp,
    Puback,
    Suback,
    Unsuback,
    WillSpec,
)
from harness.sim.broker_session import Session
from harness.sim.topics import TopicError, check_filter, check_topic, matches

MAX_INFLIGHT = 100  # mosquitto_config: max_inflight_messages
MAX_QUEUED = 100_000  # mosquitto_config: max_queued_messages


class BrokerModelError(ValueError):
    """A call the broker model cannot carry out (QoS 2, a negative keep alive...): a carrier bug."""


@dataclass
class _Connection:
    conn: int
    client_id: str
    clean: bool
    will: Message | None


@dataclass
class _Saved:
    sessions: dict[str, Session] = field(default_factory=dict)
    retained: dict[str, Message] = field(default_factory=dict)


class BrokerModel:
    """One MQTT broker's state and decisions; see the module docstring for the rules it follows."""

    def __init__(self, *, persistence: bool = True, max_inflight: int = MAX_INFLIGHT,
                 max_queued: int = MAX_QUEUED) -> None:  # fmt: skip
        if max_inflight < 1 or max_queued < 0:
            raise BrokerModelError(f"max_inflight must be >= 1 and max_queued >= 0, not {max_inflight}, {max_queued}")
        self.persistence = persistence
        self.max_inflight = max_inflight
        self.max_queued = max_queued
        self.running = True
        self._sessions: dict[str, Session] = {}
        self._retained: dict[str, Message] = {}
        self._conns: dict[int, _Connection] = {}
        self._keepalive = KeepaliveTracker()
        self._saved = _Saved()
        self._last_conn = 0
        self._auto_ids = 0
        self._counts = dict.fromkeys(
            ("connects", "refused", "messages_in", "messages_out", "dropped", "wills", "takeovers",
             "keepalive_expiries", "stops", "starts", "stale"), 0)  # fmt: skip

    # ------------------------------------------------------------------ client packets

    def connect(self, client_id: str, *, clean_session: bool, keepalive: float, now: float,
                will: WillSpec | None = None) -> list[BrokerAction]:  # fmt: skip
        """A CONNECT on a new connection. The first action names the connection: a :class:`Connack`,
        or a :class:`Closed` when the broker is down (refused)."""
        if keepalive < 0:
            raise BrokerModelError(f"keep alive must be >= 0 seconds, not {keepalive}")
        out = self.expire(now)
        self._last_conn += 1
        conn = self._last_conn
        if not self.running:
            self._counts["refused"] += 1
            return [*out, Closed(conn, "connection refused: the broker is down")]
        if not client_id:
            if not clean_session:  # §3.1.3.1: a persistent session needs a client id
                self._counts["refused"] += 1
                return [*out, Connack(conn, False, IDENTIFIER_REJECTED), Closed(conn, "identifier rejected")]
            self._auto_ids += 1
            client_id = f"auto-{self._auto_ids}"
        stored = self._will_message(will)
        old = self._sessions.get(client_id)
        if old is not None and old.conn is not None:
            self._counts["takeovers"] += 1
            previous = self._conns[old.conn]
            self._close(previous, out, reason="session taken over by a new connection with the same client id",
                        publish_will=previous.clean or clean_session)  # fmt: skip
            old = self._sessions.get(client_id)
        present = old is not None and not clean_session
        if old is None or clean_session:
            session = self._sessions[client_id] = Session(client_id, clean_session)
        else:
            session = old
            session.clean = False
        self._conns[conn] = _Connection(conn, client_id, clean_session, stored)
        self._keepalive.connected(client_id, keepalive, now)
        self._counts["connects"] += 1
        out.append(Connack(conn, present, client_id=client_id))
        sent: list[Deliver] = []
        session.resume(conn, sent, max_inflight=self.max_inflight)
        return self._sent(out, sent)

    def publish(self, conn: int, topic: str, payload: bytes, *, qos: int, retain: bool, now: float,
                packet_id: int = 0, dup: bool = False) -> list[BrokerAction]:  # fmt: skip
        """A PUBLISH from the client on ``conn``: routed to the subscribers, PUBACKed for QoS 1.

        ``dup`` (a client's resend) changes nothing: QoS 1 is at least once, the copy is routed again.
        """
        out, c = self._packet(conn, now)
        if c is None:
            return out
        if qos not in (0, 1):
            raise BrokerModelError(f"PUBLISH on {topic!r} with QoS {qos}: the broker model carries QoS 0 and 1")
        try:
            check_topic(topic)
        except TopicError as e:
            self._close(c, out, reason=f"protocol error: {e}", publish_will=True)
            return out
        self._counts["messages_in"] += 1
        self._route(Message(topic, payload, qos, retain), out)
        if qos == 1:
            out.append(Puback(conn, packet_id))
        return out

    def subscribe(self, conn: int, topic_filter: str, qos: int, *, now: float,
                  packet_id: int = 0) -> list[BrokerAction]:  # fmt: skip
        """A SUBSCRIBE to one filter: SUBACK, then the retained messages it matches (retain flag set)."""
        out, c = self._packet(conn, now)
        if c is None:
            return out
        try:
            check_filter(topic_filter)
        except TopicError as e:
            self._close(c, out, reason=f"protocol error: {e}", publish_will=True)
            return out
        if qos not in (0, 1, 2):
            out.append(Suback(conn, packet_id, topic_filter, SUBACK_FAILURE))
            return out
        granted = min(qos, 1)
        session = self._sessions[c.client_id]
        session.subscriptions[topic_filter] = granted  # replaces an identical filter's (§3.8.4)
        out.append(Suback(conn, packet_id, topic_filter, granted))
        sent: list[Deliver] = []
        for msg in self._retained.values():
            if matches(topic_filter, msg.topic):
                copy_ = Message(msg.topic, msg.payload, min(msg.qos, granted), True)
                self._offer(session, copy_, sent)
        return self._sent(out, sent)

    def unsubscribe(self, conn: int, topic_filter: str, *, now: float, packet_id: int = 0) -> list[BrokerAction]:
        """An UNSUBSCRIBE: the filter (if the session has it) is removed; UNSUBACK in any case."""
        out, c = self._packet(conn, now)
        if c is None:
            return out
        self._sessions[c.client_id].subscriptions.pop(topic_filter, None)
        out.append(Unsuback(conn, packet_id))
        return out

    def puback(self, conn: int, packet_id: int, *, now: float) -> list[BrokerAction]:
        """The subscriber on ``conn`` acknowledged delivery ``packet_id``: the window moves on."""
        out, c = self._packet(conn, now)
        if c is None:
            return out
        session = self._sessions[c.client_id]
        session.acknowledged(packet_id)
        sent: list[Deliver] = []
        session.drain(sent, max_inflight=self.max_inflight)
        return self._sent(out, sent)

    def ping(self, conn: int, *, now: float) -> list[BrokerAction]:
        """A PINGREQ: PINGRESP (and, as every packet, the keep alive clock restarts)."""
        out, c = self._packet(conn, now)
        if c is not None:
            out.append(Pingresp(conn))
        return out

    def packet_seen(self, conn: int, *, now: float) -> list[BrokerAction]:
        """A control packet the model has no other call for arrived on ``conn``: keep alive bookkeeping."""
        return self._packet(conn, now)[0]

    def disconnect(self, conn: int, *, now: float) -> list[BrokerAction]:
        """A DISCONNECT: the connection ends cleanly, the will is discarded (§3.14.4)."""
        out, c = self._packet(conn, now)
        if c is not None:
            self._end(c, out, publish_will=False)
        return out

    def connection_lost(self, conn: int, *, now: float) -> list[BrokerAction]:
        """The network connection ended without DISCONNECT: the will is published."""
        out = self.expire(now)
        c = self._live(conn)
        if c is not None:
            self._end(c, out, publish_will=True)
        return out

    # ------------------------------------------------------------------ time and outages

    def next_deadline(self) -> float | None:
        """When the next keep alive runs out (call :meth:`expire` then), or None."""
        return self._keepalive.next_deadline()

    def expire(self, now: float) -> list[BrokerAction]:
        """Close every connection silent for 1.5 x its keep alive by ``now``, publishing its will."""
        out: list[BrokerAction] = []
        for client_id, silent in self._keepalive.expired(now):
            session = self._sessions.get(client_id)
            if session is None or session.conn is None:
                continue
            self._counts["keepalive_expiries"] += 1
            reason = f"keep alive expired: no control packet for {silent:g}s"
            self._close(self._conns[session.conn], out, reason=reason, publish_will=True)
        return out

    def stop(self, now: float, *, kill: bool = False) -> list[BrokerAction]:
        """The broker goes down: every connection is closed. A clean stop publishes the wills of all
        connected clients first and, with persistence, saves the sessions and retained messages;
        ``kill=True`` (SIGKILL) does neither, so a restart finds what was saved before."""
        if not self.running:
            return []
        out = self.expire(now)
        self._counts["stops"] += 1
        ending = list(self._conns.values())
        for c in ending:
            self._keepalive.forget(c.client_id)
            self._detach(c)
        for c in ending:
            out.append(Closed(c.conn, "broker stopped" if not kill else "broker killed"))
        if not kill:
            for c in ending:
                if c.will is not None:
                    self._publish_will(c.will, out)
            if self.persistence:
                self._saved = _Saved(copy.deepcopy(self._sessions), copy.deepcopy(self._retained))
        self.running = False
        self._sessions, self._retained = {}, {}
        return out

    def start(self, now: float) -> list[BrokerAction]:
        """The broker comes back: with persistence, as last saved; without, empty."""
        if self.running:
            return []
        self._counts["starts"] += 1
        self.running = True
        if self.persistence:
            self._sessions = copy.deepcopy(self._saved.sessions)
            self._retained = copy.deepcopy(self._saved.retained)
        return []

    # ------------------------------------------------------------------ reading

    def retained(self) -> dict[str, Message]:
        """Topic -> retained message, as stored now (a copy)."""
        return dict(self._retained)

    def session(self, client_id: str) -> Session | None:
        """The stored session of ``client_id`` (for inspection; do not modify)."""
        return self._sessions.get(client_id)

    def statistics(self) -> BrokerStatistics:
        sessions = self._sessions.values()
        return BrokerStatistics(
            running=self.running,
            persistence=self.persistence,
            connections=len(self._conns),
            sessions=len(self._sessions),
            retained=len(self._retained),
            queued=sum(len(s.queue) for s in sessions),
            in_flight=sum(len(s.in_flight) for s in sessions),
            **self._counts,
        )

    # ------------------------------------------------------------------ internals

    def _live(self, conn: int) -> _Connection | None:
        c = self._conns.get(conn)
        if c is None:
            self._counts["stale"] += 1
        return c

    def _packet(self, conn: int, now: float) -> tuple[list[BrokerAction], _Connection | None]:
        """Expiries due by ``now``, then the connection if it is still open (its keep alive restarted)."""
        out = self.expire(now)
        c = self._live(conn)
        if c is not None:
            self._keepalive.received(c.client_id, now)
        return out, c

    def _will_message(self, will: WillSpec | None) -> Message | None:
        if will is None:
            return None
        if will.qos not in (0, 1):
            raise BrokerModelError(f"will on {will.topic!r} with QoS {will.qos}: the broker model carries QoS 0 and 1")
        return Message(check_topic(will.topic), will.payload, will.qos, will.retain)

    def _close(self, c: _Connection, out: list[BrokerAction], *, reason: str, publish_will: bool) -> None:
        """The broker ends connection ``c`` itself."""
        out.append(Closed(c.conn, reason))
        self._end(c, out, publish_will=publish_will)

    def _end(self, c: _Connection, out: list[BrokerAction], *, publish_will: bool) -> None:
        self._keepalive.forget(c.client_id)
        self._detach(c)
        if publish_will and c.will is not None:
            self._publish_will(c.will, out)

    def _detach(self, c: _Connection) -> None:
        del self._conns[c.conn]
        session = self._sessions.get(c.client_id)
        if session is None or session.conn != c.conn:
            return
        session.conn = None
        if session.clean:
            del self._sessions[c.client_id]

    def _publish_will(self, will: Message, out: list[BrokerAction]) -> None:
        self._counts["wills"] += 1
        self._route(will, out)

    def _route(self, msg: Message, out: list[BrokerAction]) -> None:
        if msg.retain:
            if msg.payload:
                self._retained[msg.topic] = Message(msg.topic, msg.payload, msg.qos, True)
            else:
                self._retained.pop(msg.topic, None)
        sent: list[Deliver] = []
        for session in self._sessions.values():
            granted = session.granted(msg.topic)
            if granted is not None:
                self._offer(session, Message(msg.topic, msg.payload, min(msg.qos, granted), False), sent)
        self._sent(out, sent)

    def _offer(self, session: Session, msg: Message, sent: list[Deliver]) -> None:
        if not session.offer(msg, sent, max_inflight=self.max_inflight, max_queued=self.max_queued):
            self._counts["dropped"] += 1

    def _sent(self, out: list[BrokerAction], sent: list[Deliver]) -> list[BrokerAction]:
        self._counts["messages_out"] += len(sent)
        out.extend(sent)
        return out
