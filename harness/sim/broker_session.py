"""One client's session in the simulated broker: subscriptions, in-flight window and queue (MQTT 3.1.1 §4.1).

The session outlives its connection when the client connected with ``clean_session=False``: its
subscriptions stay, QoS 1 messages matching them are queued while it is offline, and deliveries it
had not acknowledged are sent again with DUP and their original packet id when it reconnects (§4.4).
At most ``max_inflight`` deliveries await a PUBACK at once (mosquitto's ``max_inflight_messages``);
the rest wait in order, up to ``max_queued`` (``max_queued_messages``), beyond which they are dropped.
QoS 0 messages are not queued for an offline client (mosquitto's ``queue_qos0_messages false``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from harness.sim.broker_actions import Deliver, Message
from harness.sim.topics import matches

MAX_PACKET_ID = 65535


@dataclass
class Session:
    client_id: str
    clean: bool
    conn: int | None = None  # the open connection, None while offline
    subscriptions: dict[str, int] = field(default_factory=dict)  # filter -> granted QoS, in order made
    in_flight: dict[int, Message] = field(default_factory=dict)  # packet id -> sent, not acknowledged
    queue: deque[Message] = field(default_factory=deque)
    last_packet_id: int = 0

    def granted(self, topic: str) -> int | None:
        """The QoS this session receives ``topic`` at: the highest of its matching subscriptions."""
        qos = [q for f, q in self.subscriptions.items() if matches(f, topic)]
        return max(qos) if qos else None

    def offer(self, msg: Message, out: list[Deliver], *, max_inflight: int, max_queued: int) -> bool:
        """Send ``msg`` now, queue it, or drop it (False: dropped because the queue is full)."""
        if self.conn is None:
            if msg.qos == 0:
                return True  # not queued for an offline client, by design
            return self._enqueue(msg, max_queued)
        if msg.qos == 0:
            out.append(Deliver(self.conn, msg.topic, msg.payload, 0, msg.retain, False, 0))
            return True
        if self.queue or len(self.in_flight) >= max_inflight:
            return self._enqueue(msg, max_queued)
        self._send(msg, out)
        return True

    def acknowledged(self, packet_id: int) -> bool:
        return self.in_flight.pop(packet_id, None) is not None

    def drain(self, out: list[Deliver], *, max_inflight: int) -> None:
        """Send queued messages while the window has room (after a PUBACK or a reconnect)."""
        while self.conn is not None and self.queue and len(self.in_flight) < max_inflight:
            self._send(self.queue.popleft(), out)

    def resume(self, conn: int, out: list[Deliver], *, max_inflight: int) -> None:
        """Reconnected on ``conn``: unacknowledged deliveries again with DUP (§4.4), then the queue."""
        self.conn = conn
        for packet_id, msg in self.in_flight.items():
            out.append(Deliver(conn, msg.topic, msg.payload, msg.qos, msg.retain, True, packet_id))
        self.drain(out, max_inflight=max_inflight)

    def _enqueue(self, msg: Message, max_queued: int) -> bool:
        if len(self.queue) >= max_queued:
            return False
        self.queue.append(msg)
        return True

    def _send(self, msg: Message, out: list[Deliver]) -> None:
        assert self.conn is not None
        packet_id = self._next_packet_id()
        self.in_flight[packet_id] = msg
        out.append(Deliver(self.conn, msg.topic, msg.payload, msg.qos, msg.retain, False, packet_id))

    def _next_packet_id(self) -> int:
        for _ in range(MAX_PACKET_ID):
            self.last_packet_id = self.last_packet_id % MAX_PACKET_ID + 1
            if self.last_packet_id not in self.in_flight:
                return self.last_packet_id
        raise RuntimeError(f"session {self.client_id!r}: all {MAX_PACKET_ID} packet ids are in flight")
