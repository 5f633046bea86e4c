"""An in-memory runtime for the firmware core: simulated clock, flash bytearray, optional power cut.

The pump is a lighter double of the board runtime: it executes actions like
``harness.twin.runtime`` does (FlashWrite -> bytes in the flash image, StartTimer -> a due time,
Reboot -> a new core from flash), but in simulated time and with a write budget that models a
power cut after the k-th page-program unit.

A ``Reboot`` hands its ``noinit`` RAM to the next ``PowerOn`` (a software or watchdog reset keeps it);
:meth:`Pump.power_cut` and :meth:`Pump.power_on` start without it, as a power cut does.

Network actions go to an in-memory broker (:class:`MemoryBroker`): it accepts or refuses
connections, acknowledges publishes after a one-way ``delay``, keeps retained messages, publishes
the will when a connection dies uncleanly, keeps subscriptions (a test publishes to the device with
:meth:`Pump.publish`, retained messages are delivered on SUBSCRIBE), and can stall (carry nothing,
acknowledge nothing). Its answers are events queued in simulated time, next to the timers. The periodic timers of the
telemetry loop (:data:`BACKGROUND`) only run when ``run(until=...)`` names an end time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from harness.twin import (
    PROMPT,
    Action,
    CancelTimer,
    ConsoleInput,
    ConsoleOutput,
    Device,
    Event,
    FlashLayout,
    FlashWrite,
    Halt,
    NetConnect,
    NetConnected,
    NetDisconnect,
    NetDisconnected,
    NetMessage,
    NetPublish,
    NetPublished,
    NetSubscribe,
    PowerOn,
    Reboot,
    StartTimer,
    StateChange,
    TimerFired,
)

SMALL = FlashLayout(slot_pages=96)  # 384 KiB slots: room for a 256 KiB test image, fast to copy
MAX_STEPS = 100_000
WALL = 1_700_000_000.0  # the Unix time the pump's clock starts at
BACKGROUND = frozenset({"telemetry", "mqtt.retry", "mqtt.connack", "heap.exhausted"})


@dataclass
class Arrival:
    """One PUBLISH the in-memory broker accepted."""

    at: float
    topic: str
    payload: dict[str, Any]
    retain: bool


@dataclass
class MemoryBroker:
    """A broker in the pump's simulated time (see the module docstring)."""

    up: bool = True  # accepts connections
    stalled: bool = False  # a live connection carries nothing either way
    delay: float = 0.0  # one-way: CONNECT -> CONNACK and PUBLISH -> PUBACK each take this long
    conn: int | None = None  # the live connection
    will: Any = None
    arrivals: list[Arrival] = field(default_factory=list)
    retained: dict[str, dict[str, Any]] = field(default_factory=dict)
    connects: list[int] = field(default_factory=list)
    attempts: list[float] = field(default_factory=list)  # when each CONNECT arrived, accepted or not
    last_connect: Any = None
    subscriptions: dict[str, int] = field(default_factory=dict)  # topic -> the connection subscribed
    to_device: dict[str, bytes] = field(default_factory=dict)  # retained messages for subscribers
    delivered: list[tuple[float, str, bytes]] = field(default_factory=list)  # what reached a subscriber

    def telemetry(self) -> list[dict[str, Any]]:
        return [a.payload for a in self.arrivals if a.topic.endswith("/telemetry")]

    def seqs(self) -> list[int]:
        return [int(p["seq"]) for p in self.telemetry()]

    def statuses(self) -> list[dict[str, Any]]:
        return [a.payload for a in self.arrivals if a.topic.endswith("/status") and "/ota/" not in a.topic]

    def ota_statuses(self) -> list[dict[str, Any]]:
        return [a.payload for a in self.arrivals if a.topic.endswith("/ota/status")]

    def accept(self, topic: str, payload: bytes, retain: bool, now: float) -> None:
        body = json.loads(payload)
        self.arrivals.append(Arrival(now, topic, body, retain))
        if retain:
            self.retained[topic] = body

    def lose_connection(self, now: float) -> None:
        """The broker side of an unclean end: publish the will."""
        if self.conn is not None and self.will is not None:
            self.accept(self.will.topic, self.will.payload, self.will.retain, now)
        self.conn = None
        self.will = None
        self.subscriptions.clear()


class PowerCut(Exception):
    """The write budget ran out: everything after the cut never happened."""


@dataclass
class Pump:
    flash: bytearray
    layout: FlashLayout = SMALL
    boot_time: float = 0.05
    write_budget: int | None = None  # None: unlimited; k: power dies before the (k+1)-th unit
    tear_last: bool = False  # the unit that hits the cut is half programmed
    now: float = 0.0
    output: bytearray = field(default_factory=bytearray)
    timers: dict[str, float] = field(default_factory=dict)
    states: list[str] = field(default_factory=list)
    halted: str | None = None
    reboots: list[str] = field(default_factory=list)
    writes: list[FlashWrite] = field(default_factory=list)
    device: Device | None = None
    entropy: int = 1
    broker: MemoryBroker = field(default_factory=MemoryBroker)
    net_events: list[tuple[float, int, Event]] = field(default_factory=list)
    _order: int = 0

    def power_on(self, cause: str = "power-on", *, noinit: bytes = b"") -> None:
        self.device = Device(self.flash, layout=self.layout, boot_time=self.boot_time)
        self.timers.clear()
        self.net_events.clear()
        self.feed(PowerOn(cause, self.entropy, wall_offset=WALL, noinit=noinit))

    def power_cut(self) -> None:
        """The board dies: RAM, timers and the connection are gone (the broker publishes the will)."""
        self.device = None
        self.entropy += 1  # the next power-on draws new entropy (a new boot id)
        self.timers.clear()
        self.net_events.clear()
        self.broker.lose_connection(self.now)

    def drop_connection(self, reason: str = "connection reset") -> None:
        """The link dies under a live connection: the device hears it, the broker publishes the will."""
        conn = self.broker.conn
        if conn is not None:
            self.broker.lose_connection(self.now)
            self.schedule(0.0, NetDisconnected(conn, reason))

    def publish(self, topic: str, payload: bytes, *, retain: bool = True) -> None:
        """A client of the broker publishes to the device (an empty retained payload clears)."""
        if retain:
            if payload:
                self.broker.to_device[topic] = payload
            else:
                self.broker.to_device.pop(topic, None)
        conn = self.broker.subscriptions.get(topic)
        if conn is not None and conn == self.broker.conn and not self.broker.stalled:
            self._deliver(conn, topic, payload, False)

    def _deliver(self, conn: int, topic: str, payload: bytes, retained: bool) -> None:
        self.broker.delivered.append((self.now, topic, payload))
        self.schedule(self.broker.delay, NetMessage(conn, topic, payload, retained))

    def schedule(self, delay: float, event: Event) -> None:
        self._order += 1
        self.net_events.append((self.now + delay, self._order, event))

    def feed(self, event: Event) -> None:
        assert self.device is not None
        self.apply(self.device.handle(event, self.now))

    def apply(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, ConsoleOutput):
                self.output += action.data
            elif isinstance(action, FlashWrite):
                self._program(action)
            elif isinstance(action, StartTimer):
                self.timers[action.name] = self.now + action.delay
            elif isinstance(action, CancelTimer):
                self.timers.pop(action.name, None)
            elif isinstance(action, StateChange):
                self.states.append(action.state)
            elif isinstance(action, Halt):
                self.halted = action.reason
            elif isinstance(action, NetConnect | NetPublish | NetDisconnect | NetSubscribe):
                self._net(action)
            elif isinstance(action, Reboot):
                self.reboots.append(action.reason)
                self.entropy += 1
                self.power_on(action.reason, noinit=action.noinit)
                return

    def _net(self, action: NetConnect | NetPublish | NetDisconnect | NetSubscribe) -> None:
        broker, delay = self.broker, self.broker.delay
        if isinstance(action, NetSubscribe):
            if broker.conn == action.conn and not broker.stalled:
                broker.subscriptions[action.topic] = action.conn
                retained = broker.to_device.get(action.topic)
                if retained is not None:
                    self._deliver(action.conn, action.topic, retained, True)
            return
        if isinstance(action, NetConnect):
            broker.attempts.append(self.now)
            broker.last_connect = action
            if not broker.up:
                self.schedule(delay, NetDisconnected(action.conn, "connection refused"))
                return
            broker.lose_connection(self.now)  # a client id takes over its previous session
            broker.conn, broker.will = action.conn, action.will
            broker.connects.append(action.conn)
            if not broker.stalled:
                self.schedule(2 * delay, NetConnected(action.conn))
        elif isinstance(action, NetPublish):
            if broker.conn == action.conn and not broker.stalled:
                broker.accept(action.topic, action.payload, action.retain, self.now + delay)
                self.schedule(2 * delay, NetPublished(action.conn, action.ref))
        elif broker.conn == action.conn:
            if action.clean:
                broker.conn = broker.will = None
                broker.subscriptions.clear()
            else:
                broker.lose_connection(self.now)

    def _program(self, write: FlashWrite) -> None:
        if self.write_budget is not None:
            if self.write_budget == 0:
                if self.tear_last:
                    half = write.data[: len(write.data) // 2]
                    self.flash[write.offset : write.offset + len(half)] = half
                raise PowerCut(f"power cut before unit write at offset {write.offset}")
            self.write_budget -= 1
        self.flash[write.offset : write.offset + len(write.data)] = write.data
        self.writes.append(write)

    def run(self, until: float | None = None) -> None:
        """Fire due timers and network events in time order (advancing the clock).

        Without ``until``: until nothing but the telemetry loop's periodic timers is pending.
        """
        for _ in range(MAX_STEPS):
            pending: list[tuple[float, int, Event]] = [
                (due, 0, TimerFired(name)) for name, due in self.timers.items()
            ] + self.net_events
            if not pending:
                break
            if until is None and all(isinstance(e, TimerFired) and e.name in BACKGROUND for _, _, e in pending):
                break
            due, order, event = min(pending, key=lambda item: (item[0], item[1]))
            if until is not None and due > until:
                break
            self.now = max(self.now, due)
            if isinstance(event, TimerFired):
                del self.timers[event.name]
            else:
                self.net_events.remove((due, order, event))
            self.feed(event)
        else:
            raise AssertionError(f"still pending after {MAX_STEPS} steps: {self.timers} {self.net_events}")
        if until is not None:
            self.now = max(self.now, until)

    def boot(self) -> str:
        """Power on and run to the prompt; return everything printed."""
        self.power_on()
        self.run()
        return self.take()

    def take(self) -> str:
        text = self.output.decode()
        self.output.clear()
        return text

    def type(self, data: bytes) -> str:
        self.feed(ConsoleInput(data))
        self.run()
        return self.take()

    def command(self, line: str) -> list[str]:
        """Type ``line`` + CR; return the reply lines (echo and trailing prompt stripped)."""
        text = self.type(line.encode() + b"\r")
        echo = line + "\r\n"
        assert text.startswith(echo), f"expected echo {echo!r}, got {text[:80]!r}"
        assert text.endswith(PROMPT.decode()), f"expected the prompt at the end, got {text[-80:]!r}"
        body = text[len(echo) : -len(PROMPT)]
        return body.split("\r\n")[:-1] if body else []
