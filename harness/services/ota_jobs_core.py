"""The OTA job channel's core, transport-free: which jobs are open, every status report, the waits.

:class:`OtaJobsCore` is what the deployer knows. A transport (paho on a real broker,
:class:`~harness.services.ota_jobs.OtaJobChannel`, or the simulated broker of a virtual rig) feeds it
each message on the status topics (:meth:`OtaJobsCore.take`) and carries what it publishes
(:meth:`OtaJobsCore.send`, the one method a transport must give). Every report becomes an
``ota.status`` journal record (a malformed one an ``ota.status.malformed`` record with the raw
payload), and waits for a job's outcome are waits on the run's clock. The job document and status
payloads are :mod:`harness.twin.ota_jobs`, the contract both ends use.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness.errors import HarnessError
from harness.run.clock import Clock, RealClock
from harness.twin.ota_jobs import REPORT_OUTCOMES, REPORT_PHASES, BadStatus, encode_job, parse_status

OUTCOMES = frozenset(REPORT_OUTCOMES)
PHASES = frozenset(REPORT_PHASES)
MalformedStatus = BadStatus  # the name the deployer's side has always used


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


def parse_status_report(device: str, raw: bytes, arrival: float) -> StatusReport:
    """The report in ``raw``; any payload that breaks the contract raises MalformedStatus, nothing else."""
    body = parse_status(raw)
    ts = body.get("ts")
    return StatusReport(device, str(body.get("job_id") or ""), body["phase"], str(body.get("version") or ""),
                        body.get("percent", 0), str(body.get("reason") or ""), arrival,
                        None if ts is None else float(ts), str(body.get("fw") or ""), body)  # fmt: skip


def new_job_id(device: str) -> str:
    """Unique across runs sharing a broker: a device that keeps its job record never mistakes a new job."""
    return f"{device}-{uuid.uuid4().hex[:12]}"[-64:]


class OtaJobsCore(ABC):
    """Open jobs and status reports of every device of a run; a transport gives :meth:`send`."""

    def __init__(self, journal: Any = None, *, job_topic: str = "devices/{device_id}/ota/job",
                 status_topic: str = "devices/{device_id}/ota/status", clock: Clock | None = None) -> None:  # fmt: skip
        self.journal = journal
        self.job_topic = job_topic
        self.status_filter = status_topic.format(device_id="+")
        self._status_template = status_topic
        self.clock: Clock = clock or getattr(journal, "clock", None) or RealClock()
        self._cond = self.clock.condition()
        self._reports: list[StatusReport] = []
        self._malformed = 0
        self._open: dict[str, tuple[str, bytes]] = {}  # device -> (job_id, payload) published, not cleared

    @abstractmethod
    def send(self, topic: str, payload: bytes) -> None:
        """Publish ``payload`` retained at QoS 1 on ``topic``, returning once the broker has it; raise
        :class:`OtaChannelError` when it cannot. The transport's one job."""

    # -- jobs ---------------------------------------------------------------------------------------
    def publish_job(self, device: str, job: dict[str, Any]) -> None:
        """Publish ``job`` retained (QoS 1) on ``device``'s job topic; returns once the broker has it.

        It stays open until :meth:`clear_job`: a transport publishes it again after it reconnects (a
        broker restart may lose retained messages; the device acts on each ``job_id`` once, so a
        repeat is harmless)."""
        payload = encode_job(job)
        with self._cond:
            self._open[device] = (str(job.get("job_id", "")), payload)
        self.send(self.job_topic.format(device_id=device), payload)
        self.record("ota.job", device=device, job=job)

    def clear_job(self, device: str, job_id: str | None = None) -> bool:
        """Remove the retained job (the job is over): a device that connects later finds nothing to do.

        With ``job_id``, only if that is still the device's latest job (a newer one is left alone);
        returns whether a job was cleared."""
        with self._cond:
            current = self._open.get(device)
            if job_id is not None and current is not None and current[0] != job_id:
                return False
        self.send(self.job_topic.format(device_id=device), b"")  # raises: the job stays open
        with self._cond:
            if self._open.get(device) == current:
                self._open.pop(device, None)
        self.record("ota.job.cleared", device=device, job_id=job_id or (current[0] if current else None))
        return True

    def open_jobs(self) -> dict[str, str]:
        """Device -> job id of every job published and not cleared."""
        with self._cond:
            return {device: job_id for device, (job_id, _) in self._open.items()}

    def open_payloads(self) -> list[tuple[str, str, bytes]]:
        """(device, job id, payload) of every open job: what a transport publishes again on reconnect."""
        with self._cond:
            return [(device, job_id, payload) for device, (job_id, payload) in self._open.items()]

    def clear_open_jobs(self) -> list[str]:
        """Clear every open job (a test ended, however it ended); the devices whose job was cleared."""
        cleared = []
        for device, job_id in self.open_jobs().items():
            try:
                if self.clear_job(device, job_id):
                    cleared.append(device)
            except OtaChannelError as exc:  # the broker is down: journaled, tried again at the next clear
                self.record("ota.job.clear_failed", device=device, job_id=job_id, error=str(exc))
        return cleared

    # -- reports ------------------------------------------------------------------------------------
    def take(self, topic: str, raw: bytes, *, arrival: float | None = None, retained: bool = False) -> None:
        """One message on the status topics (``arrival``: the clock's wall time when omitted). Never
        raises: what cannot be read is journalled as ``ota.status.malformed``."""
        when = self.clock.wall() if arrival is None else arrival
        try:
            self._take(topic, raw, when, retained)
        except Exception as exc:  # never let one message end the transport's thread: journal it instead
            self.record("ota.status.malformed", topic=topic, error=f"{type(exc).__name__}: {exc}"[:200])

    def _take(self, topic: str, raw: bytes, arrival: float, retained: bool) -> None:
        if not raw:
            return  # a retained status being cleared
        device = self._device_of(topic)
        try:
            report = parse_status_report(device, raw, arrival)
        except MalformedStatus as exc:
            with self._cond:
                self._malformed += 1
            self.record("ota.status.malformed", device=device, topic=topic,
                        raw=raw.decode("utf-8", "backslashreplace"), error=str(exc))  # fmt: skip
            return
        self.record("ota.status", device=device, job_id=report.job_id, phase=report.phase, version=report.version,
                    percent=report.percent, reason=report.reason, fw=report.fw, device_ts=report.ts,
                    boot_id=report.payload.get("boot_id"), arrival=arrival, retained=retained)  # fmt: skip
        with self._cond:
            self._reports.append(report)
            self._cond.notify_all()

    def reports(self, device: str, job_id: str | None = None) -> list[StatusReport]:
        with self._cond:
            return [r for r in self._reports if r.device == device and (job_id is None or r.job_id == job_id)]

    def wait_for(self, device: str, job_id: str, until: Callable[[StatusReport], bool], timeout: float
                 ) -> StatusReport | None:  # fmt: skip
        """The first report of ``job_id`` (received before or during the wait) that satisfies ``until``;
        None when none came within ``timeout`` of the run's clock."""
        found: list[StatusReport] = []
        checked = 0

        def arrived() -> bool:
            nonlocal checked
            mine = [r for r in self._reports if r.device == device and r.job_id == job_id]
            for report in mine[checked:]:
                if until(report):
                    found.append(report)
                    return True
            checked = len(mine)
            return False

        with self._cond:
            return found[0] if self._cond.wait_for(arrived, timeout) else None

    def wait_outcome(self, device: str, job_id: str, timeout: float) -> StatusReport | None:
        return self.wait_for(device, job_id, lambda r: r.phase in OUTCOMES, timeout)

    def counts(self) -> dict[str, Any]:
        with self._cond:
            return {"reports": len(self._reports), "malformed": self._malformed, "open_jobs": {
                device: job_id for device, (job_id, _) in self._open.items()}}  # fmt: skip

    def _device_of(self, topic: str) -> str:
        head, _, tail = self._status_template.partition("{device_id}")
        if topic.startswith(head) and topic.endswith(tail):
            return topic[len(head) : len(topic) - len(tail)]
        return ""

    def record(self, kind: str, **fields: Any) -> None:
        if self.journal is not None:
            self.journal.record(kind, **fields)
