"""The telemetry collector's core, transport-free: what it does with each message, and its waits.

:class:`CollectorCore` is fed messages (topic, payload bytes, arrival time, retained and redelivered
flags) by whatever carries them: paho on a real broker (:class:`~harness.services.collector.TelemetryCollector`)
or the simulated broker of a virtual rig. For each one it writes the journal record (``telemetry``,
``telemetry.status``, or ``telemetry.malformed`` with the raw payload and the reason), annotated with
what it had seen of that boot before (:mod:`harness.services.seen`), keeps it for waits and views,
and never lets one message stop it. Accounting is the pure :func:`~harness.services.accounting.account`
over the journal, so the live view and a report rebuilt from the journal agree.

Time is the run's :class:`~harness.run.clock.Clock`: arrivals are its ``wall()``, and every wait
(``wait_for``, ``wait_for_status``, ``wait_quiet``) is a wait on one of its conditions, so on a
simulated clock a wait advances simulated time instead of sleeping.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, overload

import pandas as pd  # type: ignore[import-untyped,unused-ignore]

from harness.errors import HarnessError
from harness.run.clock import Clock, RealClock
from harness.run.journal import Journal, read_journal
from harness.services.accounting import Accounting, AccountingConfig, account
from harness.services.frame import telemetry_frame
from harness.services.seen import SeenBoots
from harness.services.telemetry_schema import MalformedMessage, device_of, parse_status, parse_telemetry

_NEVER = float("inf")


def _grew(items: list[Message], count: int) -> bool:
    return len(items) != count


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


class CollectorCore:
    """Receives, journals and accounts device telemetry; see the module docstring.

    ``url`` names where the messages come from in timeout errors; ``clock`` defaults to the
    journal's (the run's), else the real clock.
    """

    def __init__(self, url: str, journal: Journal | None = None, *, client_id: str,
                 config: AccountingConfig | None = None, clock: Clock | None = None) -> None:  # fmt: skip
        self.url = url
        self.journal = journal
        self.client_id = client_id
        self.config = config or AccountingConfig()
        self.clock: Clock = clock or (journal.clock if journal is not None else RealClock())
        self._cond = self.clock.condition()
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
        self._last_arrival = 0.0

    # -- what the transport feeds -----------------------------------------------------------------
    def receive(self, topic: str, raw: bytes, *, arrival: float | None = None, retained: bool = False,
                redelivered: bool = False) -> None:  # fmt: skip
        """One message off the wire (``arrival``: the clock's wall time when omitted). Never raises:
        a message the collector cannot handle is journalled as malformed with the error."""
        when = self.clock.wall() if arrival is None else arrival
        try:
            self._handle(topic, raw, when, retained, redelivered)
        except Exception as exc:  # never let one message stop the collector
            self._errors += 1
            self._malformed_record(topic, raw, f"collector error: {type(exc).__name__}: {exc}")

    def note(self, kind: str, **fields: Any) -> None:
        """Journal a record of the collector's own (``telemetry.collector``: connected, refused, ...)."""
        rec = self._journaled(kind, **fields)
        with self._cond:
            self._records.append(rec)
            self._cond.notify_all()

    def _handle(self, topic: str, raw: bytes, arrival: float, retained: bool, redelivered: bool) -> None:
        if topic.endswith("/status"):
            if not raw:
                return  # a retained status being cleared
            try:
                status = parse_status(topic, raw)
            except MalformedMessage as exc:
                self._malformed_record(topic, raw, str(exc))
                return
            device = device_of(topic) or ""
            self.note("telemetry.status", device=device, topic=topic, arrival=arrival, payload=status,
                      retained=retained)  # fmt: skip
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
        seen = self._seen.annotate(device, payload)  # the transport's one thread only
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
        with self._cond:
            self._malformed += 1
        self.note("telemetry.malformed", topic=topic, raw=raw.decode("utf-8", "backslashreplace"), error=error)

    def _journaled(self, kind: str, **fields: Any) -> dict[str, Any]:
        if self.journal is not None:
            return self.journal.record(kind, collector=self.client_id, **fields)
        return {"t": self.clock.wall(), "kind": kind, "collector": self.client_id, **fields}

    def collector_events(self, last: int = 3) -> str:
        """The collector's last few link events, e.g. ``refused (Not authorized), disconnected``."""
        with self._cond:
            events = [r for r in self._records if r.get("kind") == "telemetry.collector"][-last:]
        text = ", ".join(f"{e['event']} ({e['reason']})" if e.get("reason") else str(e["event"]) for e in events)
        return text or "<none>"

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
        token = object()
        found: list[Message | list[Message]] = []
        checked = 0

        def pool() -> list[Message]:
            if isinstance(what, int):
                return self._new if device is None else self._new_by_device.get(device, [])
            return self._messages if device is None else self._by_device.get(device, [])

        def satisfied() -> bool:
            nonlocal checked
            mine = pool()
            if isinstance(what, int):
                if len(mine) >= what:
                    found.append(mine[:])
                    return True
                # the total count of new messages at which this wait can first be satisfied
                self._count_targets[token] = len(self._new) + what - len(mine)
                return False
            for m in mine[checked:]:
                if what(m):
                    found.append(m)
                    return True
            checked = len(mine)
            return False

        with self._cond:
            if not isinstance(what, int):
                self._eager_waiters += 1
            try:
                if self._cond.wait_for(satisfied, timeout):
                    return found[0]
                mine = pool()
            finally:
                self._count_targets.pop(token, None)
                if not isinstance(what, int):
                    self._eager_waiters -= 1
        if isinstance(what, int):
            wanted = f"{what} new telemetry messages"
            got = f"got {len(mine)} new (a redelivery of a seq already received is not new)"
        else:
            wanted = f"a telemetry message matching {getattr(what, '__name__', repr(what))}"
            got = f"got {len(mine)}"
        raise TelemetryTimeout(
            f"timed out after {timeout:g}s waiting for {wanted}{f' from {device}' if device else ''} on "
            f"{self.url}; {got}; last message: {mine[-1] if mine else '<none>'}"
        )

    def wait_for_status(self, device: str, state: str, timeout: float = 10.0) -> dict[str, Any]:
        """Wait until ``device``'s latest status has ``state`` (online/offline); returns the status."""

        def reached() -> bool:
            status = self._status.get(device)
            return status is not None and status.get("state") == state

        with self._cond:
            if self._cond.wait_for(reached, timeout):
                return dict(self._status[device])
            status = self._status.get(device)
        raise TelemetryTimeout(
            f"timed out after {timeout:g}s waiting for {device} status {state!r} on {self.url}; "
            f"last status: {status if status is not None else '<none>'}"
        )

    def wait_quiet(self, quiet: float = 1.0, timeout: float = 30.0) -> None:
        """Wait until no telemetry has arrived for ``quiet`` seconds (the stream has drained)."""
        deadline = self.clock.now() + timeout
        with self._cond:
            while True:
                silent_for = self.clock.wall() - self._last_arrival
                if silent_for >= quiet:
                    return
                remaining = deadline - self.clock.now()
                if remaining <= 0:
                    raise TelemetryTimeout(
                        f"timed out after {timeout:g}s waiting for {quiet:g}s without telemetry; "
                        f"last message: {self._messages[-1] if self._messages else '<none>'}"
                    )
                arrivals = len(self._messages)
                self._eager_waiters += 1
                try:  # until a message arrives, or the instant the stream would have been quiet long enough
                    self._cond.wait_for(partial(_grew, self._messages, arrivals), min(remaining, quiet - silent_for))
                finally:
                    self._eager_waiters -= 1

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

    def counts(self) -> dict[str, Any]:
        """What arrived so far: every valid arrival, the new ones, duplicates, malformed, devices."""
        with self._cond:
            return {
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

    def assert_latency(self, *, p50: float | None = None, p90: float | None = None, p99: float | None = None,
                       max: float | None = None, device: str | None = None) -> None:  # fmt: skip
        self.summary().assert_latency(p50=p50, p90=p90, p99=p99, max=max, device=device)
