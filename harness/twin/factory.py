"""Factory programming: a fresh flash image with firmware in slot A (and helpers to install more)."""

from __future__ import annotations

from harness.twin.flash import ERASED, Flash, FlashLayout
from harness.twin.image import DEFAULT_PAYLOAD_SIZE, HEADER_SIZE, ImageInfo, build_image, parse_image
from harness.twin.records import BootControl, write_bootctl

FACTORY_VERSION = "1.0.0"


def factory_flash(layout: FlashLayout | None = None, image: bytes | None = None) -> bytearray:
    """Erased flash + ``image`` in slot A + a boot-control record.

    The default image is ``build_image("1.0.0")`` with a 1 MiB payload, shrunk to fit smaller slots.
    """
    layout = layout or FlashLayout()
    if image is None:
        image = build_image(FACTORY_VERSION, size=min(DEFAULT_PAYLOAD_SIZE, layout.slot_size - HEADER_SIZE))
    data = bytearray([ERASED]) * layout.total_size
    install_image(data, layout, "A", image)
    info = parse_image(image)
    counter = info.security_counter if isinstance(info, ImageInfo) else 0
    flash = Flash(data, layout)
    write_bootctl(flash, BootControl(active_slot="A", security_counter=counter))
    return bytearray(flash.snapshot())


def install_image(data: bytearray, layout: FlashLayout, slot: str, image: bytes) -> None:
    """Write ``image`` into ``slot`` of a raw flash image, erasing the rest of the slot."""
    if len(image) > layout.slot_size:
        raise ValueError(f"image of {len(image)} bytes does not fit a {layout.slot_size}-byte slot")
    start = layout.slot_offset(slot)
    data[start : start + layout.slot_size] = image + bytes([ERASED]) * (layout.slot_size - len(image))
