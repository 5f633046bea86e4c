"""Signed images: the twin's format with the signed flag, manifests, and every faulty image rejected for its reason."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.errors import ConfigError
from harness.ota import (
    CORRUPTIONS,
    KeyPair,
    Manifest,
    SignedImage,
    build_signed_image,
    corrupt,
    read_manifest,
    verify_image,
    write_manifest,
)
from harness.twin.image import FLAG_SIGNED, HEADER_SIZE, SIGNATURE_SIZE, ImageInfo, Variant, parse_image


def test_signed_image_is_the_twin_format_with_flag_and_trailer(image: SignedImage, keys: KeyPair) -> None:
    info = parse_image(image.data)
    assert isinstance(info, ImageInfo), info
    assert info.flags & FLAG_SIGNED
    assert (info.version, info.security_counter, info.variant, info.variant_param) == ("2.0.0", 5, Variant.LEAK, 300)
    assert len(image.data) == HEADER_SIZE + 8 * 1024 + SIGNATURE_SIZE == info.total_size
    # an independent check: the trailer is an Ed25519 signature over header + payload
    Ed25519PublicKey.from_public_bytes(keys.public_raw).verify(
        image.data[-SIGNATURE_SIZE:], image.data[:-SIGNATURE_SIZE]
    )
    assert verify_image(image.data, keys) == []
    assert verify_image(image.data, keys.public_key, manifest=image.manifest, min_security_counter=5) == []


def test_manifest_describes_the_file(image: SignedImage, keys: KeyPair) -> None:
    m = image.manifest
    assert m.size == len(image.data)
    assert m.sha256 == hashlib.sha256(image.data).hexdigest()
    assert m.payload_sha256 == hashlib.sha256(image.data[HEADER_SIZE:-SIGNATURE_SIZE]).hexdigest()
    assert m.signature == image.data[-SIGNATURE_SIZE:].hex()
    assert (m.version, m.security_counter, m.variant, m.variant_param) == ("2.0.0", 5, "leak", 300)
    assert m.key_id == hashlib.sha256(keys.public_raw).hexdigest()[:16]


def test_manifest_round_trips_through_its_file(image: SignedImage, tmp_path: Path) -> None:
    written = write_manifest(image.manifest, tmp_path / "fw.img")
    assert written.name == "fw.img.json"
    assert read_manifest(written) == image.manifest


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", r"m.json:1:2: expected JSON"),
        ("[]", "m.json: expected a JSON object"),
        ('{"version": "1"}', "m.json: security_counter: missing"),
    ],
)
def test_bad_manifest_is_one_line(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "m.json").write_text(content)
    with pytest.raises(ConfigError, match=message):
        read_manifest(tmp_path / "m.json")


def test_manifest_field_of_the_wrong_type(image: SignedImage) -> None:
    data = json.loads(image.manifest.to_json())
    data["size"] = "big"
    with pytest.raises(ConfigError, match="size: expected int"):
        Manifest.from_dict(data, "m.json")


# Each fault, and the reason verify_image must give for it (with the genuine key, manifest and minimum counter).
FAULTS = [
    ("payload-byte", ["payload hash mismatch", "signature does not verify", "manifest sha256"]),
    ("signature", ["signature does not verify", "manifest sha256"]),
    ("other-key", ["signature does not verify", "manifest says the image is signed with key"]),
    ("downgrade", ["security counter 4 is below the minimum 5 (downgrade)"]),
    ("unsigned", ["image is not signed"]),
    ("header", ["header CRC mismatch"]),
    ("truncated", ["does not fit in"]),
]


def test_fault_table_covers_every_corruption() -> None:
    assert sorted(how for how, _ in FAULTS) == sorted(CORRUPTIONS)


@pytest.mark.parametrize(("how", "reasons"), FAULTS, ids=[how for how, _ in FAULTS])
def test_each_faulty_image_is_rejected_for_its_reason(
    image: SignedImage, keys: KeyPair, how: str, reasons: list[str]
) -> None:
    bad = corrupt(image, how, key=keys if how == "downgrade" else None)
    assert bad.data != image.data
    problems = verify_image(bad.data, keys, manifest=bad.manifest, min_security_counter=5)
    assert problems, f"{how}: accepted"
    for reason in reasons:
        assert any(reason in p for p in problems), f"{how}: {reason!r} not in {problems}"
    assert all("\n" not in p for p in problems)


def test_downgrade_alone_is_a_valid_image(image: SignedImage, keys: KeyPair) -> None:
    older = corrupt(image, "downgrade", key=keys)
    assert verify_image(older.data, keys, manifest=older.manifest) == []  # only the counter rule rejects it
    assert older.manifest.security_counter == 4


def test_other_key_verifies_with_that_key(image: SignedImage, keys: KeyPair) -> None:
    other = KeyPair.ephemeral()
    bad = corrupt(image, "other-key", key=other)
    assert verify_image(bad.data, other, manifest=bad.manifest) == []
    assert verify_image(bad.data, keys) == [f"signature does not verify with key {keys.key_id}"]


def test_trailing_bytes_are_reported(image: SignedImage, keys: KeyPair) -> None:
    assert verify_image(image.data + b"\xff" * 3, keys) == [
        f"3 unexpected bytes after the {len(image.data)}-byte image"
    ]


def test_downgrade_of_counter_zero_and_unknown_faults_are_refused(keys: KeyPair) -> None:
    first = build_signed_image("1.0.0", keys, size=64)
    with pytest.raises(ValueError, match="security counter is 0"):
        corrupt(first, "downgrade", key=keys)
    with pytest.raises(ValueError, match="needs key="):
        corrupt(first, "downgrade")
    with pytest.raises(ValueError, match="expected one of payload-byte"):
        corrupt(first, "gamma-ray")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"version": "two point oh"}, "version: expected 1-32 characters"),
        ({"version": "1" * 33}, "version: expected 1-32 characters"),
        ({"security_counter": -1}, r"security_counter: expected an integer 0..4294967295 \(got -1\)"),
        ({"variant_param": 2**32}, "variant_param: expected an integer"),
        ({"variant": "explode"}, "variant: expected one of healthy, crash-on-boot"),
        ({"size": 2**40}, "size: expected a payload of"),
    ],
)
def test_bad_build_arguments_name_the_field(keys: KeyPair, kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"version": "2.0.0", "size": 64, **kwargs}
    with pytest.raises(ConfigError, match=message):
        build_signed_image(key=keys, **args)  # type: ignore[arg-type]


def test_same_inputs_same_bytes(keys: KeyPair) -> None:
    a = build_signed_image("3.1.4", keys, security_counter=2, size=1000)
    b = build_signed_image("3.1.4", keys, security_counter=2, size=1000)
    assert a == b  # Ed25519 signatures are deterministic, the payload is derived from the version


_KEYS = KeyPair.ephemeral()


@settings(max_examples=60, deadline=None)
@given(
    version=st.from_regex(r"[0-9A-Za-z][0-9A-Za-z.+~_-]{0,31}", fullmatch=True),
    counter=st.integers(0, 2**32 - 1),
    variant=st.sampled_from(list(Variant)),
    param=st.integers(0, 2**32 - 1),
    size=st.integers(0, 300),
    data=st.data(),
)
def test_any_single_byte_flip_is_detected(
    version: str, counter: int, variant: Variant, param: int, size: int, data: st.DataObject
) -> None:
    keys = _KEYS  # one key for every example: key generation is not what is under test
    image = build_signed_image(version, keys, security_counter=counter, variant=variant, variant_param=param, size=size)
    assert verify_image(image.data, keys, manifest=image.manifest, min_security_counter=counter) == []
    offset = data.draw(st.integers(0, len(image.data) - 1), label="offset")
    bit = data.draw(st.integers(0, 7), label="bit")
    damaged = bytearray(image.data)
    damaged[offset] ^= 1 << bit
    assert verify_image(bytes(damaged), keys), f"flip of bit {bit} at byte {offset} went unnoticed"
    assert verify_image(bytes(damaged), keys, manifest=image.manifest)
