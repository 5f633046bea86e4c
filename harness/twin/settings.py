"""The telemetry and MQTT settings: config keys, their defaults and ranges, in one table.

Values live in the persisted config store as strings (``config set KEY VALUE``) and are read at
boot. ``config set`` refuses a value outside its range with one line naming the range; a bad value
already in flash (written by another firmware) falls back to the default with a console warning.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Key:
    """One setting: its attribute name, default, kind (``int``/``float``/``str``), range and meaning."""

    attr: str
    default: float | int | str | None
    kind: type
    low: float = -math.inf
    high: float = math.inf
    meaning: str = ""


_HOST = re.compile(r"[A-Za-z0-9_.\-:]{1,128}")

KEYS: dict[str, Key] = {
    "mqtt.host": Key("host", None, str, meaning="broker host; unset: no MQTT at all"),
    "mqtt.port": Key("port", 1883, int, 1, 65535, "broker TCP port"),
    "mqtt.keepalive": Key("keepalive", 5, int, 1, 600, "MQTT keepalive, s (the broker's will fires ~1.5x later)"),
    "mqtt.backoff_min": Key("backoff_min", 0.5, float, 0.05, 60, "first reconnect delay, s"),
    "mqtt.backoff_max": Key("backoff_max", 5.0, float, 0.05, 600, "longest reconnect delay, s"),
    "telemetry.interval": Key("interval", 1.0, float, 0.05, 86400, "seconds between readings"),
    "telemetry.buffer": Key("buffer", 256, int, 1, 512, "store-and-forward capacity, messages"),
    "sensor.battery_full": Key("battery_full", 4.15, float, 0, 10, "battery voltage at power-on, V"),
    "sensor.battery_empty": Key("battery_empty", 3.3, float, 0, 10, "battery floor, V"),
    "sensor.battery_drain": Key("battery_drain", 0.02, float, 0, 100, "battery drain, V per hour of uptime"),
    "sensor.temp_mean": Key("temp_mean", 25.0, float, -60, 150, "mean temperature, C"),
    "sensor.temp_noise": Key("temp_noise", 0.3, float, 0, 50, "temperature noise (std dev), C"),
    "sensor.rssi_mean": Key("rssi_mean", -62.0, float, -130, 0, "mean RSSI, dBm"),
    "sensor.rssi_noise": Key("rssi_noise", 3.0, float, 0, 50, "RSSI noise (std dev), dB"),
}


@dataclass(frozen=True)
class Settings:
    """Typed settings of one boot (see :data:`KEYS` for meaning, defaults and ranges)."""

    host: str | None = None
    port: int = 1883
    keepalive: int = 5
    backoff_min: float = 0.5
    backoff_max: float = 5.0
    interval: float = 1.0
    buffer: int = 256
    battery_full: float = 4.15
    battery_empty: float = 3.3
    battery_drain: float = 0.02
    temp_mean: float = 25.0
    temp_noise: float = 0.3
    rssi_mean: float = -62.0
    rssi_noise: float = 3.0


def parse(key: str, text: str) -> float | int | str:
    """The typed value of ``text`` for ``key``, or ValueError with one line naming what was expected."""
    spec = KEYS[key]
    if spec.kind is str:
        if not _HOST.fullmatch(text):
            raise ValueError(f"{key} expects a host name or address (got {text!r})")
        return text
    try:
        value: float | int = int(text) if spec.kind is int else float(text)
    except ValueError:
        value = math.nan
    if not spec.low <= value <= spec.high:  # NaN fails this too
        what = "an integer" if spec.kind is int else "a number"
        raise ValueError(f"{key} expects {what} {spec.low:g}..{spec.high:g} ({spec.meaning}) (got {text!r})")
    return value


def check(key: str, text: str) -> str | None:
    """None if ``text`` is acceptable for ``key`` (unknown keys are free-form), else the error line."""
    if key not in KEYS:
        return None
    try:
        parse(key, text)
    except ValueError as exc:
        return str(exc)
    return None


def load(config: dict[str, str]) -> tuple[Settings, list[str]]:
    """Settings from the config store, and one warning per stored value that was ignored."""
    values: dict[str, object] = {}
    warnings: list[str] = []
    for key, spec in KEYS.items():
        if key not in config:
            continue
        try:
            values[spec.attr] = parse(key, config[key])
        except ValueError as exc:
            warnings.append(f"CONFIG {exc}; using the default")
    settings = Settings(**values)  # type: ignore[arg-type]
    if settings.backoff_max < settings.backoff_min:
        warnings.append("CONFIG mqtt.backoff_max below mqtt.backoff_min; using mqtt.backoff_min for both")
        settings = Settings(**{**values, "backoff_max": settings.backoff_min})  # type: ignore[arg-type]
    return settings, warnings
