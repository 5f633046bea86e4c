"""Job ids the device refused, so that a refused job redelivered later is refused again, never started.

A deployer takes ``rejected`` as final, but the job stays retained on the broker until it is cleared,
so the device may see it again once it is no longer busy. The last :data:`KEPT` refusals (job id and
reason, oldest first) live in a power-safe record pair (:mod:`harness.twin.records`, magic ``TWRF``)
in the boot-control pages between the boot-control record (first program unit) and the OTA job record
(upper half): copy 0 at byte ``program_unit`` of page 0, copy 1 at the same place in page 1. A
refusal is written once, when its id is first refused; hearing it again writes nothing. An id older
than the last :data:`KEPT` refusals is forgotten (and would be acted on if it came again). Layouts
whose pages leave less room keep as many of the newest as fit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from harness.twin.events import FlashWrite
from harness.twin.flash import Flash
from harness.twin.records import HEADER_SIZE, read_pair, write_pair

REFUSALS_MAGIC = b"TWRF"
KEPT = 4


@dataclass(frozen=True)
class Refusal:
    job_id: str
    reason: str  # as reported (one line of printable ASCII, see ota_record.clean_reason)


def _base(flash: Flash) -> int:
    return flash.layout.bootctl_offset + flash.layout.program_unit


def _room(flash: Flash) -> int:
    return flash.layout.page_size // 2 - flash.layout.program_unit - HEADER_SIZE


def _encode(refusals: list[Refusal]) -> bytes:
    return json.dumps([[r.job_id, r.reason] for r in refusals], separators=(",", ":")).encode()


def read_refusals(flash: Flash) -> list[Refusal]:
    """The remembered refusals, oldest first ([] in factory state, or both copies torn)."""
    stored = read_pair(flash, _base(flash), REFUSALS_MAGIC)
    if stored is None:
        return []
    try:
        values = json.loads(stored.payload)
        return [Refusal(str(job_id), str(reason)) for job_id, reason in values]
    except (ValueError, TypeError):
        return []


def remember(flash: Flash, refusals: list[Refusal], refusal: Refusal) -> tuple[list[Refusal], list[FlashWrite]]:
    """``refusals`` with ``refusal`` added last (the oldest dropped past KEPT, or past the room), and
    the writes that persist them; no writes when the layout has no room even for one."""
    kept = [*refusals, refusal][-KEPT:]
    while kept and len(_encode(kept)) > _room(flash):
        kept.pop(0)
    if not kept:
        return [refusal], []
    return kept, write_pair(flash, _base(flash), REFUSALS_MAGIC, _encode(kept))
