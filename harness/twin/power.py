"""The modelled current draw of the twin board, as ``MEAS:CURR?`` reports it.

Draw depends on what the firmware last reported (``StateChange``) plus +/-2 % noise from a
seeded RNG. Values in amperes at the nominal 3.3 V; the supply clamps to its current limit.
"""

from __future__ import annotations

import random

#: Mean draw per activity; ``off`` is a powered supply with no live board (dead process).
DRAW = {"boot": 0.085, "idle": 0.032, "busy": 0.118, "halt": 0.012, "off": 0.0}
NOISE = 0.02


class PowerModel:
    """Tracks the board's activity and turns it into a current reading."""

    def __init__(self, seed: int | None = None) -> None:
        self.activity = "off"
        self._rng = random.Random(seed)

    def current(self, *, alive: bool) -> float:
        if not alive:
            return 0.0
        mean = DRAW.get(self.activity, DRAW["idle"])
        return mean * (1.0 + self._rng.uniform(-NOISE, NOISE))
