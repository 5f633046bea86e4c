"""Fixtures for the OTA tests: a key pair, a small signed image, a journal, an artifact server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.ota import KeyPair, SignedImage, build_signed_image, generate_keypair
from harness.run.journal import Journal
from harness.services.artifacts import ArtifactServer

SMALL = 8 * 1024  # payload bytes: big enough for every fault, small enough to keep the tests fast


@pytest.fixture
def keys(tmp_path: Path) -> KeyPair:
    return generate_keypair(tmp_path / "keys")


@pytest.fixture
def image(keys: KeyPair) -> SignedImage:
    return build_signed_image("2.0.0", keys, security_counter=5, variant="leak", variant_param=300, size=SMALL)


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    jr = Journal(tmp_path / "journal.jsonl")
    yield jr
    jr.close()


@pytest.fixture
def server(tmp_path: Path, journal: Journal) -> Iterator[ArtifactServer]:
    """A running artifact server on 127.0.0.1:<free port>, always stopped."""
    srv = ArtifactServer(tmp_path / "artifacts", journal=journal)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()
