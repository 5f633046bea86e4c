"""Telemetry accounting for the reports: received, lost by cause, duplicated, late.

The numbers are the collector's own (:func:`harness.services.accounting.account`), so live
assertions and reports always agree; this module only reshapes them for tables: *received* counts
every valid arrival, *unique* the distinct seqs among them (received = unique + duplicates), *late*
the out-of-order arrivals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CAUSES = ("network", "power-cut", "overflow", "unexplained")


@dataclass
class DeviceAccount:
    device: str
    received: int = 0
    unique: int = 0
    duplicates: int = 0
    late: int = 0
    lost_by_cause: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CAUSES, 0))

    @property
    def lost(self) -> int:
        return sum(self.lost_by_cause.values())


@dataclass
class Accounting:
    devices: dict[str, DeviceAccount]

    def total(self, name: str) -> int:
        return sum(int(getattr(d, name)) for d in self.devices.values())

    def lost_by_cause(self) -> dict[str, int]:
        out = dict.fromkeys(CAUSES, 0)
        for d in self.devices.values():
            for cause, n in d.lost_by_cause.items():
                out[cause] = out.get(cause, 0) + int(n)
        return out


def account(records: list[dict[str, Any]]) -> Accounting:
    """Per-device accounting of ``records`` (the collector's attribution rules)."""
    from harness.services.accounting import account as service_account

    devices: dict[str, DeviceAccount] = {}
    for name, dev in service_account(records).devices.items():
        devices[str(name)] = DeviceAccount(
            str(name),
            dev.received,
            dev.unique,
            dev.duplicates,
            dev.out_of_order,
            {c: dev.lost(c) for c in CAUSES},
        )
    return Accounting(devices)
