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


_STR, _INT, _NUM = "str", "int", "num"
# field, kind, lower bound (None: any), what was expected: one table, checked in one pass
_FIELDS: tuple[tuple[str, str, float | None, bool, str], ...] = (
    ("device", _STR, None, False, "a non-empty string"),
    ("boot_id", _STR, None, False, "a non-empty string"),
    ("seq", _INT, 1, False, "an integer >= 1"),
    ("uptime", _NUM, 0, False, "seconds >= 0"),
    ("heap_free", _INT, 0, False, "bytes, an integer >= 0"),
    ("battery_v", _NUM, None, False, "volts, a number"),
    ("rssi", _NUM, None, False, "dBm, a number"),
    ("temp_c", _NUM, None, False, "degrees C, a number"),
    ("fw", _STR, None, False, "a version string"),
    ("ts", _NUM, 0, True, "Unix seconds, a number > 0"),
    ("dropped", _INT, 0, False, "an integer >= 0"),
)
_MISSING = object()


def _field_ok(value: Any, kind: str, low: float | None, strict: bool) -> bool:
    kind_of = type(value)
    if kind == _STR:
        return kind_of is str and value != ""
    ok = kind_of is int or (kind == _NUM and kind_of is float and math.isfinite(value))
    if not ok or low is None:
        return ok
    return bool(value > low) if strict else bool(value >= low)


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
    for field, kind, low, strict, expected in _FIELDS:
        value = payload.get(field, _MISSING)
        if value is _MISSING:
            raise MalformedMessage(f"{field}: expected {expected}, but the field is missing")
        if not _field_ok(value, kind, low, strict):
            raise MalformedMessage(f"{field}: expected {expected}, got {value!r:.60}")
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
