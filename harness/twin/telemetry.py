"""The telemetry message contract on the device side: topics, readings and payloads.

``devices/<id>/telemetry`` (QoS 1, not retained): ``device``, ``boot_id``, ``seq``, ``uptime``,
``heap_free``, ``battery_v``, ``rssi``, ``temp_c``, ``fw``, ``ts`` (Unix time the reading was
produced), ``dropped`` and, when anything was dropped since the previous hand-off,
``dropped_ranges``. ``devices/<id>/status`` (QoS 1, retained): online on connect, offline as the
last will or before a clean disconnect. Compact JSON, fields in this order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from harness.twin.buffer import Ranges


def telemetry_topic(device_id: str) -> str:
    return f"devices/{device_id}/telemetry"


def status_topic(device_id: str) -> str:
    return f"devices/{device_id}/status"


def _dump(body: dict[str, object]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Identity:
    """Who is reporting: the same for every message of one boot."""

    device_id: str
    boot_id: str
    fw: str


def encode_telemetry(reading: dict[str, object], dropped: int, ranges: Ranges) -> bytes:
    """The wire payload: the reading, then the drop report as it stands at hand-off time."""
    body = {**reading, "dropped": dropped}
    if ranges:
        body["dropped_ranges"] = [list(r) for r in ranges]
    return _dump(body)


def online(identity: Identity, ts: float, connects: int) -> bytes:
    """Retained status published right after each CONNACK; ``connects`` counts this boot's connections."""
    return _dump({"state": "online", "boot_id": identity.boot_id, "ts": round(ts, 3), "connects": connects})


def last_will(identity: Identity) -> bytes:
    return _dump({"state": "offline", "reason": "lwt", "boot_id": identity.boot_id})


def clean_offline(identity: Identity, ts: float) -> bytes:
    return _dump({"state": "offline", "reason": "clean", "boot_id": identity.boot_id, "ts": round(ts, 3)})
