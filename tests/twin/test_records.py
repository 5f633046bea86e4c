"""Two-copy records: alternate copies, and a torn write at any unit falls back to the older copy."""

from __future__ import annotations

import pytest

from harness.twin.flash import ERASED, Flash, FlashLayout, apply_write
from harness.twin.records import (
    CONFIG_LIMIT,
    BootControl,
    read_bootctl,
    read_config,
    read_pair,
    write_bootctl,
    write_config,
)

LAYOUT = FlashLayout(slot_pages=1)


def blank() -> Flash:
    return Flash(bytes([ERASED]) * LAYOUT.total_size, LAYOUT)


def test_erased_flash_has_no_records() -> None:
    flash = blank()
    assert read_bootctl(flash) is None
    assert read_config(flash) == {}


def test_writes_alternate_copies_with_rising_sequence() -> None:
    flash = blank()
    seen = []
    for boots in range(1, 5):
        write_bootctl(flash, BootControl(boot_count=boots))
        stored = read_pair(flash, 0, b"TWBC")
        assert stored is not None
        seen.append((stored.copy, stored.seq))
    assert seen == [(0, 1), (1, 2), (0, 3), (1, 4)]
    assert read_bootctl(flash) == BootControl(boot_count=4)


def test_every_write_is_one_aligned_program_unit() -> None:
    flash = blank()
    writes = write_config(flash, {f"key{i}": "v" * 100 for i in range(12)})
    assert len(writes) > 1
    assert all(w.offset % LAYOUT.program_unit == 0 and len(w.data) <= LAYOUT.program_unit for w in writes)
    assert flash.writes == len(writes)


def _old_and_new() -> tuple[dict[str, str], dict[str, str]]:
    old = {"name": "old", "pad": "o" * 100}
    new = {"name": "new", **{f"k{i}": "n" * 120 for i in range(10)}}
    return old, new


@pytest.mark.parametrize("units_written", [0, 1, 2, 3, 5])
@pytest.mark.parametrize("tear", [False, True])
def test_torn_config_write_falls_back_to_previous(units_written: int, tear: bool) -> None:
    old, new = _old_and_new()
    mirror = blank()
    write_config(mirror, old)
    on_disk = bytearray(mirror.snapshot())
    writes = write_config(mirror, new)
    assert len(writes) > units_written
    for write in writes[:units_written]:
        apply_write(on_disk, write)
    if tear:
        cut = writes[units_written]
        on_disk[cut.offset : cut.offset + len(cut.data) // 2] = cut.data[: len(cut.data) // 2]
    assert read_config(Flash(on_disk, LAYOUT)) == old


def test_torn_write_over_an_older_copy_keeps_the_newer_one() -> None:
    flash = blank()
    for boots in (1, 2):
        write_bootctl(flash, BootControl(boot_count=boots))
    on_disk = bytearray(flash.snapshot())
    (write,) = write_bootctl(flash, BootControl(boot_count=3))
    on_disk[write.offset : write.offset + 10] = write.data[:10]
    assert read_bootctl(Flash(on_disk, LAYOUT)) == BootControl(boot_count=2)


def test_config_limit_is_enforced() -> None:
    with pytest.raises(ValueError, match="limit"):
        write_config(blank(), {"big": "x" * CONFIG_LIMIT})


def test_boot_control_round_trip() -> None:
    record = BootControl("B", "A", 2, False, 17, 3)
    assert BootControl.decode(record.encode()) == record
    assert BootControl.decode(b"\x07" + record.encode()[1:]) is None
