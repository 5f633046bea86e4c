"""Key pairs: files written, refusal to overwrite, loading every public key form, one-line errors."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from harness.errors import ConfigError
from harness.ota import KeyPair, generate_keypair, key_id, load_private_key, load_public_key
from harness.ota.keys import parse_public_key


def test_keygen_writes_three_files_and_a_private_key_only_the_owner_reads(keys: KeyPair) -> None:
    assert keys.private_path is not None and keys.public_pem_path is not None and keys.public_raw_path is not None
    assert stat.S_IMODE(keys.private_path.stat().st_mode) == 0o600
    assert keys.private_path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert keys.public_pem_path.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    raw = keys.public_raw_path.read_bytes()
    assert len(raw) == 32 and raw == keys.public_raw
    assert keys.key_id == hashlib.sha256(raw).hexdigest()[:16]


def test_keygen_refuses_to_overwrite_without_force(keys: KeyPair) -> None:
    assert keys.private_path is not None
    folder = keys.private_path.parent
    with pytest.raises(ConfigError, match="already exist; pass --force"):
        generate_keypair(folder)
    assert load_private_key(keys.private_path).key_id == keys.key_id  # untouched
    replaced = generate_keypair(folder, force=True)
    assert replaced.key_id != keys.key_id
    assert load_private_key(keys.private_path).key_id == replaced.key_id


def test_private_key_round_trip(keys: KeyPair) -> None:
    assert keys.private_path is not None
    loaded = load_private_key(keys.private_path)
    assert loaded.public_raw == keys.public_raw


def test_public_key_loads_from_pem_raw_hex_and_private_pem(keys: KeyPair, tmp_path: Path) -> None:
    assert keys.public_pem_path and keys.public_raw_path and keys.private_path
    hex_file = tmp_path / "pub.hex"
    hex_file.write_text(keys.public_raw.hex() + "\n")
    for path in (keys.public_pem_path, keys.public_raw_path, hex_file, keys.private_path):
        assert key_id(load_public_key(path)) == keys.key_id, path.name


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a key at all", "expected an Ed25519 public key as PEM, 32 raw bytes or 64 hex digits"),
        (b"-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n", "expected an Ed25519 key"),
    ],
)
def test_bad_public_key_is_one_line(content: bytes, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_public_key(content, "pub.pem")
    assert "\n" not in str(info.value) and str(info.value).startswith("pub.pem: ")


def test_non_ed25519_keys_are_named(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    other = ec.generate_private_key(ec.SECP256R1())
    pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / "ec.pem").write_bytes(pem)
    with pytest.raises(ConfigError, match="expected an Ed25519 private key"):
        load_private_key(tmp_path / "ec.pem")
    (tmp_path / "ec.pub").write_bytes(
        other.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(ConfigError, match="expected an Ed25519 public key"):
        load_public_key(tmp_path / "ec.pub")


def test_missing_key_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"private key file not found \(make one with 'harness ota keygen"):
        load_private_key(tmp_path / "nope.pem")
    with pytest.raises(ConfigError, match="expected a public key file"):
        load_public_key(tmp_path)
