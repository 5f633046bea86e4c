"""The bootloader's decision: which slot runs, what it logs, and the boot-control record to persist.

Pure function of the flash contents and the reset cause; the core turns the decision into
console output, flash writes and the boot timer.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from harness.twin.flash import Flash, other_slot
from harness.twin.image import ImageFault, ImageInfo, parse_image
from harness.twin.records import BootControl, read_bootctl


@dataclass(frozen=True)
class BootDecision:
    """``slot``/``image`` are None when nothing is bootable; ``record`` is then None too."""

    slot: str | None
    image: ImageInfo | None
    record: BootControl | None
    log: list[str] = field(default_factory=list)


def check_slot(flash: Flash, slot: str, min_counter: int) -> ImageInfo | ImageFault:
    """Validate the image in ``slot``: header, payload hash, anti-rollback counter."""
    layout = flash.layout
    info = parse_image(flash.view(layout.slot_offset(slot), layout.slot_size))
    if isinstance(info, ImageInfo) and info.security_counter < min_counter:
        return ImageFault(f"security counter {info.security_counter} below minimum {min_counter} (rollback refused)")
    return info


def decide_boot(flash: Flash, reset_cause: str) -> BootDecision:
    """Read boot control, pick and validate a slot (falling back to the other), bump the boot count."""
    log: list[str] = []
    record = read_bootctl(flash)
    if record is None:
        log.append("BOOT boot-control record invalid in both copies; using defaults")
        record = BootControl()
    trial = False
    first = record.active_slot
    if record.trial_slot is not None and not record.confirmed:
        if record.trial_attempts > 0:
            first, trial = record.trial_slot, True
            record = replace(record, trial_attempts=record.trial_attempts - 1)
            log.append(f"BOOT trial boot of slot {first} ({record.trial_attempts} attempts left)")
        else:
            log.append(
                f"BOOT trial of slot {record.trial_slot} never confirmed; rolling back to slot {record.active_slot}"
            )
            record = replace(record, trial_slot=None, confirmed=True)
    faults: dict[str, str] = {}
    chosen: tuple[str, ImageInfo] | None = None
    for slot in (first, other_slot(first)):
        result = check_slot(flash, slot, record.security_counter)
        if isinstance(result, ImageInfo):
            chosen = (slot, result)
            break
        faults[slot] = result.reason
        if slot == first:
            log.append(f"BOOT slot {slot} invalid: {result.reason}; trying slot {other_slot(slot)}")
    if chosen is None:
        detail = "; ".join(f"slot {s}: {reason}" for s, reason in sorted(faults.items()))
        log.append(f"BOOT no bootable image ({detail}); halting")
        return BootDecision(None, None, None, log)
    slot, image = chosen
    if slot != first:
        log.append(f"BOOT falling back to slot {slot}")
        record = replace(record, active_slot=slot, trial_slot=None, trial_attempts=0, confirmed=True)
        trial = False
    counter = record.security_counter if trial else max(record.security_counter, image.security_counter)
    record = replace(record, boot_count=record.boot_count + 1, security_counter=counter)
    log.append(f"BOOT slot={slot} fw={image.version} boot_count={record.boot_count} reset_cause={reset_cause}")
    return BootDecision(slot, image, record, log)
