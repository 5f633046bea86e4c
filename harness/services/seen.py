"""What a collector has received of each device's boots, written on every telemetry journal record.

The annotations make any slice of the journal (one test, one scenario) accountable on its own: the
slice's first message of a boot says which seq the collector had reached before the slice began
(``seen_max``), whether it is a seq received before (``duplicate``), and the first message of a new
boot names the device's previous boot as received (``prev_boot``). Pure and transport-free: the
collector calls :meth:`SeenBoots.annotate` from its network thread, tests call it to build journals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class BootSeen:
    """What has been received of one boot of one device."""

    boot_id: str
    max_seq: int = 0
    max_ts: float = 0.0
    max_dropped: int = 0
    seqs: set[int] = field(default_factory=set)


class SeenBoots:
    """Per device and boot: the seqs received so far. Not thread-safe: one caller (a network thread)."""

    def __init__(self) -> None:
        self._boots: dict[tuple[str, str], BootSeen] = {}
        self._latest: dict[str, BootSeen] = {}  # device -> the boot first seen last

    def annotate(self, device: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Record one valid message; returns the journal fields saying what was received before it.

        ``seen_max``: the highest seq of this boot received before (0: none), ``seen_dropped`` the
        device's ``dropped`` counter in that message (left out when 0); ``duplicate: true`` when this
        seq was received before (left out otherwise); ``prev_boot`` on the first message of a boot:
        the device's previous boot as received (``boot_id``, ``last_seq``, ``last_ts``,
        ``last_dropped``), so a slice holding only the new boot knows where the old one stopped.
        """
        boot_id, seq = str(payload["boot_id"]), int(payload["seq"])
        key = (device, boot_id)
        boot = self._boots.get(key)
        out: dict[str, Any] = {}
        if boot is None:
            prev = self._latest.get(device)
            if prev is not None:
                out["prev_boot"] = {
                    "boot_id": prev.boot_id,
                    "last_seq": prev.max_seq,
                    "last_ts": prev.max_ts,
                    "last_dropped": prev.max_dropped,
                }
            boot = self._boots[key] = BootSeen(boot_id)
            self._latest[device] = boot
        out["seen_max"] = boot.max_seq
        if boot.max_dropped:
            out["seen_dropped"] = boot.max_dropped
        if seq in boot.seqs:
            out["duplicate"] = True
        else:
            boot.seqs.add(seq)
            if seq > boot.max_seq:
                boot.max_seq, boot.max_ts, boot.max_dropped = seq, float(payload["ts"]), int(payload["dropped"])
        return out
