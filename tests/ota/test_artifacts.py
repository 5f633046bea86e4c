"""The artifact server's HTTP: full and ranged GET, HEAD, ETag and If-Range, 416, 404, journal, clean stop."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.errors import ConfigError
from harness.run.journal import Journal, read_journal
from harness.services.artifact_response import RangeNotSatisfiable, parse_range
from harness.services.artifacts import ArtifactServer, ArtifactServerError
from tests.ota.client import download_resuming, fetch

DATA = hashlib.shake_256(b"artifact").digest(64 * 1024)


def test_full_get_has_length_etag_and_accepts_ranges(server: ArtifactServer) -> None:
    got = fetch(server.publish("fw.img", DATA))
    assert (got.status, got.body, got.complete) == (200, DATA, True)
    assert got.declared == len(DATA)
    assert got.headers["accept-ranges"] == "bytes"
    etag = got.headers["etag"]
    assert etag == '"' + hashlib.sha256(DATA).hexdigest()[:32] + '"'  # strong: no W/ prefix


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=100-199", 100, 199),
        ("bytes=65000-", 65000, len(DATA) - 1),
        ("bytes=-10", len(DATA) - 10, len(DATA) - 1),
        ("bytes=60000-999999", 60000, len(DATA) - 1),
    ],
)
def test_range_gives_206_with_content_range(server: ArtifactServer, header: str, first: int, last: int) -> None:
    got = fetch(server.publish("fw.img", DATA), headers={"Range": header})
    assert got.status == 206
    assert got.headers["content-range"] == f"bytes {first}-{last}/{len(DATA)}"
    assert got.body == DATA[first : last + 1] and got.declared == last - first + 1


@pytest.mark.parametrize("header", ["bytes=0-1,5-9", "bytes=9-2", "lines=1-2", "bytes=x-"])
def test_multi_and_malformed_ranges_are_ignored(server: ArtifactServer, header: str) -> None:
    got = fetch(server.publish("fw.img", DATA), headers={"Range": header})
    assert (got.status, got.body) == (200, DATA)


@pytest.mark.parametrize("header", ["bytes=65536-", "bytes=99999-100000", "bytes=-0"])
def test_unsatisfiable_range_is_416(server: ArtifactServer, header: str) -> None:
    got = fetch(server.publish("fw.img", DATA), headers={"Range": header})
    assert got.status == 416
    assert got.headers["content-range"] == f"bytes */{len(DATA)}"
    assert got.body == b""


def test_if_range_with_current_etag_resumes_and_stale_etag_restarts(server: ArtifactServer) -> None:
    url = server.publish("fw.img", DATA)
    etag = fetch(url, method="HEAD").headers["etag"]
    resumed = fetch(url, headers={"Range": "bytes=1000-", "If-Range": etag})
    assert (resumed.status, resumed.body) == (206, DATA[1000:])
    stale = fetch(url, headers={"Range": "bytes=1000-", "If-Range": '"0123456789abcdef"'})
    assert (stale.status, stale.body) == (200, DATA)
    dated = fetch(url, headers={"Range": "bytes=1000-", "If-Range": "Mon, 23 Nov 2026 00:00:00 GMT"})
    assert dated.status == 200


def test_head_has_the_headers_and_no_body(server: ArtifactServer) -> None:
    url = server.publish("fw.img", DATA)
    got = fetch(url, method="HEAD")
    assert (got.status, got.body, got.declared) == (200, b"", len(DATA))
    ranged = fetch(url, method="HEAD", headers={"Range": "bytes=10-19"})
    assert (ranged.status, ranged.declared, ranged.headers["content-range"]) == (206, 10, f"bytes 10-19/{len(DATA)}")
    assert server.wait_requests(2)["bytes_served"] == 0


def test_unknown_and_escaping_paths_are_404(server: ArtifactServer, tmp_path: Path) -> None:
    (tmp_path / "secret").write_bytes(b"outside the folder")
    server.publish("fw.img", DATA)
    for path in ("/nope.img", "/../secret", "/%2e%2e/secret", "/.fw.img.tmp"):
        assert fetch(server.base_url + path).status == 404, path


def test_publish_in_subfolders_and_names(server: ArtifactServer) -> None:
    url = server.publish("fleet/a/fw-1.img", b"one")
    assert url == f"http://127.0.0.1:{server.port}/fleet/a/fw-1.img"
    assert fetch(url).body == b"one"
    assert server.names() == ["fleet/a/fw-1.img"]


@pytest.mark.parametrize("name", ["../x", "a//b", "", ".hidden", "a b"])
def test_bad_artifact_names_are_refused(server: ArtifactServer, name: str) -> None:
    with pytest.raises(ConfigError, match="artifact name: expected"):
        server.publish(name, b"x")


def test_requests_are_journaled(server: ArtifactServer, journal: Journal) -> None:
    url = server.publish("fw.img", DATA)
    fetch(url)
    fetch(url, headers={"Range": "bytes=10-"})
    fetch(server.base_url + "/missing")
    server.wait_requests(3)
    journal.flush()
    records = [r for r in read_journal(journal.path) if r["kind"] == "artifact.request"]
    assert [(r["method"], r["path"], r["range"], r["status"], r["bytes"]) for r in records] == [
        ("GET", "/fw.img", None, 200, len(DATA)),
        ("GET", "/fw.img", "bytes=10-", 206, len(DATA) - 10),
        ("GET", "/missing", None, 404, 0),
    ]
    assert all(r["client"].startswith("127.0.0.1:") and r["duration"] >= 0 for r in records)


def test_statistics_count_requests_bytes_statuses_and_resumes(server: ArtifactServer) -> None:
    url = server.publish("fw.img", DATA)
    fetch(url)
    fetch(url, headers={"Range": "bytes=0-9"})
    fetch(url, headers={"Range": "bytes=99999999-"})
    stats = server.wait_requests(3)
    assert stats["requests"] == 3 and stats["in_flight"] == 0
    assert stats["bytes_served"] == len(DATA) + 10
    assert stats["by_status"] == {200: 1, 206: 1, 416: 1}
    assert stats["resumed"] == 2


def test_resuming_download_without_faults_needs_one_request(server: ArtifactServer) -> None:
    done = download_resuming(server.publish("fw.img", DATA))
    assert (done.data, done.statuses) == (DATA, [200])


def test_stop_closes_the_port_and_is_idempotent(tmp_path: Path) -> None:
    server = ArtifactServer(tmp_path).start()
    url = server.publish("fw.img", b"abc")
    assert fetch(url).status == 200
    port = server.port
    server.stop()
    server.stop()
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


def test_own_temporary_folder_is_removed_on_stop() -> None:
    with ArtifactServer() as server:
        folder = server.folder
        server.publish("fw.img", b"abc")
        assert folder.is_dir()
    assert not folder.exists()


def test_port_in_use_is_one_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ArtifactServerError, match=f"cannot listen on 127.0.0.1:{port}"):
            ArtifactServer(tmp_path, port=port).start()


def test_parse_range_table() -> None:
    assert parse_range(None, 10) is None
    assert parse_range("bytes=0-0", 10) == (0, 0)
    assert parse_range("bytes= 2 - 4 ", 10) == (2, 4)
    assert parse_range("bytes=-20", 10) == (0, 9)
    assert parse_range("bytes=-", 10) is None
    for header in ("bytes=-1", "bytes=0-", "bytes=10-20"):
        with pytest.raises(RangeNotSatisfiable):
            parse_range(header, 0 if header != "bytes=10-20" else 10)


def test_empty_artifact(server: ArtifactServer) -> None:
    url = server.publish("empty.img", b"")
    got = fetch(url)
    assert (got.status, got.body, got.declared) == (200, b"", 0)
    assert fetch(url, headers={"Range": "bytes=-5"}).status == 416


@settings(max_examples=200, deadline=None)
@given(size=st.integers(0, 1000), first=st.integers(0, 1200), length=st.integers(0, 1200) | st.none())
def test_parse_range_agrees_with_slicing(size: int, first: int, length: int | None) -> None:
    last = None if length is None else first + length
    header = f"bytes={first}-{'' if last is None else last}"
    if first >= size:
        with pytest.raises(RangeNotSatisfiable):
            parse_range(header, size)
        return
    span = parse_range(header, size)
    assert span is not None
    data = bytes(range(256)) * 4
    want = data[:size][first : None if last is None else last + 1]
    assert data[:size][span[0] : span[1] + 1] == want and want


def test_publish_refuses_an_image_larger_than_the_slot_and_journals_the_ones_it_takes(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.jsonl")
    try:
        with ArtifactServer(tmp_path / "a", journal=journal, slot_size=len(DATA) - 1) as srv:
            with pytest.raises(ConfigError) as err:
                srv.publish("big.img", DATA)
            assert str(err.value) == (f"artifact big.img: image of {len(DATA)} bytes (64 KiB) does not fit the "
                                      f"{len(DATA) - 1} bytes (64 KiB) slot")  # fmt: skip
            assert srv.names() == []
            srv.publish("small.img", DATA[:1000])
    finally:
        journal.close()
    published = [r for r in read_journal(journal.path) if r["kind"] == "artifact.published"]
    assert [(r["name"], r["size"], r["sha256"]) for r in published] == [
        ("small.img", 1000, hashlib.sha256(DATA[:1000]).hexdigest())
    ]
