"""The heap model behind ``heap_free`` in ``status``.

``heap_free = HEAP_TOTAL - BASE_USED - config bytes - (BUSY_EXTRA while a dump streams) - noise``
where ``noise`` is a multiple of 16 in ``[0, NOISE_MAX)`` drawn from the boot's entropy-seeded RNG,
so the same ``--seed`` reproduces the same readings. Later image variants (leak N bytes/hour)
subtract their leak here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.twin.records import encode_config

if TYPE_CHECKING:
    from harness.twin.device import Device

HEAP_TOTAL = 256 * 1024
BASE_USED = 48 * 1024
BUSY_EXTRA = 8 * 1024
NOISE_MAX = 1024


def heap_free(device: Device) -> int:
    used = BASE_USED + len(encode_config(device.config)) + device.rng.randrange(0, NOISE_MAX, 16)
    if device.dump is not None:
        used += BUSY_EXTRA
    return HEAP_TOTAL - used
