"""The OTA job contract over MQTT on the device side: topics, the job document, status payloads.

``devices/<id>/ota/job`` (QoS 1, retained by whoever deploys): one JSON object ::

    {"job_id": "j-42", "version": "2.0.0", "url": "http://host:port/fw.img",
     "size": 1048896, "sha256": "<64 hex>", "signature": "<128 hex>"}

``job_id`` names the deployment (the device acts on each id once, so a redelivered or retained job
is not installed twice, and a job it refused stays refused); ``url`` is ``http://``, at most 1024
characters of printable ASCII without spaces, quotes or backslashes; ``size``/``sha256`` are the image
*file*'s; ``signature`` (optional) is the image's Ed25519 signature, which must be the one the
downloaded image carries. An empty payload is the deployer clearing its retained job: nothing to do.
:func:`parse_job` never raises: whatever the payload (not JSON, nested too deeply, larger than
:data:`MAX_DOCUMENT`), the answer is a job, a :class:`BadJob` with a one-line reason, or None.

``devices/<id>/ota/status`` (QoS 1, retained): one JSON object per report ::

    {"job_id": "j-42", "phase": "downloading", "version": "2.0.0", "percent": 40, "reason": "",
     "fw": "1.0.0", "boot_id": "…", "ts": 1700000000.123}

``phase`` is ``downloading``, ``verifying``, ``rebooting``, ``trial``, ``committed``, ``rolled_back``,
``rejected`` or ``failed``; ``fw`` and ``boot_id`` are those of the boot that made the report (a
report queued before a software reset goes out from the next boot unchanged). A job that is refused
before it starts (malformed, busy) gets a ``rejected`` report carrying its ``job_id`` when it had one;
the same id again gets the same report. The outcome of the last job is reported again at every boot.
Compact JSON, fields in this order.

This module is the whole contract, both ends of it: the device parses jobs (:func:`parse_job`) and
encodes reports (:func:`encode_status`); the deployer (``harness.services.ota_jobs``) encodes jobs
(:func:`encode_job`) and parses reports (:func:`parse_status`) with the same rules.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MAX_JOB_ID = 64
MAX_VERSION = 32
MAX_DOCUMENT = 4096  # bytes: a job with every field at its longest is under 1,500
SIGNATURE_HEX = 128
JOB_ID = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")
VERSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+\-_]{0,31}")
#: What a URL may be made of: printable ASCII but space, ``"`` and ``\`` (nothing the job record must
#: escape, nothing that could end the HTTP request line or a console line).
URL_TEXT = re.compile(r"[!#-\[\]-~]+")
URL_RULE = "printable ASCII without spaces, quotes or backslashes"
FIELDS = ("job_id", "version", "url", "size", "sha256", "signature")
REQUIRED = ("job_id", "version", "url", "size", "sha256")
#: The phases a status report may carry, the outcomes (a job is over) last.
REPORT_OUTCOMES = ("committed", "rolled_back", "rejected", "failed")
REPORT_PHASES = ("downloading", "verifying", "rebooting", "trial", *REPORT_OUTCOMES)


def job_topic(device_id: str) -> str:
    return f"devices/{device_id}/ota/job"


def status_topic(device_id: str) -> str:
    return f"devices/{device_id}/ota/status"


@dataclass(frozen=True)
class JobRequest:
    """A well-formed job document (the URL, hash and size are checked by the OTA client)."""

    job_id: str
    version: str
    url: str
    size: int
    sha256: str
    signature: str = ""


@dataclass(frozen=True)
class BadJob:
    """Why a job document cannot be acted on; ``job_id`` when the document named one."""

    reason: str
    job_id: str = ""


def parse_job(payload: bytes) -> JobRequest | BadJob | None:
    """The job in ``payload``; None for an empty payload (a cleared retained job). Never raises."""
    if not payload:
        return None
    if len(payload) > MAX_DOCUMENT:
        return BadJob(f"job: document of {len(payload)} bytes is longer than the {MAX_DOCUMENT} a job can be")
    try:
        return _parse(payload)
    except RecursionError:
        return BadJob("job: not JSON (nested too deeply)")
    except Exception as exc:  # a retained job that crashed the firmware would crash it at every connect
        return BadJob(f"job: unreadable ({type(exc).__name__})")


def _parse(payload: bytes) -> JobRequest | BadJob:
    try:
        body = json.loads(payload)
    except (UnicodeDecodeError, ValueError) as exc:
        return BadJob(f"job: not JSON ({str(exc).splitlines()[0][:80]})")
    if not isinstance(body, dict):
        return BadJob(f"job: expected a JSON object, got {type(body).__name__}")
    job_id = body.get("job_id")
    named = job_id if isinstance(job_id, str) and JOB_ID.fullmatch(job_id) else ""
    problem = _problem(body)
    if problem is not None:
        return BadJob(f"job: {problem}", named)
    return JobRequest(
        job_id=body["job_id"],
        version=body["version"],
        url=body["url"],
        size=body["size"],
        sha256=body["sha256"].lower(),
        signature=str(body.get("signature") or "").lower(),
    )


def _problem(body: dict[str, object]) -> str | None:
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        return f"unknown field {unknown[0][:40]!r} (expected {', '.join(FIELDS)})"
    missing = [name for name in REQUIRED if name not in body]
    if missing:
        return f"missing field {missing[0]!r}"
    job_id, version, url, size = body["job_id"], body["version"], body["url"], body["size"]
    if not isinstance(job_id, str) or not JOB_ID.fullmatch(job_id):
        return f"job_id expects 1-{MAX_JOB_ID} of A-Z a-z 0-9 _ . : - (got {str(job_id)[:80]!r})"
    if not isinstance(version, str) or not VERSION.fullmatch(version):
        return f"version expects up to {MAX_VERSION} characters like 2.0.0 (got {str(version)[:80]!r})"
    if not isinstance(url, str):
        return f"url expects a string (got {type(url).__name__})"
    if not URL_TEXT.fullmatch(url):
        return f"url expects {URL_RULE} (got {url[:60]!r})"
    if isinstance(size, bool) or not isinstance(size, int):
        return f"size expects a whole number of bytes (got {size!r})"
    for name, length in (("sha256", 64), ("signature", SIGNATURE_HEX)):
        value = body.get(name)
        if name == "signature" and value in (None, ""):
            continue
        if not isinstance(value, str) or len(value) != length or not _is_hex(value):
            return f"{name} expects {length} hex digits (got {str(value)[:80]!r})"
    return None


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text.lower())


def encode_status(job_id: str, phase: str, version: str, percent: int, reason: str, *, fw: str, boot_id: str,
                  ts: float) -> bytes:  # fmt: skip
    body = {"job_id": job_id, "phase": phase, "version": version, "percent": percent, "reason": reason,
            "fw": fw, "boot_id": boot_id, "ts": round(ts, 3)}  # fmt: skip
    return json.dumps(body, separators=(",", ":")).encode()


def encode_job(job: Mapping[str, Any]) -> bytes:
    """The job document the deployer publishes: compact JSON, the contract's fields in their order
    (any other key the caller put in is kept after them, for tests of what a device does with it)."""
    ordered = {name: job[name] for name in FIELDS if name in job}
    ordered.update({k: v for k, v in job.items() if k not in ordered})
    return json.dumps(ordered, separators=(",", ":")).encode()


class BadStatus(ValueError):
    """A status payload that breaks the contract; ``str()`` is one line naming the field."""


def parse_status(raw: bytes) -> dict[str, Any]:
    """The report's JSON object, checked (phase, percent 0-100, ts Unix seconds); any payload that
    breaks the contract raises :class:`BadStatus`, nothing else."""
    try:
        return _parse_status(raw)
    except BadStatus:
        raise
    except Exception as exc:  # RecursionError from deep nesting, OverflowError from a huge ts, ...
        reason = (str(exc).splitlines() or [type(exc).__name__])[0][:80]
        raise BadStatus(f"ota status: unreadable payload ({type(exc).__name__}: {reason})") from None


def _parse_status(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadStatus(f"ota status: expected a JSON object ({str(exc).splitlines()[0][:80]})") from None
    if not isinstance(body, dict):
        raise BadStatus(f"ota status: expected a JSON object, got {type(body).__name__}")
    phase = body.get("phase")
    if phase not in REPORT_PHASES:
        raise BadStatus(f"ota status: phase expected one of {', '.join(sorted(REPORT_PHASES))} (got {phase!r})")
    percent = body.get("percent", 0)
    if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
        raise BadStatus(f"ota status: percent expected a whole number 0-100 (got {percent!r})")
    ts = body.get("ts")
    if ts is not None and (isinstance(ts, bool) or not isinstance(ts, int | float) or not _finite(ts)):
        raise BadStatus(f"ota status: ts expected Unix seconds (got {str(ts)[:40]!r})")
    return body


def _finite(value: float) -> bool:
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False
