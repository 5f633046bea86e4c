"""Helpers shared by the device tests that watch the twin's MQTT link."""

from __future__ import annotations

import json
from typing import Any


def mqtt_state(dut: Any) -> dict[str, Any]:
    """The twin's ``mqtt`` shell command: link state and counters as one JSON line."""
    reply = dut.command("mqtt").strip().splitlines()
    return dict(json.loads(reply[-1]))


def produced_after(t: float) -> Any:
    """A telemetry predicate: a message the device produced after ``t`` (Unix seconds)."""

    def check(message: Any) -> bool:
        return bool(message.ts > t)

    check.__name__ = f"produced_after_{t:.3f}"
    return check
