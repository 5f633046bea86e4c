"""Ed25519 signing keys for OTA images: generate, save, load, identify.

A key pair on disk is three files in one folder::

    ota-private.pem     PKCS#8 PEM, unencrypted, mode 0600   (signs images: keep it off devices)
    ota-public.pem      SubjectPublicKeyInfo PEM             (for tools)
    ota-public.bin      the 32 raw public key bytes          (what a device embeds)

The *key id* is the first 16 hex digits of the SHA-256 of the raw public key; manifests carry it so
a wrong key is named, not just a failed signature.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from harness.errors import ConfigError

PRIVATE_NAME = "ota-private.pem"
PUBLIC_PEM_NAME = "ota-public.pem"
PUBLIC_RAW_NAME = "ota-public.bin"
RAW_PUBLIC_SIZE = 32


@dataclass(frozen=True)
class KeyPair:
    """An Ed25519 key pair and where it was written (paths are ``None`` for a key kept in memory)."""

    private_key: Ed25519PrivateKey
    private_path: Path | None = None
    public_pem_path: Path | None = None
    public_raw_path: Path | None = None

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @property
    def public_raw(self) -> bytes:
        return public_raw(self.public_key)

    @property
    def key_id(self) -> str:
        return key_id(self.public_key)

    @classmethod
    def ephemeral(cls) -> KeyPair:
        """A fresh key pair held in memory only (tests, throw-away images)."""
        return cls(Ed25519PrivateKey.generate())


def public_raw(key: Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of a public key."""
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """First 16 hex digits of SHA-256 over the raw public key bytes."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return hashlib.sha256(public_raw(public)).hexdigest()[:16]


def generate_keypair(folder: str | os.PathLike[str], *, force: bool = False) -> KeyPair:
    """Create a key pair in ``folder`` (made if missing); refuses to overwrite unless ``force``."""
    out = Path(folder)
    paths = (out / PRIVATE_NAME, out / PUBLIC_PEM_NAME, out / PUBLIC_RAW_NAME)
    existing = [p.name for p in paths if p.exists()]
    if existing and not force:
        raise ConfigError(f"{out}: {', '.join(existing)} already exist; pass --force to replace the key pair")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: expected a folder for the key pair (it is a file)")
    out.mkdir(parents=True, exist_ok=True)
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_private(paths[0], pem)
    public = private.public_key()
    paths[1].write_bytes(
        public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    paths[2].write_bytes(public_raw(public))
    return KeyPair(private, *paths)


def _write_private(path: Path, pem: bytes) -> None:
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)


def load_private_key(path: str | os.PathLike[str]) -> KeyPair:
    """Read a PEM Ed25519 private key (as ``harness ota keygen`` writes it)."""
    data = _read(path, "private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ConfigError(f"{path}: expected an unencrypted PEM Ed25519 private key ({_first_line(exc)})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path}: expected an Ed25519 private key (got {type(key).__name__})")
    return KeyPair(key, private_path=Path(path))


def load_public_key(path: str | os.PathLike[str]) -> Ed25519PublicKey:
    """Read a public key: PEM, 32 raw bytes, or 64 hex digits; a private key PEM gives its public half."""
    data = _read(path, "public key")
    return parse_public_key(data, str(path))


def parse_public_key(data: bytes, where: str = "public key") -> Ed25519PublicKey:
    """A public key from PEM text, 32 raw bytes or 64 hex digits."""
    if len(data) == RAW_PUBLIC_SIZE:
        return Ed25519PublicKey.from_public_bytes(data)
    text = data.strip()
    if len(text) == 2 * RAW_PUBLIC_SIZE:
        try:
            return Ed25519PublicKey.from_public_bytes(bytes.fromhex(text.decode("ascii")))
        except (UnicodeDecodeError, ValueError):
            pass
    if b"PRIVATE KEY" in text:
        try:
            private = serialization.load_pem_private_key(text, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise ConfigError(f"{where}: expected an Ed25519 key ({_first_line(exc)})") from None
        if isinstance(private, Ed25519PrivateKey):
            return private.public_key()
        raise ConfigError(f"{where}: expected an Ed25519 key (got {type(private).__name__})")
    try:
        key = serialization.load_pem_public_key(text)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ConfigError(
            f"{where}: expected an Ed25519 public key as PEM, 32 raw bytes or 64 hex digits ({len(data)} bytes read)"
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{where}: expected an Ed25519 public key (got {type(key).__name__})")
    return key


def _read(path: str | os.PathLike[str], what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} file not found (make one with 'harness ota keygen --out DIR')") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: expected a {what} file (it is a folder)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the {what} ({exc.strerror})") from None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
