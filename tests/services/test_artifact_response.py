"""The artifact server's answer to one request, decided without a socket (the simulated server shares it)."""

from __future__ import annotations

import pytest

from harness.services.artifact_faults import Decision
from harness.services.artifact_response import Artifact, decide_response

DATA = bytes(range(256)) * 4  # 1024 bytes
ART = Artifact.of(DATA)


def reply(method: str = "GET", rng: str | None = None, if_range: str | None = None, **faults: object):
    return decide_response(ART, "fw.bin", method=method, range_header=rng, if_range=if_range,
                           decision=Decision(**faults))  # type: ignore[arg-type]  # fmt: skip


def test_missing_artifact_is_404_naming_it() -> None:
    r = decide_response(None, "nope.bin", method="GET", range_header=None, if_range=None, decision=Decision())
    assert r.status == 404 and "nope.bin" in r.text and len(r.body) == 0


def test_full_get_sends_every_byte_with_strong_etag() -> None:
    r = reply()
    assert r.status == 200 and bytes(r.body) == DATA and r.send == len(DATA) and not r.truncated
    assert r.headers["Content-Length"] == "1024" and r.headers["Accept-Ranges"] == "bytes"
    assert r.headers["ETag"] == ART.etag and ART.etag.startswith('"') and ART.etag != Artifact.of(b"x").etag


def test_range_is_206_with_content_range() -> None:
    r = reply(rng="bytes=100-199")
    assert r.status == 206 and bytes(r.body) == DATA[100:200]
    assert r.headers["Content-Range"] == "bytes 100-199/1024" and r.headers["Content-Length"] == "100"


@pytest.mark.parametrize("rng", ["bytes=1024-", "bytes=5000-6000"])
def test_unsatisfiable_range_is_416_with_size(rng: str) -> None:
    r = reply(rng=rng)
    assert r.status == 416 and r.headers["Content-Range"] == "bytes */1024" and len(r.body) == 0


def test_if_range_of_another_image_serves_it_whole() -> None:
    assert reply(rng="bytes=10-", if_range=ART.etag).status == 206
    r = reply(rng="bytes=10-", if_range='"some-older-image"')
    assert r.status == 200 and bytes(r.body) == DATA and "Content-Range" not in r.headers


def test_head_has_headers_and_no_body() -> None:
    r = reply("HEAD", rng="bytes=0-9")
    assert r.status == 206 and r.headers["Content-Length"] == "10" and len(r.body) == 0 and r.send == 0


def test_injected_status_carries_retry_after_and_names_the_fault() -> None:
    r = reply(status=503, retry_after=7, fired=["http_error"])
    assert r.status == 503 and r.headers == {"Retry-After": "7"} and r.fired == ("http_error",) and len(r.body) == 0


def test_ignore_range_serves_whole_and_drops_accept_ranges() -> None:
    r = reply(rng="bytes=10-", ignore_range=True)
    assert r.status == 200 and len(r.body) == len(DATA) and "Accept-Ranges" not in r.headers


def test_truncate_and_rate_shape_the_send() -> None:
    r = reply(rng="bytes=0-511", truncate_after=100, rate=2048.0)
    assert r.status == 206 and r.headers["Content-Length"] == "512"  # promised, then cut
    assert r.send == 100 and r.truncated and r.rate == 2048.0
    assert reply(truncate_after=5000).send == len(DATA)
