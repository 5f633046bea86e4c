"""Fixtures for the broker and telemetry tests: a broker of each kind, a journal, publishers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.run.journal import Journal
from harness.services.broker import Broker, unavailable_reason
from tests.services.publisher import DevicePublisher


def _kind_param(kind: str) -> object:
    reason = unavailable_reason(kind)
    return pytest.param(kind, marks=() if reason is None else pytest.mark.skip(reason=reason), id=kind)


BROKER_KINDS = [_kind_param("mosquitto"), _kind_param("embedded")]


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    jr = Journal(tmp_path / "journal.jsonl")
    yield jr
    jr.close()


@pytest.fixture(params=BROKER_KINDS)
def broker(request: pytest.FixtureRequest, tmp_path: Path, journal: Journal) -> Iterator[Broker]:
    """A real broker of each kind, journaling its outages; always closed."""
    b = Broker.start(tmp_path, request.param, journal)
    yield b
    b.close()


@pytest.fixture
def make_publisher(broker: Broker) -> Iterator[Callable[..., DevicePublisher]]:
    """Factory of paho publishers speaking the device message contract; all closed at teardown."""
    made: list[DevicePublisher] = []

    def make(device: str = "dev-1", **kwargs: object) -> DevicePublisher:
        pub = DevicePublisher(broker.endpoint, device, **kwargs)  # type: ignore[arg-type]
        made.append(pub)
        pub.connect()
        return pub

    yield make
    for pub in made:
        pub.close()
