"""Trial boots of a new image: the health checks that decide whether it is confirmed, and the variants.

After an OTA the bootloader boots the new slot as a *trial* (``trial_attempts`` counted down in the
boot-control record). The application confirms it only when every :data:`HEALTH_CHECKS` entry
passes; until then it polls every :data:`HEALTH_POLL` seconds, and after ``ota.health_window``
seconds (config, default :data:`DEFAULT_HEALTH_WINDOW`) of failing it resets itself (a watchdog
reset). Checks are plain functions ``(device, now) -> None | reason``: append to the list to add one.

Image variants act here: ``crash-on-boot`` (the application faults right after the bootloader hands
over; the watchdog resets the board :data:`WATCHDOG_TIMEOUT` later), ``fail-health`` (never healthy),
``slow-boot`` (``param`` ms more from banner to ``BOOT-DONE``); ``leak`` acts in the heap model
(:mod:`harness.twin.heap`).
"""

from __future__ import annotations

from collections.abc import Callable

from harness.twin.firmware import Firmware
from harness.twin.image import ImageInfo, Variant

HealthCheck = Callable[[Firmware, float], "str | None"]

HEALTH_POLL = 0.2  # seconds between health checks during a trial boot
DEFAULT_HEALTH_WINDOW = 5.0  # seconds a trial boot may take to become healthy
WATCHDOG_TIMEOUT = 0.5  # seconds from a crash to the watchdog reset
HEALTH_WINDOW_KEY = "ota.health_window"


def variant_health(device: Firmware, now: float) -> str | None:
    """A ``fail-health`` image never passes."""
    if device.image is not None and device.image.variant == Variant.FAIL_HEALTH:
        return "application reports unhealthy (fail-health image)"
    return None


def mqtt_health(device: Firmware, now: float) -> str | None:
    """With a broker configured, the application must be connected to it."""
    if device.session is None:
        return None
    state = str(device.session.describe().get("state", ""))
    if state in ("disabled", "online"):
        return None
    return f"not connected to the MQTT broker (session {state})"


HEALTH_CHECKS: list[HealthCheck] = [variant_health, mqtt_health]


def health_window(config: dict[str, str]) -> float:
    """``ota.health_window`` from the config (0.1..3600 s), else the default."""
    try:
        value = float(config.get(HEALTH_WINDOW_KEY, DEFAULT_HEALTH_WINDOW))
    except ValueError:
        return DEFAULT_HEALTH_WINDOW
    return value if 0.1 <= value <= 3600 else DEFAULT_HEALTH_WINDOW


def failing(device: Firmware, now: float) -> list[str]:
    """The reasons of every failing health check (empty: healthy)."""
    return [reason for check in HEALTH_CHECKS if (reason := check(device, now)) is not None]


def extra_boot_time(image: ImageInfo | None) -> float:
    """Seconds a ``slow-boot`` image adds between the boot banner and ``BOOT-DONE``."""
    if image is not None and image.variant == Variant.SLOW_BOOT:
        return image.variant_param / 1000.0
    return 0.0


def crashes_on_boot(image: ImageInfo | None) -> bool:
    return image is not None and image.variant == Variant.CRASH_ON_BOOT
