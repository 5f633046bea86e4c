"""Updates as a test sees them: build and sign an image, serve it, start the job, follow it to its outcome.

The job starts with the device profile's ``ota_apply`` command; the outcome and the phases are read
from the console as the profile's ``ota_outcome`` / ``ota_phase`` patterns describe, so a team adapts
this to its own firmware with data. Every phase becomes an ``ota`` journal record (the soak report's
OTA table and timings), and each deployment an ``ota.result`` record.
"""

from __future__ import annotations

import itertools
import re
import time
from dataclasses import dataclass, field
from typing import Any

from harness.errors import CapabilityMissing, DeviceError, ExpectTimeout


@dataclass
class OtaOutcome:
    """What one deployment did: the outcome, the timings, and the console lines that show it."""

    result: str  # committed | rolled_back | rejected | timeout
    version: str
    reason: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    boots: int = 0
    running: str = ""  # the version the device runs afterwards

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


class OtaService:
    """Build, sign, serve and deploy images to one device (the ``ota`` fixture)."""

    def __init__(self, dut: Any, artifacts: Any, artifacts_url: str, journal: Any, device: str) -> None:
        from harness.ota import KeyPair

        profile = dut.profile
        if not profile.ota_apply:
            raise CapabilityMissing(f"device profile {profile.name!r} has no ota_apply command")
        self.dut = dut
        self.artifacts = artifacts
        self.artifacts_url = artifacts_url.rstrip("/")
        self.journal = journal
        self.device = device
        self.key = KeyPair.ephemeral()
        self._outcome = re.compile(profile.ota_outcome, re.MULTILINE)
        self._phase = re.compile(profile.ota_phase)
        self._counter = 0
        self._provisioned = False

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

        if security_counter is None:  # one above any counter this run has used: never a downgrade by accident
            security_counter = self._counter + 1
        self._counter = max(self._counter, security_counter)
        kwargs: dict[str, Any] = {"security_counter": security_counter, "variant": variant,
                                  "variant_param": variant_param}
        if size is not None:
            kwargs["size"] = size
        image = build_signed_image(version, self.key, **kwargs)
        return image if corrupt in ("none", "") else make_faulty(image, corrupt)

    def deploy(self, image: Any, *, expect: str | None = "committed", timeout: float = 300.0) -> OtaOutcome:
        """Serve ``image``, start the job, follow the console to the outcome; raise if it is not ``expect``."""
        return self.finish(self.start(image), expect=expect, timeout=timeout)

    def start(self, image: Any) -> OtaJob:
        """Serve ``image`` and send the job; returns at once (a test may cut power meanwhile)."""
        import hashlib

        if not self._provisioned:
            self.provision()
        manifest = image.manifest
        # The job names the file it serves: what an attacker who cannot sign could still get right.
        sha256 = hashlib.sha256(image.data).hexdigest()
        name = f"{self.device}-{manifest.version}-{sha256[:12]}.img"
        self.artifacts.publish(name, image.data)
        url = f"{self.artifacts_url}/{name}"
        job = OtaJob(manifest.version, url, sha256, len(image.data), self.dut.console.mark(), time.monotonic())
        self._record("job", job.version, url=url, size=job.size)
        self.dut.console.sendline(
            self.dut.profile.ota_apply.format(url=url, sha256=sha256, size=job.size, version=job.version)
        )
        return job

    def finish(self, job: OtaJob, *, expect: str | None = "committed", timeout: float = 300.0) -> OtaOutcome:
        """Follow ``job`` on the console to its outcome; raise DeviceError if it is not ``expect``."""
        try:
            m = self.dut.console.expect(self._outcome, timeout=timeout)
            result, reason = m.group("phase"), (m.groupdict().get("reason") or "")
        except ExpectTimeout:
            result, reason = "timeout", f"no outcome within {timeout:g}s"
        outcome = self._follow(job.mark, job.started, job.version, result, reason)
        if result in ("committed", "rolled_back") and not self.dut.is_responsive():
            self.dut.wait_ready(reason="ota")
        outcome.running = self._running_version()
        as_expected = expect is None or outcome.result == expect
        self.journal.record("ota.result", device=self.device, version=job.version, result=outcome.result,
                            expected=expect, as_expected=as_expected, duration=round(outcome.duration, 3),
                            timings=outcome.timings, running=outcome.running)
        if not as_expected:
            tail = " | ".join(outcome.lines[-8:])
            raise DeviceError(f"OTA of {job.version} ended {outcome.result!r}"
                              f"{f' ({outcome.reason})' if outcome.reason else ''}, expected {expect!r}; "
                              f"device runs {outcome.running or '?'}; last console lines: {tail}")
        return outcome

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

    def _running_version(self) -> str:
        try:
            return self.dut.version()
        except (DeviceError, ExpectTimeout):
            return ""

    def _record(self, phase: str, version: str, *, t: float | None = None, **fields: Any) -> None:
        self.journal.record("ota", t=t, device=self.device, phase=phase, version=version,
                            **{k: v for k, v in fields.items() if v is not None})
