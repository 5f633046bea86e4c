"""Flash geometry and the core's in-memory mirror of it.

Layout (page size 4096 bytes, page-program unit 256 bytes)::

    page 0, 1     boot-control record, copy 0 and copy 1
    page 2, 3     config record, copy 0 and copy 1
    page 4 ...    slot A  (slot_pages pages)
    ...           slot B  (slot_pages pages)

Every persistent change is programmed one unit at a time; :meth:`Flash.program` returns one
:class:`~harness.twin.events.FlashWrite` per unit so a runtime can cut power between any two.
Programming replaces bytes (erase is not modelled).
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.twin.events import FlashWrite

PAGE_SIZE = 4096
PROGRAM_UNIT = 256
DEFAULT_SLOT_PAGES = 512
ERASED = 0xFF
SLOTS = ("A", "B")


@dataclass(frozen=True)
class FlashLayout:
    """Where everything lives in the flash file."""

    slot_pages: int = DEFAULT_SLOT_PAGES
    page_size: int = PAGE_SIZE
    program_unit: int = PROGRAM_UNIT

    def __post_init__(self) -> None:
        if self.slot_pages < 1:
            raise ValueError(f"slot_pages: expected an integer >= 1 (got {self.slot_pages})")
        if self.page_size % self.program_unit:
            raise ValueError("page_size: expected a multiple of program_unit")

    @property
    def bootctl_offset(self) -> int:
        return 0

    @property
    def config_offset(self) -> int:
        return 2 * self.page_size

    @property
    def slot_size(self) -> int:
        return self.slot_pages * self.page_size

    def slot_offset(self, slot: str) -> int:
        """Byte offset of slot ``"A"`` or ``"B"``."""
        return 4 * self.page_size + SLOTS.index(slot) * self.slot_size

    @property
    def total_size(self) -> int:
        return 4 * self.page_size + 2 * self.slot_size

    @classmethod
    def for_size(cls, size: int) -> FlashLayout:
        """The default-geometry layout whose file is ``size`` bytes long (ValueError if none is)."""
        slot_bytes, rest = divmod(size - 4 * PAGE_SIZE, 2 * PAGE_SIZE)
        if rest or slot_bytes < 1:
            raise ValueError(f"flash size {size} is not 4 pages + 2 slots of whole {PAGE_SIZE}-byte pages")
        return cls(slot_pages=slot_bytes)


def other_slot(slot: str) -> str:
    return "B" if slot == "A" else "A"


class Flash:
    """In-memory mirror of the flash contents, counting program operations."""

    def __init__(self, data: bytes | bytearray, layout: FlashLayout) -> None:
        if len(data) != layout.total_size:
            raise ValueError(
                f"flash image is {len(data)} bytes; layout with slot_pages={layout.slot_pages} "
                f"needs {layout.total_size}"
            )
        self.layout = layout
        self._data = bytearray(data)
        self.writes = 0
        self.bytes_written = 0

    def read(self, offset: int, size: int) -> bytes:
        return bytes(self._data[offset : offset + size])

    def view(self, offset: int, size: int) -> memoryview:
        """Zero-copy read-only view (for hashing a slot)."""
        return memoryview(self._data)[offset : offset + size].toreadonly()

    def snapshot(self) -> bytes:
        return bytes(self._data)

    def program(self, offset: int, data: bytes) -> list[FlashWrite]:
        """Write ``data`` at ``offset`` in the mirror; return one FlashWrite per program unit touched."""
        unit = self.layout.program_unit
        if offset < 0 or offset + len(data) > len(self._data):
            raise ValueError(f"flash program out of range: offset={offset} size={len(data)}")
        writes: list[FlashWrite] = []
        pos = offset
        end = offset + len(data)
        while pos < end:
            chunk_end = min(end, (pos // unit + 1) * unit)
            chunk = bytes(data[pos - offset : chunk_end - offset])
            self._data[pos:chunk_end] = chunk
            writes.append(FlashWrite(pos, chunk))
            pos = chunk_end
        self.writes += len(writes)
        self.bytes_written += len(data)
        return writes


def apply_write(image: bytearray, write: FlashWrite) -> None:
    """Apply one FlashWrite to a raw flash image (what a runtime does with ``pwrite``)."""
    image[write.offset : write.offset + len(write.data)] = write.data
