"""The digital twin: a reference IoT device whose firmware core is a sans-IO state machine.

Imports nothing from the rest of ``harness``. Runtimes: ``harness.twin.serve`` (a rig process:
pty console + SCPI power supply + firmware child process); a simpy runtime can drive
:class:`Device` the same way.
"""

from harness.twin.device import BOOT_DONE, PROMPT, Device, DeviceStatistics
from harness.twin.events import (
    Action,
    CancelTimer,
    ConsoleInput,
    ConsoleOutput,
    Event,
    FlashWrite,
    Halt,
    NetConnect,
    NetConnected,
    NetDisconnect,
    NetDisconnected,
    NetMessage,
    NetPublish,
    NetPublished,
    NetSubscribe,
    PowerOn,
    Reboot,
    StartTimer,
    StateChange,
    TimerFired,
    Will,
)
from harness.twin.factory import factory_flash, install_image
from harness.twin.flash import FlashLayout
from harness.twin.image import ImageFault, ImageInfo, Variant, build_image, parse_image
from harness.twin.states import IllegalMove

__all__ = [
    "BOOT_DONE",
    "PROMPT",
    "Action",
    "CancelTimer",
    "ConsoleInput",
    "ConsoleOutput",
    "Device",
    "DeviceStatistics",
    "Event",
    "FlashLayout",
    "FlashWrite",
    "Halt",
    "IllegalMove",
    "ImageFault",
    "ImageInfo",
    "NetConnect",
    "NetConnected",
    "NetDisconnect",
    "NetDisconnected",
    "NetMessage",
    "NetPublish",
    "NetPublished",
    "NetSubscribe",
    "PowerOn",
    "Reboot",
    "StartTimer",
    "StateChange",
    "TimerFired",
    "Variant",
    "Will",
    "build_image",
    "factory_flash",
    "install_image",
    "parse_image",
]
