"""The embedded broker delivers what a client published before its DISCONNECT (amqtt drops it).

amqtt's broker loop for a client waits on two things at once: the client's disconnect and the next
message the client published (a queue the protocol handler fills, acknowledging each QoS 1 PUBLISH as
it queues it). When the DISCONNECT is read while that queue still holds messages, the loop handles
the disconnect and drops the rest: messages the broker has already PUBACKed are never delivered. A
device that reports fast and then reboots (``verifying``, ``rebooting``, then a clean DISCONNECT)
loses exactly its last reports, and a subscriber never hears them. Mosquitto delivers them.

:class:`DeliveringBroker` runs amqtt's own loop for every client, but tells it of the disconnect
only once that queue is empty, so the loop delivers every message first, in order (nothing is read
after the DISCONNECT). The wait is bounded by :data:`DELIVER_LIMIT`.

Imported only in the broker's process (it needs amqtt).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from amqtt.broker import Broker  # type: ignore[import-untyped,unused-ignore]

_log = logging.getLogger("harness.embedded_broker")

#: Seconds a disconnect may wait for the broker loop to deliver what the client published before it.
DELIVER_LIMIT = 5.0
#: How often the wait looks at the queue (amqtt's queue has no "emptied" event to wait on).
DELIVER_POLL = 0.002


async def _delivered_then(wait_disconnect: Callable[[], Awaitable[Any]], session: Any) -> Any:
    """What ``wait_disconnect`` returns, once the session's published messages are all delivered."""
    result = await wait_disconnect()
    queue = session.delivered_message_queue
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DELIVER_LIMIT
    while not queue.empty():
        if loop.time() >= deadline:
            _log.warning("%s: %d message(s) published before the disconnect were not delivered within %gs",
                         session.client_id, queue.qsize(), DELIVER_LIMIT)  # fmt: skip
            break
        await asyncio.sleep(DELIVER_POLL)
    return result


class DeliveringBroker(Broker):  # type: ignore[misc,unused-ignore]
    """amqtt's broker, whose loop for a client hears of its disconnect only after delivering its messages."""

    async def _client_message_loop(self, client_session: Any, handler: Any) -> None:
        handler.wait_disconnect = functools.partial(_delivered_then, handler.wait_disconnect, client_session)
        await super()._client_message_loop(client_session, handler)
