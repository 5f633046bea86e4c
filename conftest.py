"""Project-wide pytest set-up. The harness plugin itself is loaded by its entry point."""

# numpy refuses to be imported twice in one process, and pandas re-imported keeps stale classes;
# pytester's in-process runs drop every module first imported inside them, and the harness imports
# pandas when a run writes its results, so an in-process run that happened to import them first broke
# the next one. Imported here, they are in every snapshot.
import os
import socket
from collections.abc import Iterator

import numpy  # noqa: F401
import pandas  # noqa: F401
import pytest

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def _inner_runs_without_labgrid(request: pytest.FixtureRequest) -> None:
    """With labgrid installed (as in every lab that has boards), its pytest plugin is active in this
    suite too; it keeps one process-wide step logger, so a second pytest configured inside the same
    process (pytester's in-process runs) trips its "already started" assertion. Inner runs of the
    harness's own tests therefore run without it; the test that proves our items work beside labgrid
    runs its inner pytest in a subprocess and asks for the plugin back (``labgrid_in_inner_runs``)."""
    if "pytester" not in request.fixturenames or not request.config.pluginmanager.hasplugin("labgrid"):
        return
    if "labgrid_in_inner_runs" in request.fixturenames:
        return
    request.getfixturevalue("pytester")  # first: setting itself up, pytester clears PYTEST_ADDOPTS
    monkeypatch = request.getfixturevalue("monkeypatch")
    monkeypatch.setenv("PYTEST_ADDOPTS", f"{os.environ.get('PYTEST_ADDOPTS', '')} -p no:labgrid".strip())


@pytest.fixture
def labgrid_in_inner_runs() -> None:
    """Inner pytest runs of this test keep labgrid's plugin (they must run in a subprocess)."""


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound, never listening, so nobody else takes it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()
