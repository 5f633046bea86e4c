"""What a feature module may use of the running firmware: a narrow protocol instead of the core itself.

The shell commands (:mod:`harness.twin.commands`), the heap model (:mod:`harness.twin.heap`), the
trial-boot checks (:mod:`harness.twin.trial`) and the OTA client (:mod:`harness.twin.ota_client`)
are parts of the core that :class:`harness.twin.device.Device` is built from; they take a
:class:`Firmware` (which ``Device`` satisfies) and never import ``Device``, so the imports of the
core form no circle and each feature can be driven by a smaller double.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Protocol

from harness.twin.events import Action
from harness.twin.flash import Flash, FlashLayout
from harness.twin.image import ImageInfo
from harness.twin.records import BootControl

if TYPE_CHECKING:
    from harness.twin.dump import DumpJob
    from harness.twin.session import MqttSession


class Firmware(Protocol):
    """One boot of the device as its features see it: what it booted, its flash, its console and timers."""

    layout: FlashLayout
    flash: Flash
    device_id: str
    rng: random.Random  # this boot's entropy-seeded random stream
    boot_id: str
    reset_cause: str
    slot: str  # the slot running
    image: ImageInfo | None  # the image running (None before the bootloader chose one)
    bootctl: BootControl
    config: dict[str, str]
    wall_offset: float  # Unix time minus the runtime's clock
    session: MqttSession | None
    dump: DumpJob | None  # the dump streaming, if any

    def uptime(self, now: float) -> float: ...

    def say(self, out: list[Action], line: str) -> None:
        """One console line."""
        ...

    def error(self, out: list[Action], message: str) -> None:
        """One ``ERR <message>`` console line (counted as a command error)."""
        ...

    def start_timer(self, out: list[Action], name: str, delay: float) -> None: ...

    def cancel_timer(self, out: list[Action], name: str) -> None: ...

    def start_dump(self, out: list[Action], requested: int) -> None: ...

    def reboot(self, out: list[Action], reason: str, now: float) -> None:
        """A software or watchdog reset (the reports not sent yet survive it in noinit RAM)."""
        ...
