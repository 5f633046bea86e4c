"""Updates as a test sees them: build and sign an image, serve it, start the job, follow it to its outcome.

How a job reaches the firmware is the device profile's ``ota_delivery``: ``mqtt`` publishes a JSON job
(retained, QoS 1) on the device's job topic and takes the phases and the outcome from the reports on
its status topic (:mod:`harness.services.ota_jobs`); ``console`` types the profile's ``ota_apply``
command and reads them from the console with the ``ota_outcome`` / ``ota_phase`` patterns. Either way
the console lines of the update are kept (failure messages show them with the last status), every
phase becomes an ``ota`` journal record (the soak report's OTA table and timings) and each deployment
an ``ota.result`` record.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from harness.errors import CapabilityMissing, ConfigError, DeviceError, ExpectTimeout, PowerError

OUTCOMES = frozenset({"committed", "rolled_back", "rejected", "failed"})


@dataclass
class OtaOutcome:
    """What one deployment did: the outcome, the timings, and the console lines and reports that show it.

    ``timings`` has one entry per phase, ``<phase>_s`` = seconds from that phase to the next: ``job_s``
    (job sent to the download starting), ``downloading_s`` (the download), ``verifying_s`` (verify and
    arm), ``rebooting_s`` (reboot into the trial), ``trial_s`` (trial boot to confirm, or to the
    rollback), as far as the update got.
    """

    result: str  # committed | rolled_back | rejected | failed | timeout
    version: str
    reason: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    boots: int = 0
    running: str = ""  # the version the device runs afterwards
    job_id: str = ""
    via: str = "console"  # how the job was delivered: mqtt | console
    reports: list[str] = field(default_factory=list)  # the status reports of this job, as one line each

    @property
    def duration(self) -> float:
        return sum(self.timings.values())


@dataclass(frozen=True)
class OtaJob:
    version: str
    url: str
    sha256: str
    size: int
    mark: int
    started: float
    job_id: str = ""
    via: str = "console"
    document: dict[str, Any] = field(default_factory=dict)  # the MQTT job as published


class OtaService:
    """Build, sign, serve and deploy images to one device (the ``ota`` fixture)."""

    def __init__(self, dut: Any, artifacts: Any, artifacts_url: str, journal: Any, device: str, *,
                 jobs: Any = None, slot_size: int | None = None) -> None:  # fmt: skip
        from harness.ota import KeyPair

        profile = dut.profile
        if not profile.takes_ota:
            raise CapabilityMissing(f"device profile {profile.name!r} takes no update: it sets neither "
                                    "ota_delivery: mqtt nor an ota_apply command")  # fmt: skip
        if profile.ota_delivery == "mqtt" and jobs is None:
            raise CapabilityMissing(f"device profile {profile.name!r} takes updates over MQTT, but the rig "
                                    "has no broker for the job channel")  # fmt: skip
        self.dut = dut
        self.jobs = jobs  # harness.services.ota_jobs.OtaJobChannel, for ota_delivery: mqtt
        self.artifacts = artifacts
        self.artifacts_url = artifacts_url.rstrip("/")
        self.journal = journal
        self.device = device
        self.slot_size = slot_size  # the device's slot (harness.ota.slot.rig_slot_size); None: unknown
        self.key = KeyPair.ephemeral()
        self.via = profile.ota_delivery
        self._outcome = re.compile(profile.ota_outcome, re.MULTILINE)
        self._phase = re.compile(profile.ota_phase)
        self._counter = 0
        self._lock = threading.Lock()
        self._provisioned = False
        self.last_job: OtaJob | None = None  # the latest job start() sent

    def provision(self, *, reboot: bool = True) -> None:
        """Give the device this run's signing key (a factory step; the firmware reads it at boot).

        ``reboot=False`` when the caller reboots anyway (the services set-up does, once, for all settings).
        """
        for template in self.dut.profile.ota_key_setup:
            self.dut.command(template.format(pubkey_hex=self.key.public_raw.hex()))
        if reboot and self.dut.profile.ota_key_setup:
            self.dut.reboot()
        self._provisioned = True

    def build(self, version: str, *, variant: str = "healthy", variant_param: int = 0,
              security_counter: int | None = None, size: int | None = None, corrupt: str = "none") -> Any:
        """A signed image of ``version``; ``corrupt`` makes a faulty one (see harness.ota.CORRUPTIONS)."""
        from harness.ota import build_signed_image
        from harness.ota import corrupt as make_faulty

        with self._lock:  # scenario events deploy from their own thread
            if security_counter is None:  # one above any counter this run has used: never a downgrade by accident
                security_counter = self._counter + 1
            self._counter = max(self._counter, security_counter)
        kwargs: dict[str, Any] = {"security_counter": security_counter, "variant": variant,
                                  "variant_param": variant_param, "slot_size": self.slot_size}
        if size is not None:
            kwargs["size"] = size
        image = build_signed_image(version, self.key, **kwargs)
        return image if corrupt in ("none", "") else make_faulty(image, corrupt)

    def deploy(self, image: Any, *, expect: str | None = "committed", timeout: float = 300.0,
               via: str | None = None, job: dict[str, Any] | None = None) -> OtaOutcome:  # fmt: skip
        """Serve ``image``, send the job, follow it to the outcome; raise DeviceError if it is not ``expect``.

        ``via`` overrides the profile's delivery (``mqtt`` or ``console``); ``job`` overrides fields of
        the MQTT job document (a test of what the firmware does with a wrong one).
        """
        return self.finish(self.start(image, via=via, job=job), expect=expect, timeout=timeout)

    def start(self, image: Any, *, via: str | None = None, job: dict[str, Any] | None = None) -> OtaJob:
        """Serve ``image`` and send the job; returns at once (a test may cut power meanwhile)."""
        import hashlib

        via = via or self.via
        if via not in ("mqtt", "console"):
            raise ValueError(f"ota: via expects 'mqtt' or 'console', got {via!r}")
        if via == "mqtt" and self.jobs is None:
            raise CapabilityMissing(f"device profile {self.dut.profile.name!r} takes no jobs over MQTT")
        if via == "console" and not self.dut.profile.ota_apply:
            raise CapabilityMissing(f"device profile {self.dut.profile.name!r} has no ota_apply command")
        manifest = image.manifest
        problem = manifest.slot_problem(self.slot_size)
        if problem is not None:  # built elsewhere: no device with this slot could install it
            raise ConfigError(f"ota: {problem} of device {self.device}")
        if not self._provisioned:
            self.provision()
        # The job names the file it serves (what an attacker who cannot sign could still get right) and
        # the signature of the manifest, the image as it was published.
        sha256 = hashlib.sha256(image.data).hexdigest()
        name = f"{self.device}-{manifest.version}-{sha256[:12]}.img"
        self.artifacts.publish(name, image.data)
        url = f"{self.artifacts_url}/{name}"
        mark, started = self.dut.console.mark(), time.monotonic()
        if via == "mqtt":
            from harness.services.ota_jobs import new_job_id

            document = {"job_id": new_job_id(self.device), "version": manifest.version, "url": url,
                        "size": len(image.data), "sha256": sha256, "signature": manifest.signature}  # fmt: skip
            document.update(job or {})
            sent = OtaJob(manifest.version, url, sha256, len(image.data), mark, started, str(document["job_id"]), via,
                          dict(document))  # fmt: skip
            self._record("job", sent.version, url=url, size=sent.size, sha256=sha256, job_id=sent.job_id, via=via)
            self.last_job = sent
            self.jobs.publish_job(self.device, document)
            return sent
        sent = OtaJob(manifest.version, url, sha256, len(image.data), mark, started)
        self.last_job = sent
        self._record("job", sent.version, url=url, size=sent.size, sha256=sha256, via=via)
        self.dut.console.sendline(
            self.dut.profile.ota_apply.format(url=url, sha256=sha256, size=sent.size, version=sent.version)
        )
        return sent

    def finish(self, job: OtaJob, *, expect: str | None = "committed", timeout: float = 300.0) -> OtaOutcome:
        """Follow ``job`` to its outcome; raise DeviceError if it is not ``expect``."""
        outcome = self._finish_mqtt(job, timeout) if job.via == "mqtt" else self._finish_console(job, timeout)
        result = outcome.result
        if result in ("committed", "rolled_back") and not self.dut.is_responsive():
            self.dut.wait_ready(reason="ota")
        outcome.running = self._running_version()
        as_expected = expect is None or outcome.result == expect
        self.journal.record("ota.result", device=self.device, version=job.version, result=outcome.result,
                            expected=expect, as_expected=as_expected, duration=round(outcome.duration, 3),
                            timings=outcome.timings, running=outcome.running)
        if not as_expected:
            tail = " | ".join(outcome.lines[-8:]) or "<none>"
            status = outcome.reports[-1] if outcome.reports else "<none>"
            last = f"last status: {status}; " if job.via == "mqtt" else ""
            raise DeviceError(f"OTA of {job.version} ended {outcome.result!r}"
                              f"{f' ({outcome.reason})' if outcome.reason else ''}, expected {expect!r}; "
                              f"device runs {outcome.running or '?'}; {last}last console lines: {tail}")
        return outcome

    def _finish_console(self, job: OtaJob, timeout: float) -> OtaOutcome:
        try:
            m = self.dut.console.expect(self._outcome, timeout=timeout)
            result, reason = m.group("phase"), (m.groupdict().get("reason") or "")
        except ExpectTimeout:
            result, reason = "timeout", f"no outcome within {timeout:g}s"
        return self._follow(job.mark, job.started, job.version, result, reason)

    def _finish_mqtt(self, job: OtaJob, timeout: float) -> OtaOutcome:
        """The outcome from the device's status reports; phases and timings from the reports too.

        The job is cleared from the broker however this ends — outcome, timeout or error — so a device
        that connects later never installs a deployment its test has already given up on."""
        try:
            final = self.jobs.wait_outcome(self.device, job.job_id, timeout)
        finally:
            self._clear(job)
        reports = self.jobs.reports(self.device, job.job_id)
        if final is None:
            last = f"; last status: {reports[-1]}" if reports else "; no status report of this job arrived"
            result, reason = "timeout", f"no outcome within {timeout:g}s{last}"
        else:
            result, reason = final.phase, final.reason
        lines = self.dut.console.timed_lines_since(job.mark)
        t0 = time.time() - (time.monotonic() - job.started)
        marks: list[tuple[str, float]] = [("job", t0)]
        for report in reports:
            if report.phase in OUTCOMES:
                break
            if report.phase != marks[-1][0]:
                when = max(report.when, marks[-1][1])
                marks.append((report.phase, when))
                self._record(report.phase, job.version, t=when, job_id=job.job_id, percent=report.percent)
        end = max(final.when, marks[-1][1]) if final is not None else time.time()
        marks.append((result, end))
        timings = {f"{a}_s": round(tb - ta, 3) for (a, ta), (_, tb) in itertools.pairwise(marks)}
        self._record(result, job.version, t=end, reason=reason or None, timings=timings, job_id=job.job_id)
        boot_done = re.compile(self.dut.profile.boot_done)
        boots = sum(1 for _, line in lines if boot_done.search(line))
        return OtaOutcome(result, job.version, reason, timings, [line for _, line in lines], boots,
                          job_id=job.job_id, via="mqtt", reports=[str(r) for r in reports])  # fmt: skip

    def status(self) -> dict[str, Any]:
        """The firmware's own view (``ota status`` on the twin): one JSON line."""
        import json

        return dict(json.loads(self.dut.command("ota status").strip().splitlines()[-1]))

    def _follow(self, mark: int, started: float, version: str, result: str, reason: str) -> OtaOutcome:
        """Phase records and timings from the console lines of this update."""
        lines = self.dut.console.timed_lines_since(mark)
        boot_done = re.compile(self.dut.profile.boot_done)
        t0 = time.time() - (time.monotonic() - started)
        marks: list[tuple[str, float]] = [("job", t0)]
        boots = 0
        for t, line in lines:
            m = self._phase.search(line)
            if m and m.group("phase") != marks[-1][0]:
                marks.append((m.group("phase"), t))
                self._record(m.group("phase"), version, t=t, line=line)
            if boot_done.search(line):
                boots += 1
        end = lines[-1][0] if lines else time.time()
        marks.append((result, end))
        timings = {f"{a}_s": round(tb - ta, 3) for (a, ta), (_, tb) in itertools.pairwise(marks)}
        self._record(result, version, t=end, reason=reason or None, timings=timings)
        return OtaOutcome(result, version, reason, timings, [line for _, line in lines], boots)

    def _clear(self, job: OtaJob) -> None:
        """Clear ``job`` from the broker if it is still the device's latest; a broker that does not answer
        leaves it open (journaled), and the ``ota`` fixture tries again when the test ends."""
        from harness.services.ota_jobs import OtaChannelError

        try:
            self.jobs.clear_job(self.device, job.job_id)
        except OtaChannelError as exc:
            self.journal.record("ota.job.clear_failed", device=self.device, job_id=job.job_id, error=str(exc))

    def clear_open_jobs(self) -> list[str]:
        """Clear every job this run left on the broker (the ``ota`` fixture does after each test)."""
        return [] if self.jobs is None else self.jobs.clear_open_jobs()

    def reports(self, job_id: str | None = None) -> list[Any]:
        """The device's status reports over MQTT (of one job, or all), as they arrived."""
        return [] if self.jobs is None else self.jobs.reports(self.device, job_id)

    def _running_version(self) -> str:
        """The version the device runs; "" when it cannot say. A device whose supply is off is not
        asked: it would answer nothing until the command timed out."""
        try:
            if not self.dut.power.is_on():
                return ""
        except (CapabilityMissing, PowerError):
            pass  # no supply on this rig, or it cannot say: ask the device
        try:
            return self.dut.version()
        except (DeviceError, ExpectTimeout):
            return ""

    def _record(self, phase: str, version: str, *, t: float | None = None, **fields: Any) -> None:
        self.journal.record("ota", t=t, device=self.device, phase=phase, version=version,
                            **{k: v for k, v in fields.items() if v is not None})
