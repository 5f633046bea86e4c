"""Does an image fit the device's slot? One rule, one message, for every place that handles an image.

An A/B device downloads an update into its inactive slot, so an image file larger than the slot can
never be installed: ``harness ota build`` and ``verify``, the ``ota`` fixture, the artifact server and
the device's own OTA client each refuse it, naming both sizes (:func:`fit_problem`).

Where the slot size comes from: ``--slot-size`` on the command line, else the twin's slot of the rig
given with ``--rig`` (``twin.slot_pages`` x 4 KiB pages), else the twin's default slot
(:data:`TWIN_SLOT_SIZE`, 512 pages = 2 MiB): the images these commands build are in the twin's format.
A board rig (no ``twin:`` section) tells the harness no slot size, so for a board pass ``--slot-size``;
the board's own client still refuses what does not fit (see docs/ota.md).
"""

from __future__ import annotations

from typing import Any

from harness.errors import ConfigError
from harness.twin.flash import DEFAULT_SLOT_PAGES, PAGE_SIZE

TWIN_SLOT_SIZE = DEFAULT_SLOT_PAGES * PAGE_SIZE


def show_bytes(size: int) -> str:
    """``2097152 bytes (2 MiB)``: exact, with a readable size beside it."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size} bytes ({size / scale:.4g} {unit})"
    return f"{size} bytes"


def fit_problem(image_size: int, slot_size: int | None, *, slot: str = "slot") -> str | None:
    """Why an image file of ``image_size`` bytes cannot go into a ``slot_size``-byte slot; None if it fits."""
    if slot_size is None or image_size <= slot_size:
        return None
    return f"image of {show_bytes(image_size)} does not fit the {show_bytes(slot_size)} {slot}"


def check_fits(image_size: int, slot_size: int | None, *, where: str = "image", slot: str = "slot") -> None:
    """Raise a one-line ConfigError naming both sizes when the image does not fit."""
    problem = fit_problem(image_size, slot_size, slot=slot)
    if problem is not None:
        raise ConfigError(f"{where}: {problem}")


def rig_slot_size(spec: Any) -> int | None:
    """The slot size a rig's device has, when the rig says: a twin rig's ``twin.slot_pages`` pages."""
    twin = getattr(spec, "twin", None)
    if twin is None:
        return None
    return int(twin.slot_pages) * PAGE_SIZE
