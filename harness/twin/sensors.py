"""The sensor models behind a telemetry reading: battery, temperature, RSSI.

* battery: ``battery_full - battery_drain * uptime_hours``, never below ``battery_empty``, plus
  +/-2 mV of ADC noise;
* temperature: ``temp_mean`` plus Gaussian noise of standard deviation ``temp_noise``;
* RSSI: ``rssi_mean`` plus Gaussian noise of standard deviation ``rssi_noise``, a whole dBm,
  clamped to -120..-20.

Every parameter is a ``sensor.*`` config key (:mod:`harness.twin.settings`); the noise comes from
an RNG seeded by the boot's entropy, so ``--seed`` reproduces the readings.
"""

from __future__ import annotations

import random

from harness.twin.settings import Settings

ADC_NOISE = 0.002
RSSI_RANGE = (-120, -20)


class Sensors:
    """Readings of one boot."""

    def __init__(self, settings: Settings, rng: random.Random) -> None:
        self.settings = settings
        self.rng = rng

    def battery_v(self, uptime: float) -> float:
        s = self.settings
        level = max(s.battery_empty, s.battery_full - s.battery_drain * uptime / 3600.0)
        return round(level + self.rng.uniform(-ADC_NOISE, ADC_NOISE), 3)

    def temp_c(self) -> float:
        s = self.settings
        return round(self.rng.gauss(s.temp_mean, s.temp_noise), 2)

    def rssi(self) -> int:
        s = self.settings
        low, high = RSSI_RANGE
        return max(low, min(high, round(self.rng.gauss(s.rssi_mean, s.rssi_noise))))
