"""The OTA job record: what is being installed, how far the download got, and how the last job ended.

A power-safe record pair (:mod:`harness.twin.records`, magic ``TWOT``) living in the *upper half* of
the two boot-control pages: copy 0 at byte ``page_size // 2`` of page 0, copy 1 at the same place in
page 1. The boot-control record only uses the first program unit of each page, so a torn job write
can never touch boot control, and the flash layout stays as it was. Payload: compact JSON.

Phases: ``downloading`` (``pages`` fully written and checkpointed into ``slot``, with the ETag they
came from), ``trial`` (verified, armed for a trial boot at boot count ``armed_boot``), and the
outcomes ``committed``, ``rolled_back``, ``rejected``, ``failed``. An outcome stays until the next job.

The record must always fit its half page, so nothing unbounded goes in: a job is only started when
its record would fit with the longest reason and ETag it may come to hold (:func:`fits`); reasons are
cut to :data:`MAX_REASON` characters of printable ASCII (:func:`clean_reason`); an ETag that is not
1-:data:`MAX_ETAG` characters of printable ASCII is not kept (:func:`usable_etag`), so a download
interrupted under it resumes from byte 0 instead of with ``If-Range``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace

from harness.twin.events import FlashWrite
from harness.twin.flash import SLOTS, Flash
from harness.twin.records import HEADER_SIZE, read_pair, write_pair

OTA_MAGIC = b"TWOT"
DOWNLOADING = "downloading"
TRIAL = "trial"
COMMITTED = "committed"
ROLLED_BACK = "rolled_back"
REJECTED = "rejected"
FAILED = "failed"
PHASES = (DOWNLOADING, TRIAL, COMMITTED, ROLLED_BACK, REJECTED, FAILED)
OUTCOMES = (COMMITTED, ROLLED_BACK, REJECTED, FAILED)


@dataclass(frozen=True)
class OtaJob:
    """One update job and its persisted progress (see the module docstring for the phases)."""

    version: str
    url: str
    size: int
    sha256: str  # hex digest of the whole image file
    phase: str = DOWNLOADING
    slot: str = "B"  # where the image is written
    etag: str | None = None
    pages: int = 0  # pages fully written (and checkpointed) into ``slot``
    armed_boot: int = 0  # boot count of the boot that armed the trial
    rearmed: int = 0  # times a trial was re-armed because a power cut beat the boot-control write
    reason: str = ""
    job_id: str = ""  # the deployment's id (jobs over MQTT); empty for a console job
    signature: str = ""  # hex Ed25519 signature the job names; empty: the job names none

    def encode(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, payload: bytes) -> OtaJob | None:
        try:
            values = json.loads(payload)
            job = cls(**values)
        except (ValueError, TypeError):
            return None
        if job.phase not in PHASES or job.slot not in SLOTS or job.size < 0 or job.pages < 0:
            return None
        return job

    def moved(self, **changes: object) -> OtaJob:
        return replace(self, **changes)  # type: ignore[arg-type]


def _base(flash: Flash) -> int:
    return flash.layout.bootctl_offset + flash.layout.page_size // 2


def read_job(flash: Flash) -> OtaJob | None:
    """The newest valid job record, or None (factory state, or both copies torn)."""
    stored = read_pair(flash, _base(flash), OTA_MAGIC)
    return None if stored is None else OtaJob.decode(stored.payload)


def room(flash: Flash) -> int:
    """Bytes of payload a job record can have in this layout."""
    return flash.layout.page_size // 2 - HEADER_SIZE


def write_job(flash: Flash, job: OtaJob) -> list[FlashWrite]:
    """Persist ``job`` as the next record of the pair; one FlashWrite per program unit.

    A ValueError here is a bug: :func:`fits` admitted a job whose record later grew past its room.
    """
    payload = job.encode()
    if len(payload) > room(flash):
        raise ValueError(f"OTA job record of {len(payload)} bytes does not fit {room(flash)} bytes")
    return write_pair(flash, _base(flash), OTA_MAGIC, payload)


#: Longest URL ``ota apply`` accepts. With the default 4 KiB pages every job within the limits fits its
#: record (a 64-character job id, a 128-digit signature, a 32-character version, a reason of MAX_REASON
#: characters and an ETag of MAX_ETAG, all of them quotes, which JSON doubles); smaller pages fit less.
MAX_URL = 1024
MAX_REASON = 160
MAX_ETAG = 64
_BIGGEST = 2**32 - 1


def largest(job: OtaJob) -> OtaJob:
    """``job`` with the longest reason, ETag, phase and counters it may come to hold."""
    return job.moved(phase=ROLLED_BACK, etag='"' * MAX_ETAG, reason='"' * MAX_REASON, pages=_BIGGEST,
                     armed_boot=_BIGGEST, rearmed=_BIGGEST)  # fmt: skip


def fits(flash: Flash, job: OtaJob) -> bool:
    """Whether ``job``'s record fits its room whatever it comes to hold."""
    return len(largest(job).encode()) <= room(flash)


def clean_reason(text: str) -> str:
    """One line of printable ASCII (anything else becomes ``?``), at most :data:`MAX_REASON` characters."""
    return "".join(c if " " <= c <= "~" else "?" for c in text[:MAX_REASON])


def usable_etag(etag: str | None) -> str | None:
    """``etag`` if the record can hold it (1-MAX_ETAG characters of printable ASCII), else None."""
    if etag is None or not 0 < len(etag) <= MAX_ETAG or not all("!" <= c <= "~" for c in etag):
        return None
    return etag
