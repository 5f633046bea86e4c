"""The heap model behind ``heap_free`` in ``status`` and in telemetry.

``heap_free = HEAP_TOTAL - BASE_USED - config bytes - MESSAGE_BYTES per buffered telemetry message
- (BUSY_EXTRA while a dump streams) - leak - noise`` where ``noise`` is a multiple of 16 in
``[0, NOISE_MAX)`` drawn from the boot's entropy-seeded RNG, so the same ``--seed`` reproduces the
same readings, and ``leak`` is ``variant parameter * uptime hours`` for an image of the ``leak``
variant (0 otherwise). Firmware variants change the model here.

Exhaustion is a failure, as on a board: the application allocates a telemetry message
(:data:`MESSAGE_BYTES`) at every reading, and an allocation the heap cannot serve crashes it. The
core arms :data:`HEAP_TIMER` for the instant its usage implies (:func:`exhaustion_delay`: the leak has
eaten all but one message's worth of what is free, noise aside — noise is the jitter of a reading, not
usage), checks again when it fires (offline buffering may have moved the instant), and at exhaustion
prints ``FATAL heap exhausted`` and the watchdog resets the board (reset cause ``watchdog``). The
uptime starts again at the reset, and so does the leak. With the reference heap, ``leak: 100B/h``
exhausts it after about 2,125 hours (88.5 days) of uptime.
"""

from __future__ import annotations

from harness.twin.events import Action
from harness.twin.firmware import Firmware
from harness.twin.image import Variant
from harness.twin.records import encode_config

HEAP_TOTAL = 256 * 1024
BASE_USED = 48 * 1024
BUSY_EXTRA = 8 * 1024
MESSAGE_BYTES = 320  # one buffered telemetry message: payload + bookkeeping
NOISE_MAX = 1024


HEAP_TIMER = "heap.exhausted"
RECHECK_MIN = 1.0  # seconds: the soonest a check that found heap left looks again


def leak_rate(device: Firmware) -> float:
    """Bytes per second the running image leaks (0 for any image but a ``leak`` one)."""
    image = device.image
    if image is None or image.variant != Variant.LEAK:
        return 0.0
    return image.variant_param / 3600.0


def used_without_noise(device: Firmware, now: float) -> int:
    used = BASE_USED + len(encode_config(device.config))
    if device.dump is not None:
        used += BUSY_EXTRA
    if device.session is not None:
        used += MESSAGE_BYTES * len(device.session.buffer)
    return used + int(leak_rate(device) * device.uptime(now))


def heap_free(device: Firmware, now: float) -> int:
    used = used_without_noise(device, now) + device.rng.randrange(0, NOISE_MAX, 16)
    return max(0, HEAP_TOTAL - used)


def exhaustion_delay(device: Firmware, now: float) -> float | None:
    """Seconds from ``now`` until a message's allocation can no longer be served; 0 when it already
    cannot; None when nothing grows (no leak)."""
    rate = leak_rate(device)
    if rate <= 0:
        return None
    spare = HEAP_TOTAL - used_without_noise(device, now) - MESSAGE_BYTES
    return max(0.0, spare / rate)


def arm(device: Firmware, now: float, out: list[Action]) -> None:
    """Start (or restart) the exhaustion check of a leaking image; nothing for any other image."""
    delay = exhaustion_delay(device, now)
    if delay is not None:
        device.start_timer(out, HEAP_TIMER, delay)


def on_timer(device: Firmware, now: float, out: list[Action]) -> bool:
    """The exhaustion check fired. True: the heap is exhausted (the caller crashes the application)."""
    delay = exhaustion_delay(device, now)
    if delay is None:
        return False
    if delay > 0:
        device.start_timer(out, HEAP_TIMER, max(RECHECK_MIN, delay))
        return False
    free = max(0, HEAP_TOTAL - used_without_noise(device, now))
    hours = device.uptime(now) / 3600.0
    device.say(out, f"FATAL heap exhausted: malloc({MESSAGE_BYTES}) failed with {free} B free "
                    f"after {hours:.1f} h of uptime; watchdog reset")  # fmt: skip
    return True
