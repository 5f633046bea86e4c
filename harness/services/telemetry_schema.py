"""The device telemetry message contract, checked field by field (see docs/telemetry.md).

A real board will sometimes send garbage. :func:`parse_telemetry` and :func:`parse_status` turn
raw MQTT payloads into dicts or raise :class:`MalformedMessage` with one line naming the field and
what was expected; the collector keeps such messages raw in the journal and counts them.
"""

from __future__ import annotations

import json
import math
from typing import Any

TELEMETRY_TOPIC = "devices/+/telemetry"
STATUS_TOPIC = "devices/+/status"


class MalformedMessage(ValueError):
    """A payload that breaks the message contract; ``str()`` is one line naming the field."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


# field -> (check, what was expected)
_REQUIRED: dict[str, tuple[Any, str]] = {
    "device": (lambda v: isinstance(v, str) and v != "", "a non-empty string"),
    "boot_id": (lambda v: isinstance(v, str) and v != "", "a non-empty string"),
    "seq": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "uptime": (lambda v: _is_number(v) and v >= 0, "seconds >= 0"),
    "heap_free": (lambda v: _is_int(v) and v >= 0, "bytes, an integer >= 0"),
    "battery_v": (_is_number, "volts, a number"),
    "rssi": (_is_number, "dBm, a number"),
    "temp_c": (_is_number, "degrees C, a number"),
    "fw": (lambda v: isinstance(v, str) and v != "", "a version string"),
    "ts": (lambda v: _is_number(v) and v > 0, "Unix seconds, a number > 0"),
    "dropped": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
}


def device_of(topic: str) -> str | None:
    """``devices/<id>/...`` -> ``<id>``; None for any other topic."""
    parts = topic.split("/")
    if len(parts) == 3 and parts[0] == "devices" and parts[1]:
        return parts[1]
    return None


def _load_object(raw: bytes) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedMessage(f"payload: expected UTF-8 JSON, got undecodable byte at {exc.start}") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedMessage(f"payload: expected a JSON object, got invalid JSON ({exc.msg} at {exc.pos})") from None
    if not isinstance(obj, dict):
        raise MalformedMessage(f"payload: expected a JSON object, got {type(obj).__name__}")
    return obj


def _check_ranges(value: Any) -> list[list[int]]:
    if not isinstance(value, list):
        raise MalformedMessage(f"dropped_ranges: expected a list of [first_seq, last_seq], got {value!r:.60}")
    ranges = []
    for i, item in enumerate(value):
        if not (
            isinstance(item, list)
            and len(item) == 2
            and all(_is_int(x) and x >= 1 for x in item)
            and item[0] <= item[1]
        ):
            raise MalformedMessage(
                f"dropped_ranges[{i}]: expected [first_seq, last_seq] with 1 <= first <= last, got {item!r:.60}"
            )
        ranges.append([item[0], item[1]])
    return ranges


def validate_telemetry(payload: Any, topic_device: str | None = None) -> dict[str, Any]:
    """Check a decoded telemetry object against the contract; returns it unchanged."""
    if not isinstance(payload, dict):
        raise MalformedMessage(f"payload: expected a JSON object, got {type(payload).__name__}")
    for field, (check, expected) in _REQUIRED.items():
        if field not in payload:
            raise MalformedMessage(f"{field}: expected {expected}, but the field is missing")
        if not check(payload[field]):
            raise MalformedMessage(f"{field}: expected {expected}, got {payload[field]!r:.60}")
    if "dropped_ranges" in payload:
        _check_ranges(payload["dropped_ranges"])
    if topic_device is not None and payload["device"] != topic_device:
        raise MalformedMessage(
            f"device: expected {topic_device!r} (the topic's device id), got {payload['device']!r:.60}"
        )
    return payload


def parse_telemetry(topic: str, raw: bytes) -> dict[str, Any]:
    """Decode and check one ``devices/<id>/telemetry`` payload."""
    device = device_of(topic)
    if device is None:
        raise MalformedMessage(f"topic: expected devices/<id>/telemetry, got {topic!r:.80}")
    return validate_telemetry(_load_object(raw), device)


STATES = ("online", "offline")


def parse_status(topic: str, raw: bytes) -> dict[str, Any]:
    """Decode and check one ``devices/<id>/status`` payload (an empty retained payload clears it)."""
    if device_of(topic) is None:
        raise MalformedMessage(f"topic: expected devices/<id>/status, got {topic!r:.80}")
    obj = _load_object(raw)
    state = obj.get("state")
    if state not in STATES:
        raise MalformedMessage(f"state: expected one of {', '.join(STATES)}, got {state!r:.40}")
    if state == "offline" and obj.get("reason") not in ("lwt", "clean", None):
        raise MalformedMessage(f"reason: expected 'lwt' or 'clean', got {obj.get('reason')!r:.40}")
    return obj
