"""The in-memory pump with an HTTP artifact server in simulated time, for the OTA client's core tests.

:class:`MemoryHttp` answers :class:`~harness.twin.HttpGet` like ``harness.services.artifacts`` does
(strong ETag, a single ``Range``, ``If-Range``, 206/200/416, 404), with faults put in the server, not
in mocks: answer the next requests with error statuses, cut a body after some bytes, ignore ``Range``.
Its answers are events in the pump's simulated time (one chunk per millisecond).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from harness.twin import Action, FlashLayout, Reboot, build_image, factory_flash
from harness.twin.flash import Flash
from harness.twin.http_events import HttpCancel, HttpChunk, HttpDone, HttpFailed, HttpGet, HttpResponse, OtaStatus
from harness.twin.records import write_config

from .pump import Pump

LAYOUT = FlashLayout(slot_pages=24)  # 96 KiB slots: a 64 KiB image is 17 pages
PAYLOAD = 64 * 1024
URL = "http://artifacts.test/fw.img"
HTTP_EVENTS = (HttpResponse, HttpChunk, HttpDone, HttpFailed)


def etag_of(data: bytes) -> str:
    return '"' + hashlib.sha256(data).hexdigest()[:32] + '"'


@dataclass
class MemoryHttp:
    files: dict[str, bytes] = field(default_factory=dict)
    chunk: int = 1460  # body bytes per HttpChunk
    statuses: list[tuple[int, float | None]] = field(default_factory=list)  # (status, retry_after) to answer next
    cut_after: list[int] = field(default_factory=list)  # the next bodies die after this many bytes
    ignore_range: bool = False
    etag: str | None = None  # the ETag to send instead of the content's own (None: the content's)
    requests: list[HttpGet] = field(default_factory=list)
    answered: list[int] = field(default_factory=list)  # status of every response

    def publish(self, url: str, data: bytes) -> str:
        self.files[url] = data
        return url


@dataclass
class OtaPump(Pump):
    http: MemoryHttp = field(default_factory=MemoryHttp)
    ota: list[OtaStatus] = field(default_factory=list)

    def apply(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, HttpGet):
                self._get(action)
            elif isinstance(action, HttpCancel):
                self.net_events = [
                    e for e in self.net_events if not (isinstance(e[2], HTTP_EVENTS) and e[2].ref == action.ref)
                ]
            elif isinstance(action, OtaStatus):
                self.ota.append(action)
            else:
                super().apply([action])
                if isinstance(action, Reboot):
                    return

    def _get(self, get: HttpGet) -> None:
        http = self.http
        http.requests.append(get)
        data = http.files.get(get.url)
        events: list[HttpResponse | HttpChunk | HttpDone | HttpFailed] = []
        if data is None:
            events = [HttpResponse(get.ref, 404), HttpDone(get.ref)]
        elif http.statuses:
            status, retry_after = http.statuses.pop(0)
            events = [HttpResponse(get.ref, status, retry_after=retry_after), HttpDone(get.ref)]
        else:
            etag = etag_of(data) if http.etag is None else http.etag
            ranged = get.range_start > 0 or get.range_end is not None
            if ranged and get.if_range is not None and get.if_range != etag:
                ranged = False
            if ranged and not http.ignore_range and get.range_start >= len(data):
                events = [HttpResponse(get.ref, 416, total=len(data)), HttpDone(get.ref)]
            else:
                start = get.range_start if ranged and not http.ignore_range else 0
                end = len(data) if get.range_end is None or not ranged else get.range_end + 1
                body = data[start:end]
                events = [HttpResponse(get.ref, 206 if start or end < len(data) else 200, start, len(data), etag)]
                limit = http.cut_after.pop(0) if http.cut_after else None
                sent = body if limit is None else body[:limit]
                events += [HttpChunk(get.ref, sent[i : i + http.chunk]) for i in range(0, len(sent), http.chunk)]
                events.append(HttpDone(get.ref) if limit is None else HttpFailed(get.ref, "connection reset"))
        http.answered.append(events[0].status if isinstance(events[0], HttpResponse) else 0)
        for index, event in enumerate(events):
            self.schedule(0.001 * (index + 1), event)


def provisioned_flash(public_raw: bytes, *, factory_counter: int = 0, config: dict[str, str] | None = None) -> bytearray:
    """Factory flash in :data:`LAYOUT`: 1.0.0 in slot A and the OTA public key in the config store."""
    image = build_image("1.0.0", size=PAYLOAD, security_counter=factory_counter)
    flash = Flash(factory_flash(LAYOUT, image), LAYOUT)
    write_config(flash, {"ota.pubkey": public_raw.hex(), **(config or {})})
    return bytearray(flash.snapshot())


def job_document(job_id: str, url: str, data: bytes, version: str, changes: dict[str, object] | None = None) -> bytes:
    """The JSON job the harness publishes on ``devices/<id>/ota/job`` (``changes`` override fields,
    None removes one)."""
    import json

    from harness.twin.image import parse_image

    info = parse_image(data)
    signature = getattr(info, "signature", None)
    body: dict[str, object] = {"job_id": job_id, "version": version, "url": url, "size": len(data),
                               "sha256": hashlib.sha256(data).hexdigest(),
                               "signature": signature.hex() if signature else ""}  # fmt: skip
    body.update(changes or {})
    return json.dumps({k: v for k, v in body.items() if v is not None}).encode()


def apply_line(url: str, data: bytes, version: str) -> bytes:
    return f"ota apply {url} {hashlib.sha256(data).hexdigest()} {len(data)} {version}\r".encode()
