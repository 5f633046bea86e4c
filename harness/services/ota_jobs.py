"""The deployer's side of OTA over MQTT: publish jobs, hear every status report, wait for outcomes.

One :class:`OtaJobChannel` per run, connected to the broker directly (the *device* goes through the
impairment point; the deployer is the cloud side). A job is published retained with QoS 1 on the
device's job topic, so a device that is offline, partitioned or rebooting picks it up when it next
connects; the device acts on each ``job_id`` once. Every report on ``devices/+/ota/status`` becomes an
``ota.status`` journal record (malformed ones an ``ota.status.malformed`` record with the raw payload)
and wakes the waits. When a job is over the channel clears its retained copy.

The job document and status payloads are the contract in ``docs/ota.md`` (the twin's side is
``harness.twin.ota_jobs``).
"""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt

from harness.errors import HarnessError
from harness.services.broker import BrokerError
from harness.services.endpoint import BrokerEndpoint
from harness.services.mqtt_client import make_client

OUTCOMES = frozenset({"committed", "rolled_back", "rejected", "failed"})
PHASES = frozenset({"downloading", "verifying", "rebooting", "trial"}) | OUTCOMES
PUBLISH_TIMEOUT = 10.0


class OtaChannelError(HarnessError):
    """The job channel could not reach the broker, or a job could not be published."""


@dataclass(frozen=True)
class StatusReport:
    """One report on a device's status topic, as it arrived."""

    device: str
    job_id: str
    phase: str
    version: str
    percent: int
    reason: str
    arrival: float
    ts: float | None = None  # the device's own clock, when it sent one
    fw: str = ""
    payload: dict[str, Any] = field(default_factory=dict)

    @property
    def when(self) -> float:
        """The device's timestamp when it gave a plausible one (a report queued while offline arrives
        late), else the arrival time."""
        if self.ts is not None and abs(self.ts - self.arrival) < 86_400:
            return min(self.ts, self.arrival)
        return self.arrival

    def __str__(self) -> str:
        pct = f" {self.percent}%" if self.phase == "downloading" else ""
        why = f" reason={self.reason}" if self.reason else ""
        return f"{self.phase}{pct} {self.version}{why} (job {self.job_id or '?'}, fw {self.fw or '?'})"


class MalformedStatus(ValueError):
    """A status payload that breaks the contract; ``str()`` is one line naming the field."""


def parse_status_report(device: str, raw: bytes, arrival: float) -> StatusReport:
    """The report in ``raw``; any payload that breaks the contract raises MalformedStatus, nothing else."""
    try:
        return _parse_status(device, raw, arrival)
    except MalformedStatus:
        raise
    except Exception as exc:  # RecursionError from deep nesting, OverflowError from a huge ts, ...
        reason = (str(exc).splitlines() or [type(exc).__name__])[0][:80]
        raise MalformedStatus(f"ota status: unreadable payload ({type(exc).__name__}: {reason})") from None


def _parse_status(device: str, raw: bytes, arrival: float) -> StatusReport:
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedStatus(f"ota status: expected a JSON object ({str(exc).splitlines()[0][:80]})") from None
    if not isinstance(body, dict):
        raise MalformedStatus(f"ota status: expected a JSON object, got {type(body).__name__}")
    phase = body.get("phase")
    if phase not in PHASES:
        raise MalformedStatus(f"ota status: phase expected one of {', '.join(sorted(PHASES))} (got {phase!r})")
    percent = body.get("percent", 0)
    if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
        raise MalformedStatus(f"ota status: percent expected a whole number 0-100 (got {percent!r})")
    ts = body.get("ts")
    if ts is not None and (isinstance(ts, bool) or not isinstance(ts, int | float) or not _finite(ts)):
        raise MalformedStatus(f"ota status: ts expected Unix seconds (got {str(ts)[:40]!r})")
    return StatusReport(device, str(body.get("job_id") or ""), phase, str(body.get("version") or ""), percent,
                        str(body.get("reason") or ""), arrival, None if ts is None else float(ts),
                        str(body.get("fw") or ""), body)  # fmt: skip


def _finite(value: float) -> bool:
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def new_job_id(device: str) -> str:
    """Unique across runs sharing a broker: a device that keeps its job record never mistakes a new job."""
    return f"{device}-{uuid.uuid4().hex[:12]}"[-64:]


class OtaJobChannel:
    """Jobs out, status reports in, for every device of a run (see the module docstring)."""

    def __init__(self, endpoint: BrokerEndpoint, journal: Any = None, *,
                 job_topic: str = "devices/{device_id}/ota/job",
                 status_topic: str = "devices/{device_id}/ota/status",
                 connect_timeout: float = 15.0) -> None:  # fmt: skip
        self.endpoint = endpoint
        self.journal = journal
        self.job_topic = job_topic
        self.status_filter = status_topic.format(device_id="+")
        self._status_template = status_topic
        self.connect_timeout = connect_timeout
        self.client_id = f"harness-ota-{uuid.uuid4().hex[:8]}"
        self._cond = threading.Condition()
        self._reports: list[StatusReport] = []
        self._acked: set[int] = set()
        self._subscribed = threading.Event()
        self._refused: str | None = None
        self._malformed = 0
        self._closed = False
        self._connects = 0
        self._open: dict[str, tuple[str, bytes]] = {}  # device -> (job_id, payload) published, not cleared
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

    # -- jobs ---------------------------------------------------------------------------------------
    def publish_job(self, device: str, job: dict[str, Any]) -> None:
        """Publish ``job`` retained (QoS 1) on ``device``'s job topic; returns once the broker has it.

        It stays open until :meth:`clear_job`: published again after the channel reconnects (a broker
        restart may lose retained messages; the device acts on each ``job_id`` once, so a repeat is
        harmless)."""
        payload = json.dumps(job, separators=(",", ":")).encode()
        with self._cond:
            self._open[device] = (str(job.get("job_id", "")), payload)
        self._publish(self.job_topic.format(device_id=device), payload)
        self._record("ota.job", device=device, job=job)

    def clear_job(self, device: str, job_id: str | None = None) -> bool:
        """Remove the retained job (the job is over): a device that connects later finds nothing to do.

        With ``job_id``, only if that is still the device's latest job (a newer one is left alone);
        returns whether a job was cleared."""
        with self._cond:
            current = self._open.get(device)
            if job_id is not None and current is not None and current[0] != job_id:
                return False
        self._publish(self.job_topic.format(device_id=device), b"")  # raises: the job stays open
        with self._cond:
            if self._open.get(device) == current:
                self._open.pop(device, None)
        self._record("ota.job.cleared", device=device, job_id=job_id or (current[0] if current else None))
        return True

    def open_jobs(self) -> dict[str, str]:
        """Device -> job id of every job published and not cleared."""
        with self._cond:
            return {device: job_id for device, (job_id, _) in self._open.items()}

    def clear_open_jobs(self) -> list[str]:
        """Clear every open job (a test ended, however it ended); the devices whose job was cleared."""
        cleared = []
        for device, job_id in self.open_jobs().items():
            try:
                if self.clear_job(device, job_id):
                    cleared.append(device)
            except OtaChannelError as exc:  # the broker is down: journaled, tried again at the next clear
                self._record("ota.job.clear_failed", device=device, job_id=job_id, error=str(exc))
        return cleared

    def _publish(self, topic: str, payload: bytes) -> None:
        info = self._client.publish(topic, payload, qos=1, retain=True)
        with self._cond:
            acked = self._cond.wait_for(lambda: info.mid in self._acked, timeout=PUBLISH_TIMEOUT)
            self._acked.discard(info.mid)
        if not acked:
            raise OtaChannelError(f"OTA job channel: the broker at {self.endpoint.url} did not acknowledge the "
                                  f"publish on {topic} within {PUBLISH_TIMEOUT:g}s (rc {info.rc})")  # fmt: skip

    # -- reports ------------------------------------------------------------------------------------
    def reports(self, device: str, job_id: str | None = None) -> list[StatusReport]:
        with self._cond:
            return [r for r in self._reports if r.device == device and (job_id is None or r.job_id == job_id)]

    def wait_for(self, device: str, job_id: str, until: Callable[[StatusReport], bool], timeout: float
                 ) -> StatusReport | None:  # fmt: skip
        """The first report of ``job_id`` (received before or during the wait) that satisfies ``until``;
        None when none came within ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            checked = 0
            while True:
                mine = [r for r in self._reports if r.device == device and r.job_id == job_id]
                for report in mine[checked:]:
                    if until(report):
                        return report
                checked = len(mine)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)

    def wait_outcome(self, device: str, job_id: str, timeout: float) -> StatusReport | None:
        return self.wait_for(device, job_id, lambda r: r.phase in OUTCOMES, timeout)

    def statistics(self) -> dict[str, Any]:
        with self._cond:
            return {"url": self.endpoint.url, "client_id": self.client_id, "subscribed": self._subscribed.is_set(),
                    "reports": len(self._reports), "malformed": self._malformed, "open_jobs": {
                        device: job_id for device, (job_id, _) in self._open.items()},
                    "connects": self._connects}  # fmt: skip

    # -- paho callbacks (network thread) ------------------------------------------------------------
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any = None) -> None:
        if rc.is_failure:
            self._refused = str(rc)
            return
        client.subscribe(self.status_filter, qos=1)
        self._connects += 1
        if self._connects > 1:  # back after a broker restart: the retained jobs may be gone with it
            with self._cond:
                pending = list(self._open.items())
            for device, (job_id, payload) in pending:
                client.publish(self.job_topic.format(device_id=device), payload, qos=1, retain=True)
                self._record("ota.job.republished", device=device, job_id=job_id)

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
        try:
            self._take(msg)
        except Exception as exc:  # never let one message end the network thread: journal it instead
            self._record("ota.status.malformed", topic=msg.topic, error=f"{type(exc).__name__}: {exc}"[:200])

    def _take(self, msg: mqtt.MQTTMessage) -> None:
        arrival = time.time()
        raw = bytes(msg.payload)
        if not raw:
            return  # a retained status being cleared
        device = self._device_of(msg.topic)
        try:
            report = parse_status_report(device, raw, arrival)
        except MalformedStatus as exc:
            with self._cond:
                self._malformed += 1
            self._record("ota.status.malformed", device=device, topic=msg.topic,
                         raw=raw.decode("utf-8", "backslashreplace"), error=str(exc))  # fmt: skip
            return
        self._record("ota.status", device=device, job_id=report.job_id, phase=report.phase, version=report.version,
                     percent=report.percent, reason=report.reason, fw=report.fw, device_ts=report.ts,
                     boot_id=report.payload.get("boot_id"), arrival=arrival, retained=bool(msg.retain))  # fmt: skip
        with self._cond:
            self._reports.append(report)
            self._cond.notify_all()

    def _device_of(self, topic: str) -> str:
        head, _, tail = self._status_template.partition("{device_id}")
        if topic.startswith(head) and topic.endswith(tail):
            return topic[len(head) : len(topic) - len(tail)]
        return ""

    def _record(self, kind: str, **fields: Any) -> None:
        if self.journal is not None:
            self.journal.record(kind, **fields)
