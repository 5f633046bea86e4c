"""The board's MQTT stack: paho-mqtt driven from the board process's asyncio loop.

Executes the core's network actions (:class:`~harness.twin.events.NetConnect`, ``NetPublish``,
``NetSubscribe``, ``NetDisconnect``) and turns what paho reports into events (``NetConnected``,
``NetDisconnected``, ``NetPublished``, ``NetMessage``). No thread: paho's socket is watched with
``add_reader``/``add_writer`` and its keepalive bookkeeping (PINGREQ, the missing-PINGRESP timeout) runs
every :data:`MISC_PERIOD`. paho never reconnects by itself here; the core decides when to try again.

One paho client per connection, created in the board process (after the fork). Callbacks of a
client that is no longer the current one are ignored, so nothing from an old connection (or an
old boot's) reaches the core.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from harness.twin.events import (
    Event,
    NetConnect,
    NetConnected,
    NetDisconnect,
    NetDisconnected,
    NetMessage,
    NetPublish,
    NetPublished,
    NetSubscribe,
)

MISC_PERIOD = 0.5  # seconds between paho keepalive checks (well under any keepalive)
CONNECT_TIMEOUT = 2.0  # TCP connect; the broker is on loopback or the local network
FLUSH_ATTEMPTS = 8  # non-blocking writes tried to push out a clean DISCONNECT
MAX_INFLIGHT = 64  # paho's own cap; the core keeps its window well below it
LINGER = 2.0  # seconds a cleanly closed connection waits for the broker to close its side
DISCONNECT_PACKET = b"\xe0\x00"  # MQTT 3.1.1 DISCONNECT


class MqttLink:
    """The current MQTT connection of one board process (at most one at a time)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, feed: Callable[[Event], None]) -> None:
        self.loop = loop
        self.feed = feed
        self.client: mqtt.Client | None = None
        self.conn = 0
        self._refs: dict[int, int] = {}  # paho mid -> the core's publish ref
        self._misc: asyncio.TimerHandle | None = None
        self.epoch = 0  # bumped by reset(): reports scheduled before it are thrown away
        self.counts = dict.fromkeys(("connects", "publishes", "acks", "lost", "subscribes", "messages"), 0)

    def execute(self, action: NetConnect | NetPublish | NetSubscribe | NetDisconnect) -> None:
        if isinstance(action, NetConnect):
            self._connect(action)
        elif isinstance(action, NetPublish):
            self._publish(action)
        elif isinstance(action, NetSubscribe):
            self._subscribe(action)
        else:
            self._disconnect(action)

    def reset(self) -> None:
        """A new core takes over (software reset): drop the connection and anything still to report."""
        self.close()
        self.epoch += 1

    def close(self) -> None:
        """Drop the current connection without a DISCONNECT (the broker will publish the will)."""
        client, self.client = self.client, None
        self._refs.clear()
        if self._misc is not None:
            self._misc.cancel()
            self._misc = None
        if client is not None:
            sock = client.socket()
            if isinstance(sock, socket.socket):
                self._forget(sock)
                with contextlib.suppress(OSError):
                    sock.close()

    # ------------------------------------------------------------------ actions

    def _connect(self, action: NetConnect) -> None:
        self.close()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=action.client_id,
            clean_session=True,
            protocol=MQTTProtocolVersion.MQTTv311,
        )
        client.connect_timeout = CONNECT_TIMEOUT
        client.max_inflight_messages_set(MAX_INFLIGHT)
        will = action.will
        client.will_set(will.topic, will.payload, will.qos, will.retain)
        self._wire(client, action.conn)
        self.client, self.conn = client, action.conn
        self.counts["connects"] += 1
        try:
            client.connect(action.host, action.port, action.keepalive)
        except (OSError, ValueError) as exc:
            self.close()
            self._lost_soon(action.conn, f"connect to {action.host}:{action.port} failed: {exc}")
            return
        self._misc = self.loop.call_later(MISC_PERIOD, self._tick, client)

    def _publish(self, action: NetPublish) -> None:
        client = self.client
        if client is None or action.conn != self.conn:
            return  # the connection is gone; the core hears (or heard) NetDisconnected
        info = client.publish(action.topic, action.payload, qos=action.qos, retain=action.retain)
        self.counts["publishes"] += 1
        if info.rc == mqtt.MQTT_ERR_SUCCESS or info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
            self._refs[info.mid] = action.ref

    def _subscribe(self, action: NetSubscribe) -> None:
        client = self.client
        if client is None or action.conn != self.conn:
            return
        client.subscribe(action.topic, qos=action.qos)
        self.counts["subscribes"] += 1

    def _disconnect(self, action: NetDisconnect) -> None:
        client = self.client
        if client is None or action.conn != self.conn:
            return
        if not action.clean:
            self.close()
            return
        # A clean end: everything queued, then DISCONNECT, then a half-close, and the socket is kept
        # reading until the broker closes its side. Closing at once (what paho does after DISCONNECT)
        # with PUBACKs still unread makes the kernel send an RST, and the broker then throws away what
        # it had not read yet: the last reports, the DISCONNECT itself (so it publishes the will).
        self.client = None  # no event follows a NetDisconnect
        for _ in range(FLUSH_ATTEMPTS):
            if client.socket() is None or not client.want_write():
                break
            client.loop_write()
        sock = client.socket()
        self._refs.clear()
        if self._misc is not None:
            self._misc.cancel()
            self._misc = None
        if not isinstance(sock, socket.socket):
            return
        self._forget(sock)
        # When paho still holds a packet it may have written in part, a DISCONNECT now would be read as
        # the rest of that packet: end uncleanly instead, without one (the broker sees the stream end
        # mid-packet and publishes the will), but still half-closed and drained, so that the packets
        # already written are not lost to an RST.
        unfinished = client.want_write()
        try:
            if not unfinished:
                sock.send(DISCONNECT_PACKET)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            with contextlib.suppress(OSError):
                sock.close()
            return
        self._linger(sock)

    def _linger(self, sock: socket.socket) -> None:
        """Read and drop what the broker still sends until it closes (or :data:`LINGER` passes), then close."""
        done = False

        def finish() -> None:
            nonlocal done
            if done:
                return
            done = True
            timer.cancel()
            with contextlib.suppress(ValueError, OSError):
                self.loop.remove_reader(sock)
            with contextlib.suppress(OSError):
                sock.close()

        def drain() -> None:
            try:
                if sock.recv(4096):
                    return
            except BlockingIOError:
                return
            except OSError:
                pass
            finish()

        timer = self.loop.call_later(LINGER, finish)
        self.loop.add_reader(sock, drain)

    # ------------------------------------------------------------------ paho plumbing

    def _wire(self, client: mqtt.Client, conn: int) -> None:
        def current() -> bool:
            return client is self.client

        def on_connect(c: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
            if not current():
                return
            if getattr(reason, "is_failure", False):
                self.close()
                self._lost_soon(conn, f"CONNACK refused: {reason}")
            else:
                self.feed(NetConnected(conn))

        def on_disconnect(c: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
            if current():
                self.close()
                self._lost_soon(conn, f"connection lost: {reason}")

        def on_publish(c: Any, userdata: Any, mid: int, reason: Any, props: Any) -> None:
            ref = self._refs.pop(mid, None) if current() else None
            if ref is not None:
                self.counts["acks"] += 1
                self.feed(NetPublished(conn, ref))

        def on_message(c: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
            if current():  # paho sends the PUBACK once this returns
                self.counts["messages"] += 1
                self.feed(NetMessage(conn, msg.topic, bytes(msg.payload), bool(msg.retain)))

        def on_socket_open(c: Any, userdata: Any, sock: Any) -> None:
            self.loop.add_reader(sock, self._io, client, "read")

        def on_socket_close(c: Any, userdata: Any, sock: Any) -> None:
            self._forget(sock)

        def on_register_write(c: Any, userdata: Any, sock: Any) -> None:
            self.loop.add_writer(sock, self._io, client, "write")

        def on_unregister_write(c: Any, userdata: Any, sock: Any) -> None:
            with contextlib.suppress(ValueError, OSError):
                self.loop.remove_writer(sock)

        client.on_connect = on_connect
        client.on_disconnect = on_disconnect
        client.on_publish = on_publish
        client.on_message = on_message
        client.on_socket_open = on_socket_open
        client.on_socket_close = on_socket_close
        client.on_socket_register_write = on_register_write
        client.on_socket_unregister_write = on_unregister_write

    def _forget(self, sock: Any) -> None:
        with contextlib.suppress(ValueError, OSError):
            self.loop.remove_reader(sock)
        with contextlib.suppress(ValueError, OSError):
            self.loop.remove_writer(sock)

    def _io(self, client: mqtt.Client, what: str) -> None:
        if client is not self.client:
            sock = client.socket()
            if sock is not None:
                self._forget(sock)
            return
        if what == "read":
            client.loop_read()
        else:
            client.loop_write()

    def _tick(self, client: mqtt.Client) -> None:
        if client is not self.client:
            return
        client.loop_misc()
        if client is self.client:
            self._misc = self.loop.call_later(MISC_PERIOD, self._tick, client)

    def _lost_soon(self, conn: int, reason: str) -> None:
        """Report a lost connection from the loop, never from inside the action that caused it."""
        self.counts["lost"] += 1
        self.loop.call_soon(self._deliver_lost, self.epoch, conn, reason)

    def _deliver_lost(self, epoch: int, conn: int, reason: str) -> None:
        if epoch == self.epoch:
            self.feed(NetDisconnected(conn, reason))
