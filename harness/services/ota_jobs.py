"""The deployer's side of OTA over MQTT: publish jobs, hear every status report, wait for outcomes.

One :class:`OtaJobChannel` per run, connected to the broker directly (the *device* goes through the
impairment point; the deployer is the cloud side). A job is published retained with QoS 1 on the
device's job topic, so a device that is offline, partitioned or rebooting picks it up when it next
connects; the device acts on each ``job_id`` once. Every report on ``devices/+/ota/status`` becomes an
``ota.status`` journal record (malformed ones an ``ota.status.malformed`` record with the raw payload)
and wakes the waits. When a job is over the channel clears its retained copy.

What the deployer knows and decides is the transport-free :class:`~harness.services.ota_jobs_core.OtaJobsCore`;
this module is its paho transport. The job document and status payloads are the contract in
``docs/ota.md``, encoded and parsed by :mod:`harness.twin.ota_jobs` at both ends.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import paho.mqtt.client as mqtt

from harness.run.clock import Clock
from harness.services.broker import BrokerError
from harness.services.endpoint import BrokerEndpoint
from harness.services.mqtt_client import make_client
from harness.services.ota_jobs_core import (
    OUTCOMES,
    PHASES,
    MalformedStatus,
    OtaChannelError,
    OtaJobsCore,
    StatusReport,
    new_job_id,
    parse_status_report,
)

__all__ = ["OUTCOMES", "PHASES", "MalformedStatus", "OtaChannelError", "OtaJobChannel", "StatusReport",
           "new_job_id", "parse_status_report"]  # fmt: skip

PUBLISH_TIMEOUT = 10.0


class OtaJobChannel(OtaJobsCore):
    """Jobs out, status reports in, for every device of a run (see the module docstring)."""

    def __init__(self, endpoint: BrokerEndpoint, journal: Any = None, *,
                 job_topic: str = "devices/{device_id}/ota/job",
                 status_topic: str = "devices/{device_id}/ota/status",
                 connect_timeout: float = 15.0, clock: Clock | None = None) -> None:  # fmt: skip
        super().__init__(journal, job_topic=job_topic, status_topic=status_topic, clock=clock)
        self.endpoint = endpoint
        self.connect_timeout = connect_timeout
        self.client_id = f"harness-ota-{uuid.uuid4().hex[:8]}"
        self._acked: set[int] = set()
        self._subscribed = threading.Event()
        self._refused: str | None = None
        self._closed = False
        self._connects = 0
        self._client = make_client(endpoint, self.client_id, clean_session=True)
        # An exception in a callback would end paho's network thread, and with it every later report.
        self._client.suppress_exceptions = True
        self._client.reconnect_delay_set(min_delay=0.1, max_delay=1.0)  # type: ignore[arg-type]
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_publish = self._on_publish

    # -- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> OtaJobChannel:
        try:
            self._client.connect(self.endpoint.host, self.endpoint.port, keepalive=10)
        except OSError as exc:
            raise BrokerError(f"OTA job channel could not connect to {self.endpoint.url}: {exc}") from None
        self._client.loop_start()
        if not self._subscribed.wait(self.connect_timeout):
            self.close()
            why = f"refused: {self._refused}" if self._refused else "no SUBACK"
            raise OtaChannelError(f"OTA job channel: timed out after {self.connect_timeout:g}s subscribing to "
                                  f"{self.status_filter} on {self.endpoint.url} ({why})")  # fmt: skip
        return self

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._client.disconnect()
        self._client.loop_stop()

    def send(self, topic: str, payload: bytes) -> None:
        info = self._client.publish(topic, payload, qos=1, retain=True)
        with self._cond:
            acked = self._cond.wait_for(lambda: info.mid in self._acked, timeout=PUBLISH_TIMEOUT)
            self._acked.discard(info.mid)
        if not acked:
            raise OtaChannelError(f"OTA job channel: the broker at {self.endpoint.url} did not acknowledge the "
                                  f"publish on {topic} within {PUBLISH_TIMEOUT:g}s (rc {info.rc})")  # fmt: skip

    def statistics(self) -> dict[str, Any]:
        return {"url": self.endpoint.url, "client_id": self.client_id, "subscribed": self._subscribed.is_set(),
                **self.counts(), "connects": self._connects}  # fmt: skip

    # -- paho callbacks (network thread) ------------------------------------------------------------
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any = None) -> None:
        if rc.is_failure:
            self._refused = str(rc)
            return
        client.subscribe(self.status_filter, qos=1)
        self._connects += 1
        if self._connects > 1:  # back after a broker restart: the retained jobs may be gone with it
            for device, job_id, payload in self.open_payloads():
                client.publish(self.job_topic.format(device_id=device), payload, qos=1, retain=True)
                self.record("ota.job.republished", device=device, job_id=job_id)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, codes: Any, props: Any = None) -> None:
        if not any(getattr(code, "is_failure", False) for code in codes):
            self._subscribed.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any = None) -> None:
        self._subscribed.clear()

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, rc: Any, props: Any = None) -> None:
        with self._cond:
            self._acked.add(mid)
            self._cond.notify_all()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self.take(msg.topic, bytes(msg.payload), retained=bool(msg.retain))
