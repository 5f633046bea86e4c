"""The simulated broker under simpy: the :class:`~harness.sim.broker.BrokerModel` on a simulated clock.

:class:`SimBroker` passes ``env.now`` into every call, keeps one simpy timer for keep alive expiry
(armed at :meth:`BrokerModel.next_deadline`), and hands each action the model returns to the
``receive`` callback registered for its connection, after ``delay(conn, action)`` seconds of
simulated time: the hook where a simulated link will sit (a constant, zero by default). Actions on
one connection arrive in the order sent, as on TCP, whatever the delays; none is handed over during
the call that produced it, so a callback may call the broker again. No threads, no wall clock: the
same calls at the same simulated times give the same deliveries.

A connection's callback is dropped after the broker's :class:`~harness.sim.broker_actions.Closed`
reaches it, or at once when the client ends the connection (:meth:`disconnect`,
:meth:`connection_lost`: what was still on the way is lost with it).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator
from typing import Any

import simpy

from harness.sim.broker import BrokerModel
from harness.sim.broker_actions import BrokerAction, BrokerStatistics, Closed, WillSpec

Receive = Callable[[BrokerAction], None]
Delay = Callable[[int, BrokerAction], float]


def _constant(seconds: float) -> Delay:
    if seconds < 0:
        raise ValueError(f"a link delay must be >= 0 seconds, not {seconds}")

    def delay(conn: int, action: BrokerAction) -> float:
        return seconds

    return delay


class SimBroker:
    """A :class:`BrokerModel` driven by a ``simpy.Environment``; clients meet it through callbacks."""

    def __init__(self, env: simpy.Environment, model: BrokerModel | None = None, *,
                 delay: Delay | float = 0.0) -> None:  # fmt: skip
        self.env = env
        self.model = model if model is not None else BrokerModel()
        self._delay: Delay = delay if callable(delay) else _constant(float(delay))
        self._receivers: dict[int, Receive] = {}
        self._queues: dict[int, deque[tuple[float, BrokerAction]]] = {}
        self._armed: float | None = None

    # ------------------------------------------------------------------ client side

    def connect(self, client_id: str, *, clean_session: bool, keepalive: float, receive: Receive,
                will: WillSpec | None = None) -> int:  # fmt: skip
        """Open a connection; ``receive`` gets its CONNACK (or Closed when refused) and what follows."""
        now = self.env.now
        self._route(self.model.expire(now))  # so the first action of connect is the new connection's
        actions = self.model.connect(client_id, clean_session=clean_session, keepalive=keepalive, now=now, will=will)
        conn = actions[0].conn
        self._receivers[conn] = receive
        self._route(actions)
        return conn

    def publish(self, conn: int, topic: str, payload: bytes, *, qos: int, retain: bool, packet_id: int = 0,
                dup: bool = False) -> None:  # fmt: skip
        self._route(self.model.publish(conn, topic, payload, qos=qos, retain=retain, now=self.env.now,
                                       packet_id=packet_id, dup=dup))  # fmt: skip

    def subscribe(self, conn: int, topic_filter: str, qos: int = 1, *, packet_id: int = 0) -> None:
        self._route(self.model.subscribe(conn, topic_filter, qos, now=self.env.now, packet_id=packet_id))

    def unsubscribe(self, conn: int, topic_filter: str, *, packet_id: int = 0) -> None:
        self._route(self.model.unsubscribe(conn, topic_filter, now=self.env.now, packet_id=packet_id))

    def puback(self, conn: int, packet_id: int) -> None:
        self._route(self.model.puback(conn, packet_id, now=self.env.now))

    def ping(self, conn: int) -> None:
        self._route(self.model.ping(conn, now=self.env.now))

    def packet_seen(self, conn: int) -> None:
        self._route(self.model.packet_seen(conn, now=self.env.now))

    def disconnect(self, conn: int) -> None:
        self._forget(conn)
        self._route(self.model.disconnect(conn, now=self.env.now))

    def connection_lost(self, conn: int) -> None:
        self._forget(conn)
        self._route(self.model.connection_lost(conn, now=self.env.now))

    # ------------------------------------------------------------------ outages

    def stop(self, *, kill: bool = False) -> None:
        self._route(self.model.stop(self.env.now, kill=kill))

    def start(self) -> None:
        self._route(self.model.start(self.env.now))

    def outage(self, duration: float, *, kill: bool = False) -> Generator[simpy.Event, Any, None]:
        """A simpy process body: stop now, start again ``duration`` seconds later."""
        self.stop(kill=kill)
        yield self.env.timeout(duration)
        self.start()

    def statistics(self) -> BrokerStatistics:
        return self.model.statistics()

    # ------------------------------------------------------------------ internals

    def _forget(self, conn: int) -> None:
        self._receivers.pop(conn, None)
        self._queues.pop(conn, None)

    def _route(self, actions: list[BrokerAction]) -> None:
        now = self.env.now
        for action in actions:
            conn = action.conn
            if conn not in self._receivers:
                continue  # the client already let go of this connection
            queue = self._queues.get(conn)
            delay = self._delay(conn, action)
            if delay < 0:
                raise ValueError(f"the delay hook gave {delay} s for {action}; a delay must be >= 0")
            at = now + delay
            if queue is None:
                queue = self._queues[conn] = deque()
                self.env.process(self._pump(conn, queue))
            elif queue:
                at = max(at, queue[-1][0])  # TCP: nothing overtakes what was sent before it
            queue.append((at, action))
        self._arm()

    def _pump(self, conn: int, queue: deque[tuple[float, BrokerAction]]) -> Generator[simpy.Event, Any, None]:
        """Hand one connection's actions to its callback, each at its time, in order."""
        while queue:
            at, action = queue[0]
            if at > self.env.now:
                yield self.env.timeout(at - self.env.now)
            if self._queues.get(conn) is not queue:
                return  # the client let go meanwhile
            queue.popleft()
            receive = self._receivers[conn]
            if isinstance(action, Closed):
                self._forget(conn)
            receive(action)
        if self._queues.get(conn) is queue:
            del self._queues[conn]

    def _arm(self) -> None:
        deadline = self.model.next_deadline()
        if deadline is None or (self._armed is not None and self._armed <= deadline):
            return  # an alarm at or before it is set; it re-arms for what is due then
        self._armed = deadline
        self.env.process(self._alarm(deadline))

    def _alarm(self, deadline: float) -> Generator[simpy.Event, Any, None]:
        yield self.env.timeout(max(0.0, deadline - self.env.now))
        if self._armed != deadline:
            return  # superseded by an earlier alarm
        self._armed = None
        now = max(self.env.now, deadline)
        self._route(self.model.expire(now))
        left = self.model.next_deadline()
        if left is not None and left <= now:  # would re-arm at this instant for ever
            raise RuntimeError(f"keep alive deadline {left} still pending after expiring at {now}")
        self._arm()
