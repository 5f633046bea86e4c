"""The heap model behind ``heap_free`` in ``status`` and in telemetry.

``heap_free = HEAP_TOTAL - BASE_USED - config bytes - MESSAGE_BYTES per buffered telemetry message
- (BUSY_EXTRA while a dump streams) - leak - noise`` where ``noise`` is a multiple of 16 in
``[0, NOISE_MAX)`` drawn from the boot's entropy-seeded RNG, so the same ``--seed`` reproduces the
same readings, and ``leak`` is ``variant parameter * uptime hours`` for an image of the ``leak``
variant (0 otherwise). Firmware variants change the model here.
"""

from __future__ import annotations

from harness.twin.firmware import Firmware
from harness.twin.image import Variant
from harness.twin.records import encode_config

HEAP_TOTAL = 256 * 1024
BASE_USED = 48 * 1024
BUSY_EXTRA = 8 * 1024
MESSAGE_BYTES = 320  # one buffered telemetry message: payload + bookkeeping
NOISE_MAX = 1024


def heap_free(device: Firmware, now: float) -> int:
    used = BASE_USED + len(encode_config(device.config)) + device.rng.randrange(0, NOISE_MAX, 16)
    if device.dump is not None:
        used += BUSY_EXTRA
    if device.session is not None:
        used += MESSAGE_BYTES * len(device.session.buffer)
    if device.image is not None and device.image.variant == Variant.LEAK:
        used += int(device.image.variant_param * device.uptime(now) / 3600.0)
    return max(0, HEAP_TOTAL - used)
