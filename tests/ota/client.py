"""A plain ``http.client`` downloader for the artifact server tests: one request, or a resuming loop."""

from __future__ import annotations

import http.client
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class Fetched:
    """One response: status, headers (lower-case names), the body bytes received, whether all arrived."""

    status: int
    headers: dict[str, str]
    body: bytes
    complete: bool

    @property
    def declared(self) -> int | None:
        value = self.headers.get("content-length")
        return None if value is None else int(value)


def fetch(url: str, *, method: str = "GET", headers: dict[str, str] | None = None, timeout: float = 5.0) -> Fetched:
    """One request on a fresh connection; a body cut short comes back with ``complete=False``."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        conn.request(method, parts.path, headers=headers or {})
        resp = conn.getresponse()
        got = {k.lower(): v for k, v in resp.getheaders()}
        try:
            body, complete = resp.read(), True
        except http.client.IncompleteRead as exc:
            body, complete = exc.partial, False
        return Fetched(resp.status, got, body, complete)
    finally:
        conn.close()


@dataclass
class Download:
    """What a resuming download did: the bytes assembled, and each response's status."""

    data: bytes = b""
    statuses: list[int] = field(default_factory=list)
    restarts: int = 0


def download_resuming(url: str, *, attempts: int = 10) -> Download:
    """Download ``url`` as an OTA client would: resume with Range + If-Range, retry on 5xx, restart on 200.

    Raises AssertionError naming the statuses seen when ``attempts`` requests were not enough.
    """
    out = Download()
    etag: str | None = None
    total: int | None = None
    for _ in range(attempts):
        headers = {}
        if out.data and etag is not None:
            headers = {"Range": f"bytes={len(out.data)}-", "If-Range": etag}
        got = fetch(url, headers=headers)
        out.statuses.append(got.status)
        if got.status >= 500:
            continue
        if got.status == 200:
            if out.data:
                out.restarts += 1
            out.data, total = got.body, got.declared
        elif got.status == 206:
            first = int(got.headers["content-range"].split()[1].split("-")[0])
            assert first == len(out.data), f"resumed at {first}, expected {len(out.data)}"
            out.data += got.body
            total = int(got.headers["content-range"].rsplit("/", 1)[1])
        else:
            raise AssertionError(f"unexpected status {got.status} after {out.statuses}")
        etag = got.headers.get("etag")
        if total is not None and len(out.data) == total:
            return out
    raise AssertionError(
        f"download of {url} incomplete after {attempts} requests: statuses {out.statuses}, "
        f"{len(out.data)} of {total} bytes"
    )
