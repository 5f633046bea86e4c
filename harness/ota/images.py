"""Signed OTA images in the twin's format (:mod:`harness.twin.image`), and checks of them.

An image is the 256-byte header and payload :func:`harness.twin.image.build_image` makes, with the
header's signed flag (bit 0) set and a 64-byte Ed25519 signature over header + payload appended.
:func:`verify_image` answers a list of problems (empty when good), one line each, so a CLI and a test
can both show every reason an image is rejected.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from harness.errors import ConfigError
from harness.ota.keys import KeyPair, key_id
from harness.ota.manifest import Manifest, manifest_for
from harness.ota.slot import check_fits, fit_problem
from harness.twin.image import (
    DEFAULT_PAYLOAD_SIZE,
    HEADER_SIZE,
    SIGNATURE_SIZE,
    ImageFault,
    ImageInfo,
    Variant,
    build_image,
    parse_image,
)

VERSION_PATTERN = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+~_-]{0,31}")
MAX_PAYLOAD_SIZE = 256 * 1024 * 1024  # images are built in memory; far beyond any slot the twin models
_U32 = 2**32


@dataclass(frozen=True)
class SignedImage:
    """The bytes of a signed image and the manifest that describes them."""

    data: bytes
    manifest: Manifest

    @property
    def info(self) -> ImageInfo:
        parsed = parse_image(self.data, verify_payload=False)
        if isinstance(parsed, ImageFault):
            raise ValueError(f"not an image: {parsed.reason}")
        return parsed

    @property
    def payload(self) -> bytes:
        return self.data[HEADER_SIZE : HEADER_SIZE + self.manifest.payload_size]


def check_version(version: str, *, field: str = "version") -> str:
    """The version string, if it is 1..32 characters of ``0-9 A-Z a-z . + ~ _ -`` starting alphanumeric."""
    if not isinstance(version, str) or not VERSION_PATTERN.fullmatch(version):
        raise ConfigError(
            f"{field}: expected 1-32 characters of letters, digits and . + ~ _ - starting with a letter or digit, "
            f"such as '2.0.0' (got {version!r})"
        )
    return version


def build_signed_image(
    version: str,
    key: KeyPair | Ed25519PrivateKey,
    *,
    security_counter: int = 0,
    variant: str | int | Variant = Variant.HEALTHY,
    variant_param: int = 0,
    size: int = DEFAULT_PAYLOAD_SIZE,
    payload: bytes | None = None,
    slot_size: int | None = None,
) -> SignedImage:
    """Build and sign an image; ``size`` is the payload size (ignored when ``payload`` is given).

    With ``slot_size``, an image file that would not fit a slot that big is refused (ConfigError naming
    both sizes) before a byte of it is built.
    """
    check_version(version)
    _check_u32("security_counter", security_counter)
    _check_u32("variant_param", variant_param)
    if payload is None and not 0 <= size <= MAX_PAYLOAD_SIZE:
        raise ConfigError(f"size: expected a payload of 0..{MAX_PAYLOAD_SIZE} bytes (256MiB) (got {size})")
    check_fits(HEADER_SIZE + (size if payload is None else len(payload)) + SIGNATURE_SIZE, slot_size,
               where=f"image {version}")  # fmt: skip
    try:
        kind = Variant.from_label(variant)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    private = key.private_key if isinstance(key, KeyPair) else key
    placeholder = build_image(
        version,
        payload,
        security_counter=security_counter,
        variant=kind,
        variant_param=variant_param,
        size=size,
        signature=bytes(SIGNATURE_SIZE),  # sets the signed flag; the header does not depend on the bytes
    )
    return _sign(placeholder[:-SIGNATURE_SIZE], private)


def _sign(signed_part: bytes, private: Ed25519PrivateKey) -> SignedImage:
    data = signed_part + private.sign(signed_part)
    info = parse_image(data)
    if isinstance(info, ImageFault):  # build_image made it: a fault here is a bug, not bad input
        raise AssertionError(f"freshly built image does not parse: {info.reason}")
    return SignedImage(data, manifest_for(data, info, key_id(private)))


def _check_u32(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _U32:
        raise ConfigError(f"{name}: expected an integer 0..{_U32 - 1} (got {value!r})")


def verify_image(
    data: bytes,
    public_key: Ed25519PublicKey | KeyPair,
    *,
    manifest: Manifest | None = None,
    min_security_counter: int | None = None,
    slot_size: int | None = None,
) -> list[str]:
    """Every problem with ``data`` as a signed image for ``public_key``; an empty list means good.

    Checks that the file fits a ``slot_size``-byte slot (when given), the header (magic, CRC, sizes),
    the payload hash, the signature, optionally a minimum security counter (anti-rollback), and
    optionally agreement with the image's manifest.
    """
    public = public_key.public_key if isinstance(public_key, KeyPair) else public_key
    too_big = fit_problem(len(data), slot_size)
    info = parse_image(data, verify_payload=False)
    if isinstance(info, ImageFault):
        return [p for p in (too_big, info.reason) if p]
    problems: list[str] = [too_big] if too_big else []
    end = HEADER_SIZE + info.payload_size
    if len(data) > info.total_size:
        problems.append(f"{len(data) - info.total_size} unexpected bytes after the {info.total_size}-byte image")
    actual = hashlib.sha256(data[HEADER_SIZE:end]).digest()
    if actual != info.payload_sha256:
        problems.append(
            f"payload hash mismatch (header says {info.payload_sha256.hex()[:16]}..., "
            f"payload is {actual.hex()[:16]}...)"
        )
    if info.signature is None:
        problems.append("image is not signed (header flag bit 0 clear, no signature trailer)")
    else:
        try:
            public.verify(info.signature, data[:end])
        except InvalidSignature:
            problems.append(f"signature does not verify with key {key_id(public)}")
    if min_security_counter is not None and info.security_counter < min_security_counter:
        problems.append(
            f"security counter {info.security_counter} is below the minimum {min_security_counter} (downgrade)"
        )
    if manifest is not None:
        problems.extend(_manifest_problems(data[: info.total_size], info, manifest, key_id(public)))
    return problems


def _manifest_problems(data: bytes, info: ImageInfo, manifest: Manifest, kid: str) -> list[str]:
    problems: list[str] = []
    if manifest.key_id != kid:
        problems.append(f"manifest says the image is signed with key {manifest.key_id}, expected key {kid}")
    actual = manifest_for(data, info, manifest.key_id)
    for name in (
        "size",
        "sha256",
        "version",
        "security_counter",
        "payload_size",
        "payload_sha256",
        "signature",
        "variant",
        "variant_param",
    ):
        want, got = getattr(manifest, name), getattr(actual, name)
        if want != got:
            problems.append(f"manifest {name} {_short(want)} does not match the image's {_short(got)}")
    return problems


def _short(value: object) -> str:
    text = repr(value)
    return text[:20] + "...'" if isinstance(value, str) and len(text) > 24 else text


#: Faults :func:`corrupt` can put into an image on purpose, with what each models.
CORRUPTIONS: dict[str, str] = {
    "payload-byte": "one payload byte flipped after signing (bit rot, a bad download)",
    "signature": "one signature byte flipped",
    "other-key": "validly signed, but with another key than the device trusts",
    "downgrade": "validly signed with the same key, security counter one lower (rollback attack)",
    "unsigned": "no signature trailer, signed flag clear",
    "header": "one header byte flipped (the header CRC no longer matches)",
    "truncated": "the last half of the signature cut off",
}


def corrupt(image: SignedImage, how: str, *, key: KeyPair | Ed25519PrivateKey | None = None) -> SignedImage:
    """A faulty copy of ``image`` (see :data:`CORRUPTIONS`).

    Byte-level faults keep the original manifest (it describes the image as published). Rebuilt images
    (``other-key``, ``downgrade``, ``unsigned``) get their own true manifest. ``downgrade`` needs the
    genuine ``key``; ``other-key`` uses ``key`` if given, else a fresh one.
    """
    data, info = image.data, image.info
    end = HEADER_SIZE + info.payload_size
    if how == "payload-byte":
        return SignedImage(_flip(data, HEADER_SIZE + info.payload_size // 2), image.manifest)
    if how == "signature":
        return SignedImage(_flip(data, end + SIGNATURE_SIZE // 2), image.manifest)
    if how == "header":
        return SignedImage(_flip(data, 60), image.manifest)  # first byte of the version string
    if how == "truncated":
        return SignedImage(data[: end + SIGNATURE_SIZE // 2], image.manifest)
    if how == "other-key":
        other = key if key is not None else KeyPair.ephemeral()
        return _sign(data[:end], other.private_key if isinstance(other, KeyPair) else other)
    payload = data[HEADER_SIZE:end]
    if how == "unsigned":
        unsigned = build_image(
            info.version,
            payload,
            security_counter=info.security_counter,
            variant=info.variant,
            variant_param=info.variant_param,
        )
        parsed = parse_image(unsigned)
        assert isinstance(parsed, ImageInfo)
        return SignedImage(unsigned, manifest_for(unsigned, parsed, image.manifest.key_id))
    if how == "downgrade":
        if key is None:
            raise ValueError("corrupt(image, 'downgrade') needs key=: the genuine key, so only the counter is wrong")
        if info.security_counter == 0:
            raise ValueError("corrupt(image, 'downgrade'): the image's security counter is 0; nothing is lower")
        return build_signed_image(
            info.version,
            key,
            security_counter=info.security_counter - 1,
            variant=info.variant,
            variant_param=info.variant_param,
            payload=payload,
        )
    raise ValueError(f"corrupt: how: expected one of {', '.join(CORRUPTIONS)} (got {how!r})")


def _flip(data: bytes, offset: int) -> bytes:
    out = bytearray(data)
    out[offset] ^= 0xFF
    return bytes(out)
