"""The telemetry collector: subscribes for the run and accounts for every device message.

It subscribes to ``devices/+/telemetry`` and ``devices/+/status`` (QoS 1, persistent session),
timestamps each message on arrival, appends it to the run journal (``telemetry``,
``telemetry.status``, or ``telemetry.malformed`` with the raw payload and the reason) and keeps it
in memory for waits. Each telemetry record also carries what the collector had seen of that boot
before it (``seen_max``, ``duplicate``, ``prev_boot``), so any slice of the journal — one test, one
scenario — is accounted from where the collector stood when the slice began, not from seq 1
(see :mod:`harness.services.seen`). A malformed message never stops the collector. Accounting is the pure
:func:`~harness.services.accounting.account` over the journal, so the live view and a report
rebuilt later from the journal agree. Exposed to tests as the ``telemetry`` fixture.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, overload

import paho.mqtt.client as mqtt
import pandas as pd  # type: ignore[import-untyped,unused-ignore]

from harness.errors import HarnessError
from harness.run.journal import Journal, read_journal
from harness.services.accounting import Accounting, AccountingConfig, account
from harness.services.broker import BrokerError, BrokerLike
from harness.services.endpoint import BrokerEndpoint
from harness.services.frame import telemetry_frame
from harness.services.mqtt_client import make_client
from harness.services.seen import SeenBoots
from harness.services.telemetry_schema import (
    STATUS_TOPIC,
    TELEMETRY_TOPIC,
    MalformedMessage,
    device_of,
    parse_status,
    parse_telemetry,
)

_NEVER = float("inf")


class TelemetryTimeout(HarnessError, TimeoutError):
    """Telemetry the test waited for did not arrive in time."""


@dataclass(frozen=True)
class Message:
    """One valid telemetry message as the collector received it.

    ``duplicate``: the collector had already received this device's boot and seq (a QoS 1
    redelivery or a device resend); a wait for N messages counts only the others, the new ones.
    """

    device: str
    topic: str
    arrival: float
    payload: dict[str, Any]
    duplicate: bool = False

    @property
    def seq(self) -> int:
        return int(self.payload["seq"])

    @property
    def boot_id(self) -> str:
        return str(self.payload["boot_id"])

    @property
    def ts(self) -> float:
        return float(self.payload["ts"])

    def __str__(self) -> str:
        return f"{self.topic} boot {self.boot_id} seq {self.seq} (arrived {self.arrival - self.ts:+.3f}s after ts)"


class TelemetryCollector:
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
    ) -> None:
        self.endpoint = broker if isinstance(broker, BrokerEndpoint) else broker.endpoint
        self.journal = journal
        self.config = config or AccountingConfig()
        self.topics = tuple(topics)
        self.connect_timeout = connect_timeout
        self.client_id = client_id or f"harness-collector-{uuid.uuid4().hex[:8]}"
        self._cond = threading.Condition()
        self._records: list[dict[str, Any]] = []  # everything this collector wrote
        self._messages: list[Message] = []
        self._by_device: dict[str, list[Message]] = {}
        self._new: list[Message] = []  # first arrivals only: what count waits count
        self._new_by_device: dict[str, list[Message]] = {}
        self._seen = SeenBoots()  # what arrived of each boot: annotates each telemetry record
        self._count_targets: dict[object, int] = {}  # count waits: total message count that wakes them
        self._eager_waiters = 0  # predicate waits: woken by every message
        self._status: dict[str, dict[str, Any]] = {}
        self._malformed = 0
        self._errors = 0
        self._connects = 0
        self._last_arrival = 0.0
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
                f"{self._last_event()}"
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
                f"{self.endpoint.url}; last collector events: {self._last_event()}"
            )

    def _last_event(self) -> str:
        """The collector's last few link events, e.g. ``refused (Not authorized), disconnected``."""
        with self._cond:
            events = [r for r in self._records if r.get("kind") == "telemetry.collector"][-3:]
        return ", ".join(f"{e['event']} ({e['reason']})" if e.get("reason") else str(e["event"]) for e in events) or (
            "<none>"
        )

    # -- paho callbacks (network thread) --------------------------------------------------------------
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any = None) -> None:
        if rc.is_failure:
            self._write("telemetry.collector", event="refused", reason=str(rc))
            self._refused = str(rc)
            self._subscribed_or_refused.set()
            return
        self._connects += 1
        self._write(
            "telemetry.collector",
            event="connected",
            url=self.endpoint.url,
            session_present=bool(getattr(flags, "session_present", False)),
        )
        client.subscribe([(topic, 1) for topic in self.topics])

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, codes: Any, props: Any = None) -> None:
        if any(getattr(code, "is_failure", False) for code in codes):
            self._write("telemetry.collector", event="subscribe-refused", codes=[str(c) for c in codes])
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
            self._write("telemetry.collector", event="disconnected", reason=str(rc))

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        arrival = time.time()
        raw = bytes(msg.payload)
        try:
            self._handle(msg.topic, raw, arrival, bool(msg.retain), bool(msg.dup))
        except Exception as exc:  # never let one message stop the collector
            self._errors += 1
            self._malformed_record(msg.topic, raw, f"collector error: {type(exc).__name__}: {exc}")

    def _handle(self, topic: str, raw: bytes, arrival: float, retained: bool, redelivered: bool = False) -> None:
        if topic.endswith("/status"):
            if not raw:
                return  # a retained status being cleared
            try:
                status = parse_status(topic, raw)
            except MalformedMessage as exc:
                self._malformed_record(topic, raw, str(exc))
                return
            device = device_of(topic) or ""
            self._write(
                "telemetry.status", device=device, topic=topic, arrival=arrival, payload=status, retained=retained
            )
            with self._cond:
                self._status[device] = status
                self._cond.notify_all()
            return
        try:
            payload = parse_telemetry(topic, raw)
        except MalformedMessage as exc:
            self._malformed_record(topic, raw, str(exc))
            return
        device = payload["device"]
        seen = self._seen.annotate(device, payload)  # network thread only
        if redelivered:  # the broker re-sent it to this session (MQTT DUP): not something the device did
            seen["redelivered"] = True
        rec = self._journaled("telemetry", device=device, topic=topic, arrival=arrival, payload=payload, **seen)
        message = Message(device, topic, arrival, payload, duplicate=bool(seen.get("duplicate")))
        with self._cond:
            self._records.append(rec)
            self._messages.append(message)
            self._by_device.setdefault(device, []).append(message)
            if not message.duplicate:
                self._new.append(message)
                self._new_by_device.setdefault(device, []).append(message)
            self._last_arrival = arrival
            # wake waiters only when one of them can be satisfied: a per-message wake-up costs
            # more than the rest of the collector's work on a message
            if self._eager_waiters or len(self._new) >= min(self._count_targets.values(), default=_NEVER):
                self._cond.notify_all()

    def _malformed_record(self, topic: str, raw: bytes, error: str) -> None:
        self._write("telemetry.malformed", topic=topic, raw=raw.decode("utf-8", "backslashreplace"), error=error)
        with self._cond:
            self._malformed += 1
            self._cond.notify_all()

    def _journaled(self, kind: str, **fields: Any) -> dict[str, Any]:
        if self.journal is not None:
            return self.journal.record(kind, collector=self.client_id, **fields)
        return {"t": time.time(), "kind": kind, "collector": self.client_id, **fields}

    def _write(self, kind: str, **fields: Any) -> None:
        rec = self._journaled(kind, **fields)
        with self._cond:
            self._records.append(rec)

    # -- waits ------------------------------------------------------------------------------------
    @overload
    def wait_for(self, what: int, timeout: float = ..., *, device: str | None = ...) -> list[Message]: ...
    @overload
    def wait_for(
        self, what: Callable[[Message], bool], timeout: float = ..., *, device: str | None = ...
    ) -> Message: ...

    def wait_for(
        self, what: int | Callable[[Message], bool], timeout: float = 10.0, *, device: str | None = None
    ) -> list[Message] | Message:
        """Wait for ``what`` new valid messages in all (count), or the first one matching a predicate.

        A count counts new messages only: the first arrival of each device, boot and seq. QoS 1
        redeliveries and device resends of a seq already received (``Message.duplicate``) do not
        count, so "5 messages" means five pieces of telemetry, and the list returned holds the new
        messages. A predicate sees every arrival. Messages already received count. ``device``
        restricts either form to one device.
        """
        if isinstance(what, bool) or not (isinstance(what, int) or callable(what)):
            raise TypeError(f"wait_for: expected a message count or a predicate, got {what!r}")
        deadline = time.monotonic() + timeout
        token = object()
        with self._cond:
            if not isinstance(what, int):
                self._eager_waiters += 1
            try:
                return self._wait_messages(what, timeout, deadline, device, token)
            finally:
                self._count_targets.pop(token, None)
                if not isinstance(what, int):
                    self._eager_waiters -= 1

    def _wait_messages(
        self,
        what: int | Callable[[Message], bool],
        timeout: float,
        deadline: float,
        device: str | None,
        token: object,
    ) -> list[Message] | Message:
        checked = 0
        while True:
            if isinstance(what, int):
                mine = self._new if device is None else self._new_by_device.get(device, [])
                if len(mine) >= what:
                    return mine[:]
                # the total count of new messages at which this wait can first be satisfied
                self._count_targets[token] = len(self._new) + what - len(mine)
            else:
                mine = self._messages if device is None else self._by_device.get(device, [])
                for m in mine[checked:]:
                    if what(m):
                        return m
                checked = len(mine)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                wanted = (
                    f"{what} new telemetry messages"
                    if isinstance(what, int)
                    else f"a telemetry message matching {getattr(what, '__name__', repr(what))}"
                )
                got = f"got {len(mine)}"
                if isinstance(what, int):
                    got += " new (a redelivery of a seq already received is not new)"
                raise TelemetryTimeout(
                    f"timed out after {timeout:g}s waiting for {wanted}"
                    f"{f' from {device}' if device else ''} on {self.endpoint.url}; {got}; "
                    f"last message: {mine[-1] if mine else '<none>'}"
                )
            self._cond.wait(remaining)

    def wait_for_status(self, device: str, state: str, timeout: float = 10.0) -> dict[str, Any]:
        """Wait until ``device``'s latest status has ``state`` (online/offline); returns the status."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                status = self._status.get(device)
                if status is not None and status.get("state") == state:
                    return dict(status)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TelemetryTimeout(
                        f"timed out after {timeout:g}s waiting for {device} status {state!r} on "
                        f"{self.endpoint.url}; last status: {status if status is not None else '<none>'}"
                    )
                self._cond.wait(remaining)

    def wait_quiet(self, quiet: float = 1.0, timeout: float = 30.0) -> None:
        """Wait until no telemetry has arrived for ``quiet`` seconds (the stream has drained)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                now = time.time()
                silent_for = now - self._last_arrival
                if silent_for >= quiet:
                    return
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TelemetryTimeout(
                        f"timed out after {timeout:g}s waiting for {quiet:g}s without telemetry; "
                        f"last message: {self._messages[-1] if self._messages else '<none>'}"
                    )
                self._cond.wait(min(remaining, quiet - silent_for))

    # -- views ------------------------------------------------------------------------------------
    def messages(self, device: str | None = None, *, duplicates: bool = True) -> list[Message]:
        """Every valid arrival (``duplicates=False``: the new ones only, first arrival of each seq)."""
        with self._cond:
            pool = self._messages if duplicates else self._new
            return [m for m in pool if device is None or m.device == device]

    def marks(self, device: str | None = None) -> tuple[int, int]:
        """(arrivals, new messages) so far, taken together: where a view of "from now on" starts."""
        with self._cond:
            if device is None:
                return len(self._messages), len(self._new)
            return len(self._by_device.get(device, [])), len(self._new_by_device.get(device, []))

    def status(self, device: str) -> dict[str, Any] | None:
        with self._cond:
            status = self._status.get(device)
            return dict(status) if status is not None else None

    def records(self) -> list[dict[str, Any]]:
        """The records accounting runs on: the whole journal when there is one (so power and
        injection records written by others count), else what this collector saw. Telemetry
        records of other collectors sharing the journal are left out, so nothing counts twice."""
        if self.journal is not None and not self.journal.closed:
            self.journal.flush()
            return [
                r
                for r in read_journal(self.journal.path)
                if not str(r.get("kind", "")).startswith("telemetry") or r.get("collector") == self.client_id
            ]
        with self._cond:
            return list(self._records)

    def summary(self) -> Accounting:
        """Per-device accounting (received, duplicates, out-of-order, gaps by cause, latency)."""
        return account(self.records(), self.config)

    def frame(self) -> pd.DataFrame:
        """Every valid telemetry arrival as a DataFrame (see :func:`telemetry_frame`)."""
        with self._cond:
            records = [r for r in self._records if r.get("kind") == "telemetry"]
        return telemetry_frame(records)

    def statistics(self) -> dict[str, Any]:
        with self._cond:
            return {
                "url": self.endpoint.url,
                "client_id": self.client_id,
                "connected": self.connected,
                "connects": self._connects,
                "received": len(self._messages),  # every valid arrival
                "unique": len(self._new),
                "duplicates": len(self._messages) - len(self._new),
                "malformed": self._malformed,
                "errors": self._errors,
                "devices": sorted({m.device for m in self._messages}),
            }

    # -- assertions -------------------------------------------------------------------------------
    def assert_no_unexplained_loss(self, device: str | None = None) -> None:
        self.summary().assert_no_unexplained_loss(device)

    def assert_no_loss(self, device: str | None = None) -> None:
        self.summary().assert_no_loss(device)

    def assert_latency(
        self,
        *,
        p50: float | None = None,
        p90: float | None = None,
        p99: float | None = None,
        max: float | None = None,
        device: str | None = None,
    ) -> None:
        self.summary().assert_latency(p50=p50, p90=p90, p99=p99, max=max, device=device)
