"""The telemetry collector on a real broker: paho-mqtt feeding the :class:`CollectorCore`.

It subscribes to ``devices/+/telemetry`` and ``devices/+/status`` (QoS 1, persistent session) and
hands each message, stamped on arrival, to the transport-free core
(:mod:`harness.services.collector_core`), which journals it (``telemetry``, ``telemetry.status``, or
``telemetry.malformed`` with the raw payload and the reason), annotates it with what it had seen of
that boot before (``seen_max``, ``duplicate``, ``prev_boot``: any slice of the journal is accounted
from where the collector stood when the slice began, see :mod:`harness.services.seen`), and serves
the waits, views and accounting tests use. A malformed message never stops the collector. Exposed
to tests as the ``telemetry`` fixture.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable
from typing import Any

import paho.mqtt.client as mqtt

from harness.run.clock import Clock
from harness.run.journal import Journal
from harness.services.accounting import AccountingConfig
from harness.services.broker import BrokerError, BrokerLike
from harness.services.collector_core import CollectorCore, Message, TelemetryTimeout
from harness.services.endpoint import BrokerEndpoint
from harness.services.mqtt_client import make_client
from harness.services.telemetry_schema import STATUS_TOPIC, TELEMETRY_TOPIC

__all__ = ["Message", "TelemetryCollector", "TelemetryTimeout"]


class TelemetryCollector(CollectorCore):
    """Subscribes to device telemetry on a broker for one run; see the module docstring."""

    def __init__(
        self,
        broker: BrokerLike | BrokerEndpoint,
        journal: Journal | None = None,
        *,
        config: AccountingConfig | None = None,
        client_id: str | None = None,
        topics: Iterable[str] = (TELEMETRY_TOPIC, STATUS_TOPIC),
        connect_timeout: float = 15.0,
        clock: Clock | None = None,
    ) -> None:
        self.endpoint = broker if isinstance(broker, BrokerEndpoint) else broker.endpoint
        super().__init__(self.endpoint.url, journal, client_id=client_id or f"harness-collector-{uuid.uuid4().hex[:8]}",
                         config=config, clock=clock)  # fmt: skip
        self.topics = tuple(topics)
        self.connect_timeout = connect_timeout
        self._connects = 0
        self._subscribed = threading.Event()
        self._subscribed_or_refused = threading.Event()  # what start() waits for
        self._refused: str | None = None
        self._unsubscribed: set[int] = set()
        self._closed = False
        self._client = make_client(self.endpoint, self.client_id, clean_session=False)
        self._client.reconnect_delay_set(min_delay=0.1, max_delay=1.0)  # type: ignore[arg-type]
        self._client.max_inflight_messages_set(1000)
        self._client.max_queued_messages_set(0)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._client.on_unsubscribe = self._on_unsubscribe

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> TelemetryCollector:
        """Connect and subscribe; returns once the broker has acknowledged the subscriptions."""
        try:
            self._client.connect(self.endpoint.host, self.endpoint.port, keepalive=10)
        except OSError as exc:
            raise BrokerError(f"telemetry collector could not connect to {self.endpoint.url}: {exc}") from None
        self._client.loop_start()
        self._subscribed_or_refused.wait(self.connect_timeout)
        if self._refused is not None and not self._subscribed.is_set():
            self.close()
            raise BrokerError(
                f"broker at {self.endpoint.url} refused the telemetry collector: {self._refused} "
                "(check the rig's broker username, password and client certificate)"
            )
        if not self._subscribed.is_set():
            self.close()
            raise TelemetryTimeout(
                f"timed out after {self.connect_timeout:g}s waiting for the broker at {self.endpoint.url} "
                f"to acknowledge subscriptions to {', '.join(self.topics)}; last collector events: "
                f"{self.collector_events()}"
            )
        return self

    def close(self) -> None:
        """Unsubscribe, disconnect and stop the network thread. Safe to call twice.

        Unsubscribing first matters: the session is persistent, and a broker would otherwise keep
        queueing every device message for a collector that is gone.
        """
        if self._closed:
            return
        self._closed = True
        if self._subscribed.is_set():
            _, mid = self._client.unsubscribe(list(self.topics))
            with self._cond:
                self._cond.wait_for(lambda: mid in self._unsubscribed, timeout=5.0)
        self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> TelemetryCollector:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def connected(self) -> bool:
        return self._subscribed.is_set()

    def wait_connected(self, timeout: float = 15.0) -> None:
        """Wait until the collector is (re)connected and subscribed, e.g. after a broker outage."""
        if not self._subscribed.wait(timeout):
            raise TelemetryTimeout(
                f"timed out after {timeout:g}s waiting for the telemetry collector to reconnect to "
                f"{self.endpoint.url}; last collector events: {self.collector_events()}"
            )

    def statistics(self) -> dict[str, Any]:
        return {"url": self.endpoint.url, "client_id": self.client_id, "connected": self.connected,
                "connects": self._connects, **self.counts()}  # fmt: skip

    # -- paho callbacks (network thread) --------------------------------------------------------------
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any = None) -> None:
        if rc.is_failure:
            self.note("telemetry.collector", event="refused", reason=str(rc))
            self._refused = str(rc)
            self._subscribed_or_refused.set()
            return
        self._connects += 1
        self.note("telemetry.collector", event="connected", url=self.endpoint.url,
                  session_present=bool(getattr(flags, "session_present", False)))  # fmt: skip
        client.subscribe([(topic, 1) for topic in self.topics])

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, codes: Any, props: Any = None) -> None:
        if any(getattr(code, "is_failure", False) for code in codes):
            self.note("telemetry.collector", event="subscribe-refused", codes=[str(c) for c in codes])
            return
        self._subscribed.set()
        self._subscribed_or_refused.set()

    def _on_unsubscribe(self, client: mqtt.Client, userdata: Any, mid: int, codes: Any, props: Any = None) -> None:
        with self._cond:
            self._unsubscribed.add(mid)
            self._cond.notify_all()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any = None) -> None:
        self._subscribed.clear()
        if not self._closed:
            self.note("telemetry.collector", event="disconnected", reason=str(rc))

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self.receive(msg.topic, bytes(msg.payload), retained=bool(msg.retain), redelivered=bool(msg.dup))
