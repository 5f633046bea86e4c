"""The OTA client's vocabulary: HTTP range requests out of the core, their answers in, OTA status out.

Re-exported by :mod:`harness.twin.events` and members of its ``Event``/``Action`` unions; kept in a
module of their own so the OTA feature adds lines, not rewrites, to the shared vocabulary.

One request is identified by ``ref`` (chosen by the core, unique within a boot). The runtime answers
an :class:`HttpGet` with exactly one :class:`HttpResponse` (status line and headers), then zero or
more :class:`HttpChunk` (body bytes, in order), then :class:`HttpDone` (the whole declared body
arrived) -- or, at any point, :class:`HttpFailed` (no connection, bad response, body cut short),
after which nothing more comes for that ``ref``. :class:`HttpCancel` ends a request early; no event
follows it.
"""

from __future__ import annotations

from dataclasses import dataclass

# --------------------------------------------------------------------------- events (into the core)


@dataclass(frozen=True)
class HttpResponse:
    """Status and the headers the OTA client needs.

    ``start``: first byte of the body within the file (``Content-Range`` of a 206, else 0);
    ``total``: size of the whole file (``Content-Range`` ``/size`` of a 206 or 416, ``Content-Length``
    of a 200), None when unknown; ``etag``: the strong ETag, or None; ``retry_after``: seconds from
    ``Retry-After``, or None.
    """

    ref: int
    status: int
    start: int = 0
    total: int | None = None
    etag: str | None = None
    retry_after: float | None = None


@dataclass(frozen=True)
class HttpChunk:
    """The next body bytes of request ``ref``."""

    ref: int
    data: bytes


@dataclass(frozen=True)
class HttpDone:
    """Request ``ref``'s body arrived completely (as many bytes as declared)."""

    ref: int


@dataclass(frozen=True)
class HttpFailed:
    """Request ``ref`` failed: connect error, malformed response, timeout, or the body was cut short."""

    ref: int
    reason: str


HttpEvent = HttpResponse | HttpChunk | HttpDone | HttpFailed

# --------------------------------------------------------------------------- actions (out of the core)


@dataclass(frozen=True)
class HttpGet:
    """``GET url`` with ``Range: bytes=<range_start>-[<range_end>]`` when ``range_start`` > 0 or
    ``range_end`` is set, and ``If-Range: <if_range>`` when given (a changed file then answers 200)."""

    ref: int
    url: str
    range_start: int = 0
    range_end: int | None = None
    if_range: str | None = None


@dataclass(frozen=True)
class HttpCancel:
    """Abandon request ``ref`` (close its connection); no event follows."""

    ref: int


@dataclass(frozen=True)
class OtaStatus:
    """An OTA progress or outcome report for the runtime to publish (e.g. on ``devices/<id>/ota/status``).

    ``phase``: ``downloading``, ``verifying``, ``rebooting``, ``trial``, ``committed``, ``rolled_back``,
    ``rejected`` or ``failed``; ``percent``: download progress 0-100; ``reason``: why (rejected,
    rolled back, failed), else empty.
    """

    phase: str
    version: str
    percent: int = 0
    reason: str = ""
