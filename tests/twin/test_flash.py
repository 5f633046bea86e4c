"""Flash geometry and unit-by-unit programming."""

from __future__ import annotations

import pytest

from harness.twin.flash import ERASED, Flash, FlashLayout


@pytest.mark.parametrize(
    ("slot_pages", "slot_a", "slot_b", "total"),
    [(512, 16384, 16384 + 2 * 1024 * 1024, 16384 + 4 * 1024 * 1024), (1, 16384, 20480, 24576)],
)
def test_layout_offsets(slot_pages: int, slot_a: int, slot_b: int, total: int) -> None:
    layout = FlashLayout(slot_pages=slot_pages)
    assert (layout.bootctl_offset, layout.config_offset) == (0, 8192)
    assert (layout.slot_offset("A"), layout.slot_offset("B"), layout.total_size) == (slot_a, slot_b, total)
    assert FlashLayout.for_size(total) == layout


@pytest.mark.parametrize("size", [100, 16384, 16384 + 4096])
def test_sizes_without_a_layout_are_refused(size: int) -> None:
    with pytest.raises(ValueError, match=f"flash size {size} is not 4 pages"):
        FlashLayout.for_size(size)


def test_slot_pages_must_be_positive() -> None:
    with pytest.raises(ValueError, match="slot_pages: expected an integer >= 1"):
        FlashLayout(slot_pages=0)


def test_program_splits_at_unit_boundaries() -> None:
    layout = FlashLayout(slot_pages=1)
    flash = Flash(bytes([ERASED]) * layout.total_size, layout)
    writes = flash.program(200, bytes(range(256)) * 2)
    assert [(w.offset, len(w.data)) for w in writes] == [(200, 56), (256, 256), (512, 200)]
    assert flash.read(200, 512) == bytes(range(256)) * 2
    assert (flash.writes, flash.bytes_written) == (3, 512)


def test_program_out_of_range_is_refused() -> None:
    layout = FlashLayout(slot_pages=1)
    flash = Flash(bytes(layout.total_size), layout)
    with pytest.raises(ValueError, match="out of range"):
        flash.program(layout.total_size - 1, b"ab")


def test_mirror_size_must_match_layout() -> None:
    with pytest.raises(ValueError, match="needs 24576"):
        Flash(b"\xff" * 10, FlashLayout(slot_pages=1))
