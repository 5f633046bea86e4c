"""Heap exhaustion on the process twin: a leaking image's allocation fails, the watchdog resets the board."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import serial

from harness.twin import factory_flash, heap
from harness.twin.flash import FlashLayout
from harness.twin.image import build_image

from .console import read_until
from .served import ServedTwin

SLOT_PAGES = 48


def test_a_leak_that_exhausts_the_heap_crashes_the_served_twin(
    serve: Callable[..., ServedTwin], tmp_path: Path
) -> None:
    # About 250 KB/s: the free heap is gone some 3 s after the application starts.
    image = build_image("1.0.0", size=16 * 1024, variant="leak", variant_param=900_000_000)
    flash = tmp_path / "leak.bin"
    flash.write_bytes(factory_flash(FlashLayout(slot_pages=SLOT_PAGES), image))
    twin = serve("--flash", str(flash), "--slot-pages", str(SLOT_PAGES))
    port = serial.Serial(twin.console, baudrate=115200, timeout=0.2)
    try:
        crash = read_until(port, b"of uptime; watchdog reset\r\n", timeout=20.0)
        assert f"FATAL heap exhausted: malloc({heap.MESSAGE_BYTES}) failed".encode() in crash
        before, _, rest = crash.partition(b"FATAL")
        assert b"reset_cause=watchdog" not in before  # the first boot was the power-on
        after = rest + read_until(port, b"BOOT-DONE", timeout=20.0)
        assert b"boot_count=2 reset_cause=watchdog" in after
    finally:
        port.close()
