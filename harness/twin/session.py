"""The MQTT session and telemetry loop of one boot: connect, publish, back off, reconnect (sans-IO).

Readings are produced every ``telemetry.interval`` whatever the link does and go into the
store-and-forward buffer (:mod:`harness.twin.buffer`); while connected, up to
:data:`INFLIGHT_WINDOW` of them are in flight and each PUBACK makes room for the next. A lost
connection puts everything back to unsent and schedules a reconnect after an exponential back-off
(``mqtt.backoff_min`` doubling up to ``mqtt.backoff_max``, times a random 0.8-1.0). Connections are
numbered; events about an older connection are stale and ignored (counted).

Besides telemetry the session carries the boot's other MQTT traffic: after every CONNACK it
subscribes to its ``subscriptions`` (clean session) and hands each message it receives to ``inbox``;
reports given to :meth:`MqttSession.send` (OTA status) wait in an :class:`~harness.twin.outbox.Outbox`
until acknowledged and go out first on every new connection. ``carried`` are the reports the boot
before had not sent at a software reset (noinit RAM): they lead the outbox; :meth:`unsent` is what
this boot leaves for the next.

The session's legal moves are the :data:`SESSION_MOVES` table; anything else is an IllegalMove.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Protocol

from harness.twin import telemetry
from harness.twin.buffer import Entry, StoreAndForward
from harness.twin.events import (
    Action,
    NetConnect,
    NetConnected,
    NetDisconnect,
    NetDisconnected,
    NetMessage,
    NetPublish,
    NetPublished,
    NetSubscribe,
    Will,
)
from harness.twin.outbox import Outbox, Pending
from harness.twin.sensors import Sensors
from harness.twin.settings import Settings
from harness.twin.states import IllegalMove

TELEMETRY_TIMER = "telemetry"
RETRY_TIMER = "mqtt.retry"
CONNACK_TIMER = "mqtt.connack"
TIMERS = (TELEMETRY_TIMER, RETRY_TIMER, CONNACK_TIMER)
INFLIGHT_WINDOW = 10
JITTER = (0.8, 1.0)

DISABLED = "disabled"  # no mqtt.host configured: no telemetry at all
CONNECTING = "connecting"  # NetConnect sent, waiting for the CONNACK
ONLINE = "online"
BACKOFF = "backoff"  # waiting for the retry timer
CLOSED = "closed"  # shut down before a software reset

SESSION_MOVES: dict[tuple[str, str], frozenset[str]] = {
    (DISABLED, "start"): frozenset({DISABLED, CONNECTING}),
    (CONNECTING, "connected"): frozenset({ONLINE}),
    (CONNECTING, "lost"): frozenset({BACKOFF}),
    (CONNECTING, "connack-timeout"): frozenset({BACKOFF}),
    (ONLINE, "lost"): frozenset({BACKOFF}),
    (BACKOFF, "retry"): frozenset({CONNECTING}),
    (DISABLED, "shutdown"): frozenset({DISABLED}),
    (CONNECTING, "shutdown"): frozenset({CLOSED}),
    (ONLINE, "shutdown"): frozenset({CLOSED}),
    (BACKOFF, "shutdown"): frozenset({CLOSED}),
}


class Timers(Protocol):
    """What the session needs from the core: named timers the core keeps track of."""

    def start_timer(self, out: list[Action], name: str, delay: float) -> None: ...

    def cancel_timer(self, out: list[Action], name: str) -> None: ...


#: Where a subscribed message goes: (topic, payload, retained, now, out).
Inbox = Callable[[str, bytes, bool, float, list[Action]], None]


@dataclass(frozen=True)
class SessionStatistics:
    """What ``mqtt`` prints: link state, counters of this boot, the buffer."""

    state: str
    host: str | None
    port: int
    conn: int
    connects: int
    disconnects: int
    produced: int
    published: int
    acked: int
    buffered: int
    in_flight: int
    dropped: int
    stale: int
    received: int
    outbox: int
    outbox_dropped: int
    outbox_carried: int
    last_error: str


class MqttSession:
    """One boot's MQTT client state machine and telemetry producer."""

    def __init__(
        self,
        settings: Settings,
        identity: telemetry.Identity,
        *,
        powered_at: float,
        wall_offset: float,
        rng: random.Random,
        timers: Timers,
        heap_free: Callable[[float], int],
        subscriptions: tuple[str, ...] = (),
        inbox: Inbox | None = None,
        carried: list[Pending] | None = None,
    ) -> None:
        self.settings = settings
        self.identity = identity
        self.powered_at = powered_at
        self.wall_offset = wall_offset
        self.rng = rng
        self.timers = timers
        self.heap_free = heap_free
        self.subscriptions = subscriptions
        self.inbox = inbox
        self.outbox = Outbox()
        self.outbox.restore(carried or [])
        self.sensors = Sensors(settings, random.Random(rng.getrandbits(64)))
        self.buffer = StoreAndForward(settings.buffer, telemetry.encode_telemetry)
        self.state = DISABLED
        self.conn = 0
        self.live = False  # the runtime may still report on connection ``conn``
        self.draining = False  # a software reset waits for the last PUBACKs: nothing new goes out
        self.attempts = 0
        self.seq = 0
        self.next_due = 0.0
        self.last_error = ""
        self._refs = 0
        self._status_refs: set[int] = set()
        self._counts = dict.fromkeys(("connects", "disconnects", "published", "acked", "stale", "received"), 0)
        self.topic = telemetry.telemetry_topic(identity.device_id)
        self.status_topic = telemetry.status_topic(identity.device_id)

    # ------------------------------------------------------------------ inputs

    def start(self, now: float, out: list[Action]) -> None:
        """The application started: connect and produce readings, if a broker is configured."""
        if self.settings.host is None:
            self._go("start", DISABLED)
            return
        self.next_due = now + self.settings.interval
        self.timers.start_timer(out, TELEMETRY_TIMER, self.settings.interval)
        self._connect(now, out, "start")

    def on_timer(self, name: str, now: float, out: list[Action]) -> None:
        if name == TELEMETRY_TIMER:
            self._produce(now, out)
        elif name == RETRY_TIMER:
            self._connect(now, out, "retry")
        elif name == CONNACK_TIMER:
            out.append(NetDisconnect(self.conn, clean=False))
            self._lost(now, out, "connack-timeout", f"no CONNACK within {self._connack_timeout():g}s")
        else:
            raise IllegalMove(f"TimerFired({name!r}) is not a timer of the MQTT session ({self.state!r})")

    def on_net(self, event: NetConnected | NetDisconnected | NetPublished | NetMessage, now: float,
               out: list[Action]) -> None:  # fmt: skip
        if event.conn != self.conn or not self.live:
            self._counts["stale"] += 1
            return
        if isinstance(event, NetMessage):
            self._counts["received"] += 1
            if self.inbox is not None and event.topic in self.subscriptions:
                self.inbox(event.topic, event.payload, event.retained, now, out)
        elif isinstance(event, NetConnected):
            self._connected(now, out)
        elif isinstance(event, NetDisconnected):
            self._lost(now, out, "lost", event.reason)
        else:
            self._published(event.ref, out)

    def send(self, topic: str, payload: bytes, out: list[Action], *, retain: bool = True,
             coalesce: bool = False) -> None:  # fmt: skip
        """Deliver a report (QoS 1) on this boot's connections: now when online, else after the next
        CONNACK; re-sent after a lost connection until the broker acknowledges it."""
        self.outbox.add(topic, payload, retain=retain, coalesce=coalesce)
        if self.state == ONLINE:
            self._send_outbox(out)

    def shutdown(self, now: float, out: list[Action], *, carry_in_flight: bool = False) -> None:
        """Before a software reset: say goodbye cleanly (status offline, DISCONNECT). ``carry_in_flight``:
        the reports still unacknowledged count as unsent (the core stopped waiting for their PUBACK),
        so the next boot sends them again: at least once, never lost to a dying connection."""
        if carry_in_flight:
            self.outbox.connection_lost()
        if self.state == DISABLED:
            self._go("shutdown", DISABLED)
            return
        if self.state == ONLINE:
            payload = telemetry.clean_offline(self.identity, now + self.wall_offset)
            self._publish_status(payload, out)
            out.append(NetDisconnect(self.conn, clean=True))
        elif self.state == CONNECTING:
            out.append(NetDisconnect(self.conn, clean=False))
        for name in TIMERS:
            self.timers.cancel_timer(out, name)
        self.live = False
        self._go("shutdown", CLOSED)

    def reports_in_flight(self) -> bool:
        """Whether reports handed to the live connection still wait for their PUBACK."""
        return self.state == ONLINE and any(entry.ref is not None for entry in self.outbox.entries)

    def drain(self) -> None:
        """Before a software reset: hand nothing new to the network (the reports in flight may still be
        acknowledged); :meth:`shutdown` follows when they are, or when the core stops waiting."""
        self.draining = True

    def crash(self, out: list[Action]) -> None:
        """The application died (a fault, the watchdog is about to reset the board): no goodbye. The
        connection just ends (the broker publishes the will), and every report not acknowledged yet
        is unsent again, so noinit RAM carries it to the next boot."""
        if self.state in (ONLINE, CONNECTING):
            out.append(NetDisconnect(self.conn, clean=False))
        self.outbox.connection_lost()
        for name in TIMERS:
            self.timers.cancel_timer(out, name)
        self.live = False
        self._go("shutdown", DISABLED if self.state == DISABLED else CLOSED)

    def unsent(self) -> list[Pending]:
        """The reports not handed to a connection yet, in order: what a software reset carries over.

        After :meth:`shutdown`, reports in flight on a live connection were handed to it ahead of its
        clean DISCONNECT and are not carried (the core waited for their PUBACKs first: only those it
        stopped waiting for are carried, ``carry_in_flight``); after a lost connection every report is
        unsent again, and all are carried.
        """
        return self.outbox.unsent()

    def statistics(self) -> SessionStatistics:
        c = self._counts
        return SessionStatistics(
            state=self.state,
            host=self.settings.host,
            port=self.settings.port,
            conn=self.conn,
            connects=c["connects"],
            disconnects=c["disconnects"],
            produced=self.seq,
            published=c["published"],
            acked=c["acked"],
            buffered=len(self.buffer),
            in_flight=self.buffer.in_flight,
            dropped=self.buffer.dropped,
            stale=c["stale"],
            received=c["received"],
            outbox=len(self.outbox),
            outbox_dropped=self.outbox.dropped,
            outbox_carried=self.outbox.carried,
            last_error=self.last_error,
        )

    def describe(self) -> dict[str, object]:
        return asdict(self.statistics())

    # ------------------------------------------------------------------ internals

    def _go(self, trigger: str, new: str) -> None:
        allowed = SESSION_MOVES.get((self.state, trigger))
        if allowed is None or new not in allowed:
            raise IllegalMove(f"MQTT session: {trigger!r} in state {self.state!r} cannot lead to {new!r}")
        self.state = new

    def _connack_timeout(self) -> float:
        return float(max(2 * self.settings.keepalive, 5))

    def _connect(self, now: float, out: list[Action], trigger: str) -> None:
        assert self.settings.host is not None
        host = self.settings.host
        self._go(trigger, CONNECTING)
        self.conn += 1
        self.live = True
        will = Will(self.status_topic, telemetry.last_will(self.identity))
        s = self.settings
        out.append(NetConnect(self.conn, host, s.port, self.identity.device_id, s.keepalive, will))
        self.timers.start_timer(out, CONNACK_TIMER, self._connack_timeout())

    def _connected(self, now: float, out: list[Action]) -> None:
        self._go("connected", ONLINE)
        self.timers.cancel_timer(out, CONNACK_TIMER)
        self.attempts = 0
        self._counts["connects"] += 1
        self._publish_status(telemetry.online(self.identity, now + self.wall_offset, self._counts["connects"]), out)
        for topic in self.subscriptions:
            out.append(NetSubscribe(self.conn, topic, 1))
        self._send_outbox(out)
        self._send_more(out)

    def _lost(self, now: float, out: list[Action], trigger: str, reason: str) -> None:
        self._go(trigger, BACKOFF)
        if trigger != "connack-timeout":
            self.timers.cancel_timer(out, CONNACK_TIMER)
        self.live = False
        self.last_error = reason
        self._counts["disconnects"] += 1
        self.buffer.connection_lost()
        self.outbox.connection_lost()
        self._status_refs.clear()
        s = self.settings
        delay = min(s.backoff_max, s.backoff_min * 2 ** min(self.attempts, 30)) * self.rng.uniform(*JITTER)
        self.attempts += 1
        self.timers.start_timer(out, RETRY_TIMER, delay)

    def _produce(self, now: float, out: list[Action]) -> None:
        interval = self.settings.interval
        self.next_due += interval
        if self.next_due <= now:  # held back more than an interval (a busy CPU): re-anchor
            self.next_due = now + interval
        self.timers.start_timer(out, TELEMETRY_TIMER, self.next_due - now)
        self.seq += 1
        uptime = max(0.0, now - self.powered_at)
        reading: dict[str, object] = {
            "device": self.identity.device_id,
            "boot_id": self.identity.boot_id,
            "seq": self.seq,
            "uptime": round(uptime, 3),
            "heap_free": self.heap_free(now),
            "battery_v": self.sensors.battery_v(uptime),
            "rssi": self.sensors.rssi(),
            "temp_c": self.sensors.temp_c(),
            "fw": self.identity.fw,
            "ts": round(now + self.wall_offset, 3),
        }
        self.buffer.add(Entry(self.seq, reading))
        if self.state == ONLINE:
            self._send_more(out)

    def _send_more(self, out: list[Action]) -> None:
        if self.draining:
            return
        in_flight = self.buffer.in_flight
        while in_flight < INFLIGHT_WINDOW:
            entry = self.buffer.next_unsent()
            if entry is None:
                return
            ref = self._next_ref()
            payload = self.buffer.hand_off(entry, ref)
            out.append(NetPublish(self.conn, self.topic, payload, 1, False, ref))
            self._counts["published"] += 1
            in_flight += 1

    def _send_outbox(self, out: list[Action]) -> None:
        for entry in self.outbox.unsent():
            entry.ref = self._next_ref()
            out.append(NetPublish(self.conn, entry.topic, entry.payload, 1, entry.retain, entry.ref))

    def _published(self, ref: int, out: list[Action]) -> None:
        if ref in self._status_refs:
            self._status_refs.discard(ref)
            return
        if self.outbox.acknowledge(ref):
            return
        if self.buffer.acknowledge(ref) is not None:
            self._counts["acked"] += 1
        self._send_more(out)

    def _publish_status(self, payload: bytes, out: list[Action]) -> None:
        ref = self._next_ref()
        self._status_refs.add(ref)
        out.append(NetPublish(self.conn, self.status_topic, payload, 1, True, ref))

    def _next_ref(self) -> int:
        self._refs += 1
        return self._refs
