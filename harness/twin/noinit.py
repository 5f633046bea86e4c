"""RAM that survives a software reset: the OTA reports a boot could not deliver, handed to the next boot.

Like a ``.noinit`` section on a microcontroller: a software reset or a watchdog reset leaves it as it
was, a power cut leaves whatever the RAM powers up with. The core cannot keep memory across a reset
itself (the runtime builds a new core from flash), so the runtime plays the RAM: the core puts the
block in :class:`~harness.twin.events.Reboot` ``noinit`` and the runtime hands it back in the next
:class:`~harness.twin.events.PowerOn` ``noinit``; a power-on from the supply brings ``b""``.

The block holds the outbox's entries not yet sent (:mod:`harness.twin.outbox`), oldest first,
framed like a flash record (magic ``TWNI``, length, CRC32; :mod:`harness.twin.records`) so that a
block that does not check out -- RAM after a cold start, a torn save -- is ignored, as firmware must.
At most :data:`NOINIT_SIZE` bytes: when the entries do not all fit, the oldest are left out. Each
payload is kept as it was made, with the ``fw``, ``boot_id`` and ``ts`` of the boot that made it.
"""

from __future__ import annotations

import json

from harness.twin.outbox import Pending
from harness.twin.records import HEADER_SIZE, decode_record, encode_record

NOINIT_MAGIC = b"TWNI"
NOINIT_SIZE = 4096


def _encode(entries: list[Pending]) -> bytes:
    rows = [[e.topic, e.payload.decode("latin-1"), e.retain, e.coalesce] for e in entries]
    return json.dumps(rows, separators=(",", ":")).encode()


def save_outbox(entries: list[Pending]) -> bytes:
    """The noinit block for ``entries`` (the newest that fit in :data:`NOINIT_SIZE` bytes, in order)."""
    kept = list(entries)
    payload = _encode(kept)
    while kept and HEADER_SIZE + len(payload) > NOINIT_SIZE:
        kept.pop(0)
        payload = _encode(kept)
    return encode_record(NOINIT_MAGIC, 0, payload)


def load_outbox(raw: bytes) -> list[Pending]:
    """The entries a noinit block holds, unsent; [] when the block does not check out."""
    decoded = decode_record(NOINIT_MAGIC, raw[:NOINIT_SIZE])
    if decoded is None:
        return []
    try:
        rows = json.loads(decoded[1])
        return [Pending(str(topic), str(payload).encode("latin-1"), bool(retain), bool(coalesce))
                for topic, payload, retain, coalesce in rows]  # fmt: skip
    except (ValueError, TypeError):
        return []
