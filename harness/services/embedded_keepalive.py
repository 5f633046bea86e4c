"""The embedded broker's keep alive enforcement, as an amqtt plugin (loaded by its dotted path).

amqtt reads a client's keep alive but never acts on it. :class:`KeepaliveEnforcer` watches every
connection through amqtt's plugin events and, when a client sent no control packet within 1.5 times
its keep alive (MQTT 3.1.1 §3.1.2.10; the bookkeeping is :class:`~harness.services.keepalive.KeepaliveTracker`),
fails the connection through amqtt's own path for a lost network connection, so the will is published.

Imported only in the broker's process (it needs amqtt).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from amqtt.plugins.base import BasePlugin  # type: ignore[import-untyped,unused-ignore]

from harness.services.keepalive import KeepaliveTracker

_log = logging.getLogger("harness.embedded_broker")


class KeepaliveEnforcer(BasePlugin):  # type: ignore[misc,type-arg,unused-ignore]
    """amqtt plugin: disconnect a client silent for 1.5 times its keep alive, so its will is published.

    Connections and packets arrive as amqtt plugin events; one loop timer sleeps until the earliest
    deadline. Failing the connection goes through amqtt's own path for a lost network connection
    (``handle_connection_closed``): the will is published, the session ends, the socket is closed.
    """

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self._tracker = KeepaliveTracker()
        self._broker: Any = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._closing: set[asyncio.Future[Any]] = set()

    def bind(self, broker: Any) -> None:
        """The broker whose sessions this plugin may disconnect (amqtt hands plugins no handlers)."""
        self._broker = broker

    async def on_broker_client_connected(self, *, client_id: str, client_session: Any) -> None:
        now = asyncio.get_running_loop().time()
        self._tracker.connected(client_id, float(client_session.keep_alive or 0), now)
        self._arm()

    async def on_mqtt_packet_received(self, *, packet: Any, session: Any = None) -> None:
        if session is not None and session.client_id:
            self._tracker.received(session.client_id, asyncio.get_running_loop().time())

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self) -> None:
        deadline = self._tracker.next_deadline()
        if deadline is None or (self._timer_at is not None and self._timer_at <= deadline):
            return
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        self._timer_at = deadline
        self._timer = loop.call_at(deadline, self._expire)

    def _expire(self) -> None:
        self._timer = self._timer_at = None
        now = asyncio.get_running_loop().time()
        for client_id, silent in self._tracker.expired(now):
            entry = self._broker.sessions.get(client_id) if self._broker is not None else None
            if entry is None or entry[0].transitions.state != "connected":
                continue  # disconnected meanwhile: nothing to fail
            session, handler = entry
            _log.info(
                "client %s sent no control packet for %.1fs (1.5 x keep alive %ss): closing its connection "
                "as failed, publishing its will (MQTT 3.1.1 3.1.2.10)",
                client_id, silent, session.keep_alive,
            )  # fmt: skip
            task = asyncio.ensure_future(handler.handle_connection_closed())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        self._arm()
