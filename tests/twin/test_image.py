"""Image format: round trip, and one clear reason for every way an image can be bad."""

from __future__ import annotations

import pytest

from harness.twin.image import (
    HEADER_SIZE,
    SIGNATURE_SIZE,
    ImageFault,
    ImageInfo,
    Variant,
    build_image,
    default_payload,
    parse_image,
)


def test_round_trip_keeps_every_field() -> None:
    signature = bytes(range(SIGNATURE_SIZE))
    image = build_image("2.3.4", security_counter=5, variant="leak", variant_param=4096, size=1000, signature=signature)
    info = parse_image(image + b"\xff" * 100)
    assert isinstance(info, ImageInfo)
    assert (info.version, info.security_counter, info.variant, info.variant_param) == (
        "2.3.4",
        5,
        Variant.LEAK,
        4096,
    )
    assert info.payload_size == 1000
    assert info.signature == signature
    assert info.total_size == len(image) == HEADER_SIZE + 1000 + SIGNATURE_SIZE


def test_default_payload_is_deterministic_and_one_mib() -> None:
    assert default_payload("1.0.0") == default_payload("1.0.0")
    assert default_payload("1.0.0") != default_payload("1.0.1")
    info = parse_image(build_image("1.0.0"))
    assert isinstance(info, ImageInfo)
    assert info.payload_size == 1024 * 1024


def _corrupt(offset: int) -> bytes:
    image = bytearray(build_image("1.0.0", size=4096))
    image[offset] ^= 0x55
    return bytes(image)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xff" * 8192, "slot is erased"),
        (b"\x00" * 8192, "bad magic"),
        (b"TWIM", "truncated header"),
        (_corrupt(40), "header CRC mismatch"),
        (_corrupt(HEADER_SIZE + 100), "payload hash mismatch"),
        (build_image("1.0.0", size=4096)[:-1], "does not fit"),
    ],
)
def test_faults_name_the_reason(data: bytes, reason: str) -> None:
    result = parse_image(data)
    assert isinstance(result, ImageFault)
    assert reason in result.reason


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"version": ""}, "version"),
        ({"version": "x" * 33}, "version"),
        ({"version": "1", "security_counter": -1}, "security_counter"),
        ({"version": "1", "variant": "sluggish"}, "variant"),
        ({"version": "1", "signature": b"short"}, "signature"),
    ],
)
def test_bad_build_arguments_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        build_image(size=16, **kwargs)  # type: ignore[arg-type]


def test_variant_labels() -> None:
    assert Variant.from_label("crash-on-boot") is Variant.CRASH_ON_BOOT
    assert Variant.from_label(4) is Variant.SLOW_BOOT
    assert [v.label for v in Variant] == ["healthy", "crash-on-boot", "fail-health", "leak", "slow-boot"]
