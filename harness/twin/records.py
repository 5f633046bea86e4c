"""Power-safe records: two copies, a sequence number and a CRC32, newest valid copy wins.

A record occupies one flash page per copy::

    magic(4) format(2) reserved(2) seq(4) length(4) crc32(4) payload(length)

``crc32`` covers the 16 header bytes before it plus the payload. A write goes to the copy that
does *not* hold the newest valid record, with ``seq + 1``; a write torn by a power cut leaves a
copy whose CRC fails, so readers fall back to the older copy. Two records use this scheme: the
boot-control record (:class:`BootControl`) and the config store (a JSON object).
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass

from harness.twin.events import FlashWrite
from harness.twin.flash import SLOTS, Flash

_HEADER = struct.Struct("<4sHHII")  # magic, format, reserved, seq, length (crc32 follows)
HEADER_SIZE = _HEADER.size + 4
FORMAT = 1
BOOTCTL_MAGIC = b"TWBC"
CONFIG_MAGIC = b"TWCF"


@dataclass(frozen=True)
class StoredRecord:
    """The newest valid copy found: payload, sequence number and which copy (0 or 1) held it."""

    payload: bytes
    seq: int
    copy: int


def encode_record(magic: bytes, seq: int, payload: bytes) -> bytes:
    head = _HEADER.pack(magic, FORMAT, 0, seq, len(payload))
    return head + struct.pack("<I", zlib.crc32(head + payload)) + payload


def decode_record(magic: bytes, raw: bytes) -> tuple[int, bytes] | None:
    """``(seq, payload)`` if ``raw`` starts with a valid record of this kind, else None."""
    if len(raw) < HEADER_SIZE:
        return None
    found_magic, fmt, _reserved, seq, length = _HEADER.unpack_from(raw)
    if found_magic != magic or fmt != FORMAT or HEADER_SIZE + length > len(raw):
        return None
    (crc,) = struct.unpack_from("<I", raw, _HEADER.size)
    payload = raw[HEADER_SIZE : HEADER_SIZE + length]
    if zlib.crc32(raw[: _HEADER.size] + payload) != crc:
        return None
    return seq, payload


def read_pair(flash: Flash, base: int, magic: bytes) -> StoredRecord | None:
    """The newest valid copy of the record pair at ``base`` (None if neither copy is valid)."""
    page = flash.layout.page_size
    best: StoredRecord | None = None
    for copy in (0, 1):
        decoded = decode_record(magic, flash.read(base + copy * page, page))
        if decoded is not None and (best is None or decoded[0] > best.seq):
            best = StoredRecord(decoded[1], decoded[0], copy)
    return best


def write_pair(flash: Flash, base: int, magic: bytes, payload: bytes) -> list[FlashWrite]:
    """Write ``payload`` as the next record of the pair at ``base``; return the unit writes."""
    page = flash.layout.page_size
    if HEADER_SIZE + len(payload) > page:
        raise ValueError(f"record payload of {len(payload)} bytes does not fit a {page}-byte page")
    current = read_pair(flash, base, magic)
    copy = 0 if current is None else 1 - current.copy
    seq = 1 if current is None else current.seq + 1
    return flash.program(base + copy * page, encode_record(magic, seq, payload))


# --------------------------------------------------------------------------- boot control

_BOOTCTL = struct.Struct("<BBBBII")
_NO_SLOT = 0xFF


@dataclass(frozen=True)
class BootControl:
    """What the bootloader persists: active slot, OTA trial state, boot count, anti-rollback counter."""

    active_slot: str = "A"
    trial_slot: str | None = None
    trial_attempts: int = 0
    confirmed: bool = True
    boot_count: int = 0
    security_counter: int = 0

    def encode(self) -> bytes:
        trial = _NO_SLOT if self.trial_slot is None else SLOTS.index(self.trial_slot)
        return _BOOTCTL.pack(
            SLOTS.index(self.active_slot),
            trial,
            self.trial_attempts,
            int(self.confirmed),
            self.boot_count,
            self.security_counter,
        )

    @classmethod
    def decode(cls, payload: bytes) -> BootControl | None:
        if len(payload) != _BOOTCTL.size:
            return None
        active, trial, attempts, confirmed, boots, counter = _BOOTCTL.unpack(payload)
        if active >= len(SLOTS) or (trial != _NO_SLOT and trial >= len(SLOTS)):
            return None
        return cls(
            active_slot=SLOTS[active],
            trial_slot=None if trial == _NO_SLOT else SLOTS[trial],
            trial_attempts=attempts,
            confirmed=bool(confirmed),
            boot_count=boots,
            security_counter=counter,
        )


def read_bootctl(flash: Flash) -> BootControl | None:
    stored = read_pair(flash, flash.layout.bootctl_offset, BOOTCTL_MAGIC)
    return None if stored is None else BootControl.decode(stored.payload)


def write_bootctl(flash: Flash, record: BootControl) -> list[FlashWrite]:
    return write_pair(flash, flash.layout.bootctl_offset, BOOTCTL_MAGIC, record.encode())


# --------------------------------------------------------------------------- config store

#: Largest serialized config (bytes of compact JSON) the store accepts.
CONFIG_LIMIT = 2048


def encode_config(values: dict[str, str]) -> bytes:
    return json.dumps(values, sort_keys=True, separators=(",", ":")).encode()


def read_config(flash: Flash) -> dict[str, str]:
    """The persisted config; an empty dict if no valid copy exists (factory state)."""
    stored = read_pair(flash, flash.layout.config_offset, CONFIG_MAGIC)
    if stored is None:
        return {}
    try:
        values = json.loads(stored.payload)
    except ValueError:
        return {}
    if not isinstance(values, dict):
        return {}
    return {str(k): str(v) for k, v in values.items()}


def write_config(flash: Flash, values: dict[str, str]) -> list[FlashWrite]:
    payload = encode_config(values)
    if len(payload) > CONFIG_LIMIT:
        raise ValueError(f"config is {len(payload)} bytes serialized; the limit is {CONFIG_LIMIT}")
    return write_pair(flash, flash.layout.config_offset, CONFIG_MAGIC, payload)
