"""Named network profiles: per-direction netem parameters, as data.

``up`` is device -> service (the device's upload), ``down`` is service -> device. A published
round-trip time is split evenly between the two directions. Where each figure comes from, and
which profiles are the harness's own composites rather than published presets, is in
``docs/network.md`` ("Profiles"); keep the two in step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.errors import ConfigError

Profile = Mapping[str, Mapping[str, Any]]


def _both(common: Mapping[str, Any], up: Mapping[str, Any], down: Mapping[str, Any]) -> Profile:
    return {"up": {**common, **up}, "down": {**common, **down}}


PROFILES: dict[str, Profile] = {
    # Harness baseline for a switched LAN: sub-millisecond one-way delay, no loss, no cap.
    "lan": _both({"delay": "0.5ms", "jitter": "0.1ms", "distribution": "normal"}, {}, {}),
    # Harness composite (no published preset): a device at the edge of an access point's coverage.
    "wifi-weak": _both(
        {
            "delay": "15ms",
            "jitter": "10ms",
            "distribution": "paretonormal",
            "loss": "2%",
            "loss_correlation": "25%",
        },
        {"rate": "2mbit"},
        {"rate": "2mbit"},
    ),
    # WebPageTest connectivity preset "LTE": 12 Mbps / 12 Mbps, 70 ms RTT.
    "lte": _both({"delay": "35ms"}, {"rate": "12mbit"}, {"rate": "12mbit"}),
    # WebPageTest connectivity preset "3G": 1.6 Mbps down / 768 Kbps up, 300 ms RTT.
    "3g": _both({"delay": "150ms"}, {"rate": "768kbit"}, {"rate": "1600kbit"}),
    # WebPageTest connectivity preset "2G": 280 Kbps down / 256 Kbps up, 800 ms RTT.
    "2g": _both({"delay": "400ms"}, {"rate": "256kbit"}, {"rate": "280kbit"}),
    # Geostationary satellite: ~600 ms RTT (FCC Measuring Broadband America), 25/3 Mbit/s plan tier.
    "satellite": _both(
        {"delay": "300ms", "jitter": "10ms", "distribution": "normal"}, {"rate": "3mbit"}, {"rate": "25mbit"}
    ),
    # Harness composite: bursty loss (Gilbert-Elliott, mean burst 4 packets, ~3.8% loss) and jitter.
    "flaky": _both({"delay": "40ms", "jitter": "20ms", "distribution": "pareto", "gemodel": ("1%", "25%")}, {}, {}),
}


def profile_params(name: str) -> Profile:
    """The per-direction parameters of profile ``name``; unknown names list what exists."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ConfigError(f"profile: unknown profile {name!r}; expected one of {', '.join(PROFILES)}") from None
