"""The device's OTA client (sans-IO): download into the inactive slot, verify, trial-boot, confirm or roll back.

One :class:`OtaAgent` per boot, owned by the core. A job -- a document on ``devices/<id>/ota/job``
(:mod:`harness.twin.ota_jobs`), or ``ota apply URL SHA256 SIZE VERSION`` on the console -- is persisted
first (:mod:`harness.twin.ota_record`); then the image is fetched with
:class:`~harness.twin.http_events.HttpGet` actions and written into the slot that is *not* running, one
page (4 KiB, i.e. 16 program units) at a time as soon as the page is complete, each page followed by a
checkpoint of the job record. A dropped connection resumes from the last checkpointed page with
``Range`` + ``If-Range: <etag>``; a 200 instead of the 206 (the image changed), or a 416, starts again
from byte 0. A power cut resumes the same way at the next boot. Failures retry after a back-off
(doubling from :data:`BACKOFF_MIN` to :data:`BACKOFF_MAX`, or the server's ``Retry-After``), at most
:data:`MAX_FAILURES` times in a row without progress.

When the last byte is written the slot is verified: the file's SHA-256 against the job, the image
header and payload hash, the size and version against the job, the Ed25519 signature against the
public key in the config store (``ota.pubkey``: 64 hex digits, provisioned at the factory), and the
security counter against the boot-control record's minimum (no downgrade). A good image is armed:
job record ``trial`` first, then the boot-control record gets ``trial_slot``/``trial_attempts``/
``confirmed=0`` (the arm point), then a reboot. The trial boot confirms itself when the health checks
(:mod:`harness.twin.trial`) pass: boot control ``active_slot=<new>``, ``confirmed=1``, security
counter raised (the commit point), then the job record ``committed``. The bootloader rolls back after
``trial_attempts`` unconfirmed boots; the old application then finds the ``trial`` job record and
reports ``rolled_back``. Every write is ordered so that a power cut between any two program units
leaves a bootable device whose job record tells the truth (``tests/twin/test_ota_cuts.py`` proves it
for every cut point).

Every report goes to the console, to the runtime (:class:`OtaStatus`) and, through the MQTT session's
outbox, to ``devices/<id>/ota/status`` with the job's id (the outbox survives a software reset, so the
``rebooting`` report and whatever was queued offline go out from the next boot). A job id the record
already holds is not started again (a retained or redelivered job): the device re-reports where that
job stands. A job id it refused (:mod:`harness.twin.ota_refusals`) is refused again with the same
reason. Every boot re-reports the outcome of the last job over MQTT once, so a deployer that missed it
(a power cut before the PUBACK, a broker that lost the retained job) still hears it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from typing import ClassVar, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from harness.twin import trial
from harness.twin.bootloader import check_slot
from harness.twin.events import Action
from harness.twin.firmware import Firmware
from harness.twin.flash import other_slot
from harness.twin.http_events import (
    HttpCancel,
    HttpChunk,
    HttpDone,
    HttpEvent,
    HttpFailed,
    HttpGet,
    HttpResponse,
    OtaStatus,
)
from harness.twin.image import HEADER_SIZE, SIGNATURE_SIZE, ImageFault, parse_image
from harness.twin.ota_jobs import URL_RULE, URL_TEXT, VERSION, BadJob, encode_status, parse_job
from harness.twin.ota_jobs import status_topic as ota_status_topic
from harness.twin.ota_record import (
    COMMITTED,
    DOWNLOADING,
    FAILED,
    MAX_URL,
    OUTCOMES,
    REJECTED,
    ROLLED_BACK,
    TRIAL,
    OtaJob,
    clean_reason,
    fits,
    largest,
    read_job,
    room,
    usable_etag,
    write_job,
)
from harness.twin.ota_refusals import Refusal, read_refusals, remember
from harness.twin.records import write_bootctl

TRIAL_ATTEMPTS = 3  # unconfirmed trial boots before the bootloader rolls back
MAX_FAILURES = 8  # failed requests in a row without a new page before the job fails
MAX_RESTARTS = 4  # restarts from byte 0 (image changed, 416) before the job fails
MAX_REARM = 2  # re-arms of a trial whose boot-control write a power cut beat
BACKOFF_MIN = 0.25
BACKOFF_MAX = 8.0
RETRY_AFTER_MAX = 60.0
PUBKEY_KEY = "ota.pubkey"
RETRY_TIMER = "ota.retry"
HEALTH_TIMER = "ota.health"
WATCHDOG_TIMER = "ota.watchdog"
TIMERS = (RETRY_TIMER, HEALTH_TIMER, WATCHDOG_TIMER)


class OtaFirmware(Firmware, Protocol):
    """The firmware as the ``ota`` shell command sees it: with this boot's OTA agent."""

    ota: OtaAgent | None


class OtaAgent:
    """The OTA client and trial-boot logic of one boot of ``device``."""

    #: A deliberately UNSAFE build: download over the *running* slot. Only the power-cut sweep sets it,
    #: to prove that the sweep catches an unsafe client.
    unsafe_write_active: ClassVar[bool] = False

    def __init__(self, device: Firmware) -> None:
        self.device = device
        self.job: OtaJob | None = read_job(device.flash)
        self.refusals: list[Refusal] = read_refusals(device.flash)
        self._ref = 0
        self.active: int | None = None  # the request in flight
        self.pos = 0  # bytes of the file persisted in the slot (whole pages, or the whole file)
        self.buffer = bytearray()  # received bytes of the page being assembled
        self.skip = 0  # bytes still to discard (a 200 with the same ETag: the server ignored Range)
        self.failures = 0
        self.restarts = 0
        self.decile = -1
        self.last_error = ""
        self.health_since = 0.0
        self.retry_pending = False

    # ------------------------------------------------------------------ boot hooks (called by the core)

    @property
    def trial_boot(self) -> bool:
        """This boot is an unconfirmed trial of the running slot (whoever armed it)."""
        bc = self.device.bootctl
        return bc.trial_slot is not None and bc.trial_slot == self.device.slot and not bc.confirmed

    @property
    def our_trial(self) -> bool:
        """A trial boot of the image this client verified and armed: the only kind the app confirms.

        A trial armed by anything else (a bench tool writing boot control) is left to the bootloader,
        which rolls it back after its attempts.
        """
        job, image = self.job, self.device.image
        return (
            self.trial_boot
            and job is not None
            and image is not None
            and job.phase == TRIAL
            and job.slot == self.device.slot
            and job.version == image.version
        )

    def app_start(self, now: float, out: list[Action]) -> bool:
        """The bootloader hands over. False: the application crashed (the watchdog timer is running)."""
        device = self.device
        image = device.image
        assert image is not None
        if self.our_trial:
            attempt = TRIAL_ATTEMPTS - device.bootctl.trial_attempts
            device.say(out, f"OTA trial {image.version} (boot {attempt} of {TRIAL_ATTEMPTS})")
            self._publish(out, TRIAL, now, percent=100, version=image.version)
        if trial.crashes_on_boot(image):
            device.say(out, "FATAL application fault at startup (crash-on-boot image); watchdog reset pending")
            device.start_timer(out, WATCHDOG_TIMER, trial.WATCHDOG_TIMEOUT)
            return False
        return True

    def app_started(self, now: float, out: list[Action]) -> None:
        """The prompt is up: start the health checks of a trial, pick up a persisted job, or report the
        outcome of the last job again (MQTT only: its report may never have reached the broker)."""
        if self.trial_boot:
            if self.our_trial:
                self.health_since = now
                self.device.start_timer(out, HEALTH_TIMER, trial.HEALTH_POLL)
            return
        job = self.job
        if job is None:
            return
        if job.phase == TRIAL:
            self._reconcile(job, now, out)
        elif job.phase in OUTCOMES and job.job_id:
            self._report_current(now, out)
        elif job.phase == DOWNLOADING:
            self.pos = min(job.pages * self.page_size, job.size)
            self.decile = self.percent // 10
            self.device.say(out, f"OTA resuming {job.version} at {self.percent}%")
            self._publish(out, DOWNLOADING, now, percent=self.percent, version=job.version)
            if self.pos >= job.size:
                self._verify(now, out)  # the power went after the last page's checkpoint
            else:
                self._next(now, out)

    def on_timer(self, name: str, now: float, out: list[Action]) -> None:
        if name == RETRY_TIMER:
            self.retry_pending = False
            self._request(out)
        elif name == HEALTH_TIMER:
            self._health(now, out)
        elif name == WATCHDOG_TIMER:
            self.device.say(out, "WATCHDOG reset")
            self.device.reboot(out, "watchdog", now)

    # ------------------------------------------------------------------ console commands

    def on_job_message(self, payload: bytes, now: float, out: list[Action]) -> None:
        """A document on the job topic: start it, re-report a job already known, or refuse it."""
        request = parse_job(payload)
        if request is None:
            return  # the deployer cleared its retained job
        if isinstance(request, BadJob):
            self._refuse(request.job_id, "", request.reason, now, out)
            return
        job = self.job
        if job is not None and job.job_id == request.job_id:
            self._report_current(now, out)
            return
        if any(r.job_id == request.job_id for r in self.refusals):
            self._refuse(request.job_id, request.version, "", now, out)  # refused once, refused for good
            return
        self.device.say(out, f"OTA job {request.job_id}: {request.version} from {request.url}")
        problem = self.apply(request.url, request.sha256, request.size, request.version, now, out,
                             job_id=request.job_id, signature=request.signature)  # fmt: skip
        if problem is not None:
            self._refuse(request.job_id, request.version, problem, now, out)

    def apply(self, url: str, sha256: str, size: int, version: str, now: float, out: list[Action], *,
              job_id: str = "", signature: str = "") -> str | None:  # fmt: skip
        """Start a job; None when it started, else the error line (without ``ERR ``)."""
        device = self.device
        if self.trial_boot:
            return f"ota busy: trial boot of {device.image.version if device.image else '?'} is not confirmed yet"
        if self.active is not None or self.retry_pending:
            return f"ota busy: downloading {self.job.version if self.job else '?'}"
        if not url.startswith("http://") or len(url) > MAX_URL:
            return f"ota apply expects an http:// URL of at most {MAX_URL} characters (got {url[:80]!r})"
        if not URL_TEXT.fullmatch(url):
            return f"ota apply expects a URL of {URL_RULE} (got {url[:60]!r})"
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256.lower()):
            return f"ota apply expects the image's SHA-256 as 64 hex digits (got {sha256!r})"
        target = device.slot if self.unsafe_write_active else other_slot(device.slot)
        if size > device.layout.slot_size:  # refused before a byte is asked for
            return f"ota apply: image of {size} bytes does not fit slot {target} ({device.layout.slot_size} bytes)"
        if size <= HEADER_SIZE:
            return f"ota apply expects a size {HEADER_SIZE + 1}..{device.layout.slot_size} bytes (got {size})"
        if not VERSION.fullmatch(version):
            return f"ota apply expects a version of at most 32 characters like 2.0.0 (got {version[:80]!r})"
        job = OtaJob(version, url, size, sha256.lower(), slot=target, job_id=job_id, signature=signature)
        if not fits(device.flash, job):
            most = max(0, room(device.flash) - (len(largest(job).encode()) - len(url)))
            return f"ota apply: url too long for the job record ({len(url)} characters; at most {most} fit here)"
        self.job = job
        out.extend(write_job(device.flash, self.job))
        self.pos, self.failures, self.restarts, self.decile = 0, 0, 0, 0
        self._report(out, DOWNLOADING, now)
        self._request(out)
        return None

    def describe(self) -> dict[str, object]:
        """What ``ota status`` prints: the job's phase, version, progress and last outcome reason."""
        job = self.job
        if job is None:
            return {"phase": "idle"}
        phase = job.phase
        if self.trial_boot:
            phase = TRIAL
        return {
            "phase": phase,
            "job_id": job.job_id,
            "version": job.version,
            "percent": self.percent if job.phase == DOWNLOADING else 100,
            "slot": job.slot,
            "reason": job.reason,
            "active": self.active is not None,
            "failures": self.failures,
            "restarts": self.restarts,
            "last_error": self.last_error,
        }

    # ------------------------------------------------------------------ HTTP events

    def on_http(self, event: HttpEvent, now: float, out: list[Action]) -> None:
        if event.ref != self.active or self.job is None:
            return  # a request abandoned earlier: stale
        if isinstance(event, HttpResponse):
            self._response(event, now, out)
        elif isinstance(event, HttpChunk):
            self._chunk(event.data, now, out)
        elif isinstance(event, HttpDone):
            self.active = None
            if self.pos + len(self.buffer) < self.job.size:
                self._failed(f"body ended at byte {self.pos + len(self.buffer)} of {self.job.size}", None, now, out)
        elif isinstance(event, HttpFailed):
            self.active = None
            self._failed(event.reason, None, now, out)

    def _response(self, event: HttpResponse, now: float, out: list[Action]) -> None:
        job = self.job
        assert job is not None
        slot_size = self.device.layout.slot_size
        if event.total is not None and event.total > slot_size and event.status in (200, 206):
            self._cancel(out)  # before the first body byte: the server's file could never fit
            self._finish(REJECTED, f"size (server has {event.total} bytes; slot {job.slot} holds {slot_size})", now,
                         out)  # fmt: skip
            return
        if event.total is not None and event.total != job.size and event.status in (200, 206):
            self._cancel(out)
            self._finish(REJECTED, f"size (server has {event.total} bytes, job says {job.size})", now, out)
            return
        if event.status == 206:
            if event.start != self.pos:
                self._cancel(out)
                self._failed(f"206 starts at byte {event.start}, asked for {self.pos}", None, now, out)
        elif event.status == 200:
            etag = usable_etag(event.etag)  # one the record cannot hold is no proof of anything
            if self.pos and etag is not None and etag == job.etag:
                self.skip = self.pos  # the server ignored Range but the file is the same: skip ahead
            elif self.pos:
                self._restart(f"image changed on the server (ETag {job.etag} -> {etag})", now, out)
            if self.job is not None and self.job.phase == DOWNLOADING and self.job.etag != etag:
                self.job = self.job.moved(etag=etag)  # persisted with the next page checkpoint
        elif event.status == 416 and self.pos:
            self._cancel(out)
            self._restart("416: the image shrank on the server", now, out)
            self._next(now, out)
        elif event.status >= 500:
            self._cancel(out)
            self._failed(f"http-{event.status}", event.retry_after, now, out)
        else:
            self._cancel(out)
            self._finish(FAILED, f"http-{event.status}", now, out)

    def _chunk(self, data: bytes, now: float, out: list[Action]) -> None:
        job = self.job
        assert job is not None
        if self.skip:
            dropped = min(self.skip, len(data))
            self.skip -= dropped
            data = data[dropped:]
        self.buffer += data
        if self.pos + len(self.buffer) > job.size:
            self._cancel(out)
            self._finish(REJECTED, f"size (more than {job.size} bytes served)", now, out)
            return
        page = self.page_size
        while self.buffer and (len(self.buffer) >= page or self.pos + len(self.buffer) >= job.size):
            self._write_page(bytes(self.buffer[:page]), now, out)
            del self.buffer[:page]
            if self.pos >= job.size:
                break
        if self.pos >= job.size:
            self._cancel(out)
            self._verify(now, out)

    def _write_page(self, data: bytes, now: float, out: list[Action]) -> None:
        job = self.job
        assert job is not None
        device = self.device
        out.extend(device.flash.program(device.layout.slot_offset(job.slot) + self.pos, data))
        self.pos = min(self.pos + len(data), job.size)
        pages = -(-self.pos // self.page_size)
        self.job = job.moved(pages=pages)
        out.extend(write_job(device.flash, self.job))
        self.failures = 0
        decile = self.percent // 10
        if decile != self.decile and self.pos < job.size:
            self.decile = decile
            self._report(out, DOWNLOADING, now)

    # ------------------------------------------------------------------ requests, retries, restarts

    def _request(self, out: list[Action]) -> None:
        job = self.job
        assert job is not None
        self.buffer.clear()
        self.skip = 0
        if self.pos and job.etag is None:
            self.pos = 0  # nothing to prove the file is unchanged: start over
        self._ref += 1
        self.active = self._ref
        resume = self.pos > 0
        out.append(HttpGet(self._ref, job.url, self.pos if resume else 0, None, job.etag if resume else None))

    def _next(self, now: float, out: list[Action]) -> None:
        if self.job is not None and self.job.phase == DOWNLOADING and self.active is None:
            self._request(out)

    def _cancel(self, out: list[Action]) -> None:
        if self.active is not None:
            out.append(HttpCancel(self.active))
            self.active = None

    def _restart(self, why: str, now: float, out: list[Action]) -> None:
        self.restarts += 1
        self.device.say(out, f"OTA restarting from 0: {why}")
        if self.restarts > MAX_RESTARTS:
            self._cancel(out)
            self._finish(FAILED, f"restarted {MAX_RESTARTS} times ({why})", now, out)
            return
        self.pos, self.decile = 0, -1
        self.buffer.clear()

    def _failed(self, why: str, retry_after: float | None, now: float, out: list[Action]) -> None:
        self.failures += 1
        self.last_error = why
        self.buffer.clear()
        if self.failures > MAX_FAILURES:
            self._finish(FAILED, f"{why} ({MAX_FAILURES} retries)", now, out)
            return
        delay = min(BACKOFF_MAX, BACKOFF_MIN * 2 ** (self.failures - 1))
        if retry_after is not None:
            delay = min(RETRY_AFTER_MAX, max(delay, retry_after))
        self.device.say(out, f"OTA retry {self.failures}/{MAX_FAILURES} in {delay:g}s: {why}")
        self.device.start_timer(out, RETRY_TIMER, delay)
        self.retry_pending = True

    # ------------------------------------------------------------------ verify, arm, confirm, reconcile

    def _verify(self, now: float, out: list[Action]) -> None:
        job = self.job
        assert job is not None
        device = self.device
        self._report(out, "verifying", now, percent=100)
        problem = self._problem(job)
        if problem is not None:
            self._finish(REJECTED, problem, now, out)
            return
        self._arm(job.moved(phase=TRIAL, armed_boot=device.bootctl.boot_count, reason=""), now, out)

    def _problem(self, job: OtaJob) -> str | None:
        """Why the downloaded file must not be booted (a short reason first), or None."""
        device = self.device
        data = device.flash.view(device.layout.slot_offset(job.slot), job.size)
        if hashlib.sha256(data).hexdigest() != job.sha256:
            return "hash"
        info = parse_image(data)
        if isinstance(info, ImageFault):
            return f"image ({info.reason})"
        if info.total_size != job.size:
            return f"size (image is {info.total_size} bytes, file {job.size})"
        if info.version != job.version:
            return f"version (image says {info.version}, job {job.version})"
        key = self.public_key()
        if key is None:
            return f"no-key (config {PUBKEY_KEY} must hold the 64-hex-digit Ed25519 public key)"
        if info.signature is None:
            return "unsigned"
        if job.signature and job.signature != info.signature.hex():
            return "signature-mismatch (the image is not signed with the signature the job names)"
        signed = data[: HEADER_SIZE + info.payload_size]
        assert len(info.signature) == SIGNATURE_SIZE
        try:
            key.verify(info.signature, bytes(signed))
        except InvalidSignature:
            return "bad-signature"
        minimum = device.bootctl.security_counter
        if info.security_counter < minimum:
            return f"downgrade (security counter {info.security_counter} below {minimum})"
        return None

    def public_key(self) -> Ed25519PublicKey | None:
        text = self.device.config.get(PUBKEY_KEY, "")
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            return None
        return Ed25519PublicKey.from_public_bytes(raw) if len(raw) == 32 else None

    def _arm(self, job: OtaJob, now: float, out: list[Action]) -> None:
        device = self.device
        self.job = job
        out.extend(write_job(device.flash, job))
        record = replace(device.bootctl, trial_slot=job.slot, trial_attempts=TRIAL_ATTEMPTS, confirmed=False)
        out.extend(write_bootctl(device.flash, record))  # the arm point
        device.bootctl = record
        self._report(out, "rebooting", now, percent=100)
        device.reboot(out, "software", now)

    def _health(self, now: float, out: list[Action]) -> None:
        device = self.device
        reasons = trial.failing(device, now)
        if not reasons:
            self._confirm(now, out)
        elif now - self.health_since >= trial.health_window(device.config):
            device.say(out, f"OTA health check failed: {reasons[0]}")
            device.reboot(out, "watchdog", now)
        else:
            device.start_timer(out, HEALTH_TIMER, trial.HEALTH_POLL)

    def _confirm(self, now: float, out: list[Action]) -> None:
        device = self.device
        image = device.image
        assert image is not None
        bc = device.bootctl
        record = replace(
            bc,
            active_slot=device.slot,
            trial_slot=None,
            trial_attempts=0,
            confirmed=True,
            security_counter=max(bc.security_counter, image.security_counter),
        )
        out.extend(write_bootctl(device.flash, record))  # the commit point
        device.bootctl = record
        self._finish(COMMITTED, "", now, out, version=image.version)

    def _reconcile(self, job: OtaJob, now: float, out: list[Action]) -> None:
        """A ``trial`` job record on a boot that is not a trial: committed, never started, or rolled back."""
        device = self.device
        bc = device.bootctl
        image = device.image
        assert image is not None
        if device.slot == job.slot and image.version == job.version and bc.confirmed:
            self._finish(COMMITTED, "", now, out)  # a power cut came between the commit point and the record
            return
        trial_image = check_slot(device.flash, job.slot, bc.security_counter)
        if isinstance(trial_image, ImageFault):
            self._finish(ROLLED_BACK, f"trial-image-invalid ({trial_image.reason})", now, out)
        elif bc.boot_count == job.armed_boot + 1 and job.rearmed < MAX_REARM:
            # The boot after arming did not run the trial: the power cut beat the boot-control write.
            device.say(out, f"OTA re-arming the trial of {job.version}")
            self._arm(job.moved(armed_boot=bc.boot_count, rearmed=job.rearmed + 1), now, out)
        else:
            self._finish(ROLLED_BACK, f"not-confirmed after {TRIAL_ATTEMPTS} trial boots", now, out)

    # ------------------------------------------------------------------ outcomes and reports

    def _finish(self, phase: str, reason: str, now: float, out: list[Action], version: str | None = None) -> None:
        job = self.job
        assert job is not None
        reason = clean_reason(reason)
        self.job = job.moved(phase=phase, reason=reason)
        out.extend(write_job(self.device.flash, self.job))
        self.device.cancel_timer(out, RETRY_TIMER)
        self.retry_pending = False
        self._report(out, phase, now, reason=reason, version=version, percent=100 if phase == COMMITTED else None)

    def _refuse(self, job_id: str, version: str, reason: str, now: float, out: list[Action]) -> None:
        """A job that never started (malformed, busy, bad fields): say so, and remember its id so that it
        is refused again with the same reason (``reason=""``: it was refused before); the job record is
        untouched."""
        known = next((r for r in self.refusals if job_id and r.job_id == job_id), None)
        if known is not None:
            reason = known.reason
        else:
            reason = clean_reason(reason)
            if job_id and (self.job is None or self.job.job_id != job_id):  # not the job the record holds
                self.refusals, writes = remember(self.device.flash, self.refusals, Refusal(job_id, reason))
                out.extend(writes)
        self.device.say(out, f"OTA job {job_id or '?'} refused: {reason}")
        self._send(out, job_id, REJECTED, version, 0, reason, now)

    def _report_current(self, now: float, out: list[Action]) -> None:
        """Where the job in the record stands, for a deployer that asks again (the same job id)."""
        job = self.job
        assert job is not None
        state = self.describe()
        self._send(out, job.job_id, str(state["phase"]), job.version, int(str(state["percent"])), job.reason, now)

    def _report(self, out: list[Action], phase: str, now: float, *, percent: int | None = None, reason: str = "",
                version: str | None = None) -> None:  # fmt: skip
        """One step of the job: a console line, then the status for the runtime and the broker."""
        job = self.job
        assert job is not None
        version = version or job.version
        pct = self.percent if percent is None else percent
        if phase == DOWNLOADING:
            line = f"OTA downloading {pct}%"
        elif phase == COMMITTED:
            line = f"OTA committed {version}"
        elif phase in (ROLLED_BACK, REJECTED, FAILED):
            line = f"OTA {phase} reason={reason}"
        else:
            line = f"OTA {phase}"
        self.device.say(out, line)
        self._publish(out, phase, now, percent=pct, reason=reason, version=version)

    def _publish(self, out: list[Action], phase: str, now: float, *, percent: int, version: str,
                 reason: str = "") -> None:  # fmt: skip
        job = self.job
        assert job is not None
        out.append(OtaStatus(phase, version, percent, reason))
        self._send(out, job.job_id, phase, version, percent, reason, now)

    def _send(self, out: list[Action], job_id: str, phase: str, version: str, percent: int, reason: str,
              now: float) -> None:  # fmt: skip
        device = self.device
        session = device.session
        if session is None:
            return
        fw = device.image.version if device.image is not None else ""
        payload = encode_status(job_id, phase, version, percent, reason, fw=fw, boot_id=device.boot_id,
                                ts=now + device.wall_offset)  # fmt: skip
        session.send(ota_status_topic(device.device_id), payload, out, coalesce=phase == DOWNLOADING)

    @property
    def page_size(self) -> int:
        return self.device.layout.page_size

    @property
    def percent(self) -> int:
        job = self.job
        if job is None or job.size == 0:
            return 0
        return min(100, self.pos * 100 // job.size)


def status_line(agent: OtaAgent) -> str:
    return json.dumps(agent.describe(), separators=(",", ":"))


OTA_USAGE = "ota expects: apply URL SHA256 SIZE VERSION | status"


def command(device: OtaFirmware, args: str, now: float, out: list[Action]) -> None:
    """The ``ota`` shell command: ``ota apply URL SHA256 SIZE VERSION`` or ``ota status``."""
    agent = device.ota
    if agent is None:
        return
    verb, *rest = args.split() or [""]
    if verb == "status" and not rest:
        device.say(out, status_line(agent))
    elif verb == "apply" and len(rest) == 4 and rest[2].isdigit():
        url, sha256, size, version = rest
        problem = agent.apply(url, sha256, int(size), version, now, out)
        if problem is not None:
            device.error(out, problem)
    else:
        device.error(out, OTA_USAGE)
