"""Events into the firmware core and actions out of it — the whole vocabulary in one module.

The core (:class:`harness.twin.device.Device`) is sans-IO: a runtime feeds it :data:`Event`
objects together with the time on the runtime's clock and executes the :data:`Action` objects
it returns, in order. New capabilities (network, MQTT, HTTP) add new dataclasses here and new
members to the two unions; runtimes ignore actions they do not know only by explicit choice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.twin.http_events import HttpCancel, HttpChunk, HttpDone, HttpFailed, HttpGet, HttpResponse, OtaStatus

# --------------------------------------------------------------------------- events (into the core)


@dataclass(frozen=True)
class PowerOn:
    """Supply came up (or the core was reset). ``entropy`` seeds every random choice of this boot.

    ``wall_offset`` is what to add to the runtime's clock (the ``now`` of every ``handle`` call) to
    get Unix time: the device's real-time clock, set by the runtime because the core reads no clock.
    ``noinit`` is the RAM a software reset keeps: the ``noinit`` of the :class:`Reboot` that led here,
    ``b""`` after a power cut (:mod:`harness.twin.noinit`).
    """

    reset_cause: str
    entropy: int
    wall_offset: float = 0.0
    noinit: bytes = field(default=b"", repr=False)


@dataclass(frozen=True)
class ConsoleInput:
    """Bytes received on the console UART."""

    data: bytes


@dataclass(frozen=True)
class TimerFired:
    """A timer started with :class:`StartTimer` expired (and was not cancelled)."""

    name: str


@dataclass(frozen=True)
class NetConnected:
    """The connection started by :class:`NetConnect` number ``conn`` is up (MQTT CONNACK accepted)."""

    conn: int


@dataclass(frozen=True)
class NetDisconnected:
    """Connection ``conn`` failed or was lost; ``reason`` is one line (refused, reset, keepalive...)."""

    conn: int
    reason: str


@dataclass(frozen=True)
class NetPublished:
    """The broker acknowledged (QoS 1 PUBACK) the publish ``ref`` sent on connection ``conn``."""

    conn: int
    ref: int


@dataclass(frozen=True)
class NetMessage:
    """A PUBLISH the broker delivered on connection ``conn`` to a topic the core subscribed to
    (:class:`NetSubscribe`); ``retained`` when it is the broker's retained copy."""

    conn: int
    topic: str
    payload: bytes
    retained: bool = False


NetEvent = NetConnected | NetDisconnected | NetPublished | NetMessage
Event = (
    PowerOn | ConsoleInput | TimerFired | NetConnected | NetDisconnected | NetPublished | NetMessage
    | HttpResponse | HttpChunk | HttpDone | HttpFailed  # OTA downloads (harness.twin.http_events)
)

# --------------------------------------------------------------------------- actions (out of the core)


@dataclass(frozen=True)
class ConsoleOutput:
    """Bytes to transmit on the console UART."""

    data: bytes


@dataclass(frozen=True)
class FlashWrite:
    """Program ``data`` at ``offset``: exactly one page-program unit (aligned, at most one unit long)."""

    offset: int
    data: bytes


@dataclass(frozen=True)
class StartTimer:
    """(Re)start the timer ``name``; deliver :class:`TimerFired` after ``delay`` seconds."""

    name: str
    delay: float


@dataclass(frozen=True)
class CancelTimer:
    """Cancel the timer ``name`` if it is pending."""

    name: str


@dataclass(frozen=True)
class Reboot:
    """Restart the core from what flash holds, with ``reset_cause=reason``; hand ``noinit`` (RAM a
    software reset keeps) to the next core in its :class:`PowerOn`."""

    reason: str
    noinit: bytes = field(default=b"", repr=False)


@dataclass(frozen=True)
class StateChange:
    """Power-relevant activity changed: ``"boot"``, ``"idle"`` or ``"busy"`` (drives the current model)."""

    state: str


@dataclass(frozen=True)
class Halt:
    """The firmware stopped for good (until the next power-on); ``reason`` says why.

    Later actions in the same list (the console lines explaining the halt) are still executed.
    Like :class:`StateChange`, it precedes the console output it explains.
    """

    reason: str


@dataclass(frozen=True)
class Will:
    """The last will the broker publishes when the connection dies without a clean disconnect."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


@dataclass(frozen=True)
class NetConnect:
    """Open MQTT connection number ``conn`` (clean session) to ``host:port`` with this will.

    The runtime answers with :class:`NetConnected` or :class:`NetDisconnected` carrying ``conn``;
    it never reconnects by itself (the core owns the back-off).
    """

    conn: int
    host: str
    port: int
    client_id: str
    keepalive: int
    will: Will


@dataclass(frozen=True)
class NetPublish:
    """Publish on connection ``conn``; for QoS 1 the runtime reports the PUBACK as ``NetPublished(conn, ref)``."""

    conn: int
    topic: str
    payload: bytes
    qos: int
    retain: bool
    ref: int


@dataclass(frozen=True)
class NetSubscribe:
    """Subscribe on connection ``conn`` (clean session: again after every connect); messages come back
    as :class:`NetMessage`. No event reports the SUBACK."""

    conn: int
    topic: str
    qos: int = 1


@dataclass(frozen=True)
class NetDisconnect:
    """Close connection ``conn``: ``clean`` sends an MQTT DISCONNECT (no will) after what was already
    published; otherwise the socket is dropped (the broker publishes the will). No event follows."""

    conn: int
    clean: bool


Action = (
    ConsoleOutput
    | FlashWrite
    | StartTimer
    | CancelTimer
    | Reboot
    | StateChange
    | Halt
    | NetConnect
    | NetPublish
    | NetSubscribe
    | NetDisconnect
    | HttpGet
    | HttpCancel
    | OtaStatus
)

#: The values :class:`StateChange` may carry.
ACTIVITY_STATES = ("boot", "idle", "busy")
