"""What the artifact server answers to one request, decided without a transport.

:func:`decide_response` takes the artifact (or None), the request's method, ``Range`` and ``If-Range``
headers and the fault plan's :class:`~harness.services.artifact_faults.Decision`, and returns a
:class:`Reply`: status, headers, the body span to send, where a ``TruncateBody`` fault cuts it and
the rate a ``SlowBody`` fault paces it at. The aiohttp server (:mod:`harness.services.artifacts`)
writes the reply to a socket; the simulated server of a virtual rig delivers it over a simulated
link. One decision, two carriers: 404, injected error statuses with ``Retry-After``, single ranges
(206 + ``Content-Range``, 416 when unsatisfiable), strong ``ETag`` and ``If-Range``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from harness.services.artifact_faults import Decision

_RANGE = re.compile(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*")


@dataclass(frozen=True)
class Artifact:
    """One file's bytes as served, with its strong ETag (from the SHA-256 of the content)."""

    data: bytes
    etag: str

    @classmethod
    def of(cls, data: bytes) -> Artifact:
        return cls(data, f'"{hashlib.sha256(data).hexdigest()[:32]}"')


class RangeNotSatisfiable(ValueError):
    """A ``Range`` no byte of the artifact can satisfy (answered with 416)."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(first, last)`` inclusive for one ``bytes=a-b`` / ``a-`` / ``-n`` range; ``None`` to serve it all.

    Multiple ranges and malformed headers are ignored (RFC 9110 allows it); a range starting past the
    end raises ``RangeNotSatisfiable``.
    """
    if header is None:
        return None
    m = _RANGE.fullmatch(header)
    if not m or (not m.group(1) and not m.group(2)):
        return None
    first_text, last_text = m.group(1), m.group(2)
    if not first_text:  # suffix: the last n bytes
        n = int(last_text)
        if n == 0 or size == 0:
            raise RangeNotSatisfiable
        return max(0, size - n), size - 1
    first = int(first_text)
    last = size - 1 if not last_text else min(int(last_text), size - 1)
    if last_text and int(last_text) < first:
        return None  # invalid, so ignored
    if first >= size:
        raise RangeNotSatisfiable
    return first, last


@dataclass(frozen=True)
class Reply:
    """The answer to one request. ``body`` is what a complete answer would carry (empty for HEAD and
    errors); ``send`` is how many of its bytes to send before closing the connection (``len(body)``
    unless a fault truncates it); ``rate`` paces them (bytes per second, None: as fast as the link)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: memoryview = field(default_factory=lambda: memoryview(b""))
    text: str = ""  # a short text body of an error reply
    send: int = 0
    rate: float | None = None
    fired: tuple[str, ...] = ()

    @property
    def truncated(self) -> bool:
        """The connection closes after ``send`` bytes of a longer body (the client sees a short body)."""
        return self.send < len(self.body)


def decide_response(art: Artifact | None, name: str, *, method: str, range_header: str | None,
                    if_range: str | None, decision: Decision) -> Reply:  # fmt: skip
    """The reply to ``method`` (GET or HEAD) of ``name``; ``decision`` is what the fault plan decided
    for this request (ask it only when the artifact exists, as the server does)."""
    if art is None:
        return Reply(404, text=f"no artifact {name!r}\n")
    fired = tuple(decision.fired)
    if decision.status is not None:
        headers = {"Retry-After": str(decision.retry_after)} if decision.retry_after is not None else {}
        return Reply(decision.status, headers, text="injected fault\n", fired=fired)
    size = len(art.data)
    headers = {"ETag": art.etag, "Content-Type": "application/octet-stream"}
    if not decision.ignore_range:
        headers["Accept-Ranges"] = "bytes"
    span: tuple[int, int] | None = None
    # If-Range: the range holds only while the artifact is the one the client started on (a date never matches)
    if range_header is not None and not decision.ignore_range and (if_range is None or if_range.strip() == art.etag):
        try:
            span = parse_range(range_header, size)
        except RangeNotSatisfiable:
            return Reply(416, {**headers, "Content-Range": f"bytes */{size}"}, fired=fired)
    first, last = span if span is not None else (0, size - 1)
    if span is not None:
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    headers["Content-Length"] = str(last + 1 - first)
    if method == "HEAD":
        return Reply(206 if span is not None else 200, headers, fired=fired)
    body = memoryview(art.data)[first : last + 1]
    send = len(body) if decision.truncate_after is None else min(len(body), decision.truncate_after)
    return Reply(206 if span is not None else 200, headers, body, send=send, rate=decision.rate, fired=fired)
