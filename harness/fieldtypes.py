"""Pydantic field types for quantities humans write with units in rig and scenario files."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator

from harness.errors import UnitError
from harness.units import (
    parse_duration,
    parse_fraction,
    parse_quantity,
    parse_rate,
    parse_size,
    parse_size_per_hour,
)


def _wrap(fn: Any, *args: Any) -> Any:
    def validator(value: Any) -> Any:
        try:
            return fn(value, *args)
        except UnitError as exc:
            raise ValueError(str(exc)) from None
        except (TypeError, AttributeError):
            raise ValueError(f"expected a value with a unit, got {value!r}") from None

    return validator


Duration = Annotated[float, BeforeValidator(_wrap(parse_duration))]
"""Seconds; written ``300ms``, ``2s``, ``1h30m`` or a bare number of seconds."""

Fraction = Annotated[float, BeforeValidator(_wrap(parse_fraction))]
"""0..1; written ``2%`` or ``0.02``."""

Rate = Annotated[float, BeforeValidator(_wrap(parse_rate))]
"""Bits per second; written ``384kbit``, ``1mbit``."""

Size = Annotated[int, BeforeValidator(_wrap(parse_size))]
"""Bytes; written ``4KiB``, ``1MB``."""

SizePerHour = Annotated[float, BeforeValidator(_wrap(parse_size_per_hour))]
"""Bytes per hour; written ``200B/h``, ``2MiB/h``, ``1KiB/min``."""

Volts = Annotated[float, BeforeValidator(_wrap(parse_quantity, "V"))]
Amps = Annotated[float, BeforeValidator(_wrap(parse_quantity, "A"))]
