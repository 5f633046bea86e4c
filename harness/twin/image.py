"""Firmware image format: a 256-byte header, the payload, an optional Ed25519 signature trailer.

Header (little-endian)::

    offset size  field
    0      4     magic b"TWIM"
    4      2     header version (1)
    6      2     header size (256)
    8      4     flags (bit 0: signature trailer present)
    12     4     security counter (monotonic, anti-rollback)
    16     4     payload size
    20     2     variant id (see :class:`Variant`)
    22     2     reserved (0)
    24     4     variant parameter (meaning depends on the variant)
    28     32    SHA-256 of the payload
    60     32    version string, UTF-8, NUL-padded
    92     160   reserved (0)
    252    4     CRC32 of bytes 0..251

After the payload, when flag bit 0 is set: a 64-byte Ed25519 signature over header + payload.
The OTA client verifies the signature against the public key in the ``ota.pubkey`` setting before
it arms a trial boot; the bootloader itself checks header, payload hash and security counter.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass
from enum import IntEnum

MAGIC = b"TWIM"
HEADER_VERSION = 1
HEADER_SIZE = 256
SIGNATURE_SIZE = 64
FLAG_SIGNED = 0x1
DEFAULT_PAYLOAD_SIZE = 1024 * 1024
_FIELDS = struct.Struct("<4sHHIIIHHI32s32s")
_VERSION_BYTES = 32


class Variant(IntEnum):
    """Behaviour the image asks the twin to model (see harness.twin.trial)."""

    HEALTHY = 0
    CRASH_ON_BOOT = 1
    FAIL_HEALTH = 2
    LEAK = 3  # parameter: bytes leaked per hour
    SLOW_BOOT = 4  # parameter: extra boot time in milliseconds

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", "-")

    @classmethod
    def from_label(cls, value: str | int | Variant) -> Variant:
        if isinstance(value, cls):
            return value
        if isinstance(value, int):
            return cls(value)
        for member in cls:
            if member.label == value.lower():
                return member
        known = ", ".join(m.label for m in cls)
        raise ValueError(f"variant: expected one of {known} (got {value!r})")


@dataclass(frozen=True)
class ImageInfo:
    """What a valid image header says (payload hash already verified when requested)."""

    version: str
    security_counter: int
    payload_size: int
    payload_sha256: bytes
    variant: Variant
    variant_param: int
    flags: int
    signature: bytes | None

    @property
    def total_size(self) -> int:
        return HEADER_SIZE + self.payload_size + (SIGNATURE_SIZE if self.signature is not None else 0)

    @property
    def build_id(self) -> str:
        """Short build identifier: the first 12 hex digits of the payload hash."""
        return self.payload_sha256.hex()[:12]


@dataclass(frozen=True)
class ImageFault:
    """Why bytes are not a valid image (one line, for the boot log)."""

    reason: str


def default_payload(version: str, size: int = DEFAULT_PAYLOAD_SIZE) -> bytes:
    """Deterministic pseudo-random payload for ``version`` (same version, same bytes)."""
    return hashlib.shake_256(b"twin-payload:" + version.encode()).digest(size)


def build_image(
    version: str,
    payload: bytes | None = None,
    *,
    security_counter: int = 0,
    variant: str | int | Variant = Variant.HEALTHY,
    variant_param: int = 0,
    size: int = DEFAULT_PAYLOAD_SIZE,
    signature: bytes | None = None,
) -> bytes:
    """Assemble an image; ``payload=None`` means ``default_payload(version, size)``."""
    encoded_version = version.encode()
    if not encoded_version or len(encoded_version) > _VERSION_BYTES:
        raise ValueError(f"version: expected 1..{_VERSION_BYTES} bytes of UTF-8 (got {version!r})")
    if not 0 <= security_counter < 2**32:
        raise ValueError(f"security_counter: expected 0..2**32-1 (got {security_counter})")
    if not 0 <= variant_param < 2**32:
        raise ValueError(f"variant_param: expected 0..2**32-1 (got {variant_param})")
    if signature is not None and len(signature) != SIGNATURE_SIZE:
        raise ValueError(f"signature: expected {SIGNATURE_SIZE} bytes (got {len(signature)})")
    body = default_payload(version, size) if payload is None else bytes(payload)
    flags = FLAG_SIGNED if signature is not None else 0
    fields = _FIELDS.pack(
        MAGIC,
        HEADER_VERSION,
        HEADER_SIZE,
        flags,
        security_counter,
        len(body),
        Variant.from_label(variant),
        0,
        variant_param,
        hashlib.sha256(body).digest(),
        encoded_version.ljust(_VERSION_BYTES, b"\0"),
    )
    header = fields.ljust(HEADER_SIZE - 4, b"\0")
    header += struct.pack("<I", zlib.crc32(header))
    return header + body + (signature or b"")


def parse_image(data: bytes | memoryview, *, verify_payload: bool = True) -> ImageInfo | ImageFault:
    """Parse the image at the start of ``data`` (trailing bytes, e.g. erased slot space, are ignored)."""
    if len(data) < HEADER_SIZE:
        return ImageFault(f"truncated header ({len(data)} of {HEADER_SIZE} bytes)")
    header = bytes(data[:HEADER_SIZE])
    if header[:4] != MAGIC:
        if header[:4] == b"\xff\xff\xff\xff":
            return ImageFault("slot is erased")
        return ImageFault(f"bad magic {header[:4].hex()}")
    (crc,) = struct.unpack_from("<I", header, HEADER_SIZE - 4)
    if zlib.crc32(header[: HEADER_SIZE - 4]) != crc:
        return ImageFault("header CRC mismatch")
    (_, hversion, hsize, flags, counter, psize, variant, _, vparam, digest, raw_version) = _FIELDS.unpack_from(header)
    if hversion != HEADER_VERSION or hsize != HEADER_SIZE:
        return ImageFault(f"unsupported header version {hversion} (size {hsize})")
    signed = bool(flags & FLAG_SIGNED)
    end = HEADER_SIZE + psize + (SIGNATURE_SIZE if signed else 0)
    if end > len(data):
        return ImageFault(f"image of {end} bytes does not fit in {len(data)} bytes")
    if verify_payload and hashlib.sha256(data[HEADER_SIZE : HEADER_SIZE + psize]).digest() != digest:
        return ImageFault("payload hash mismatch")
    try:
        version = raw_version.rstrip(b"\0").decode()
        kind = Variant(variant)
    except (UnicodeDecodeError, ValueError):
        return ImageFault("bad version string or variant id")
    signature = bytes(data[HEADER_SIZE + psize : end]) if signed else None
    return ImageInfo(version, counter, psize, digest, kind, vparam, flags, signature)
