"""Fixtures for the twin's own tests: factory flash images for the core, a served twin for the runtime."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.twin import build_image, factory_flash

from .pump import SMALL, Pump
from .served import ServedTwin, start_served, stop_served

IMAGE_SIZE = 256 * 1024


def small_image(version: str = "1.0.0", **kwargs: object) -> bytes:
    return build_image(version, size=IMAGE_SIZE, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def flash() -> bytearray:
    """Factory flash in the small test layout: image 1.0.0 in slot A, slot B erased."""
    return factory_flash(SMALL, small_image())


@pytest.fixture
def pump(flash: bytearray) -> Pump:
    return Pump(flash)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., ServedTwin]]:
    """Start ``python -m harness.twin serve`` with extra args; every started twin is stopped and checked."""
    started: list[ServedTwin] = []

    def start(*args: str, flash: bool = True) -> ServedTwin:
        twin = start_served(tmp_path, list(args), flash=flash)
        started.append(twin)
        return twin

    yield start
    for twin in started:
        if twin.process.returncode is None:
            stop_served(twin)
