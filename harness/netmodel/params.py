"""Impairment parameters: validated, immutable, named as ``tc netem`` names them.

One :class:`LinkParams` describes one direction of one link. :func:`build_params` turns keyword
arguments as a test writes them (``delay="100ms", jitter="10ms", loss="2%"``) into a new
``LinkParams`` on top of an existing one, or raises :class:`ConfigError` with one line naming
the parameter and what it accepts. Nothing is half-applied: a caller validates everything first
and swaps afterwards.

Semantics follow tc-netem(8):

* ``delay TIME [JITTER [CORRELATION]]`` with ``distribution uniform|normal|pareto|paretonormal``
  (uniform when none is named, as in netem);
* ``loss random PERCENT [CORRELATION]`` or ``loss gemodel p [r [1-h [1-k]]]``;
* ``duplicate``, ``corrupt``, ``reorder PERCENT [CORRELATION] gap N`` (reorder needs a delay);
* ``rate RATE``. ``segment`` (largest TCP chunk forwarded at once) and ``burst`` (token bucket
  depth for ``rate``) are the harness's own, for streams.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.errors import ConfigError, UnitError
from harness.units import parse_duration, parse_fraction, parse_rate, parse_size

DISTRIBUTIONS = ("uniform", "normal", "pareto", "paretonormal")
DIRECTIONS = ("up", "down")

# keyword -> canonical field name (``latency`` is the word test writers reach for first)
ALIASES = {"latency": "delay"}


@dataclass(frozen=True)
class GEModel:
    """Gilbert-Elliott loss, as ``loss gemodel p [r [1-h [1-k]]]`` (all probabilities 0..1).

    ``p``: good -> bad per packet; ``r``: bad -> good; ``bad_loss`` (1-h): loss probability in the
    bad state; ``good_loss`` (1-k): loss probability in the good state.
    """

    p: float
    r: float
    bad_loss: float = 1.0
    good_loss: float = 0.0

    @property
    def mean_loss(self) -> float:
        """Long-run loss fraction of the chain."""
        if self.p + self.r == 0:
            return self.good_loss
        pi_bad = self.p / (self.p + self.r)
        return pi_bad * self.bad_loss + (1 - pi_bad) * self.good_loss

    @property
    def mean_bad_run(self) -> float:
        """Mean number of packets spent in the bad state per visit (1/r)."""
        return float("inf") if self.r == 0 else 1.0 / self.r


@dataclass(frozen=True)
class LinkParams:
    """The impairment of one direction. Times in seconds, probabilities 0..1, rate in bit/s."""

    delay: float = 0.0
    jitter: float = 0.0
    delay_correlation: float = 0.0
    distribution: str = "uniform"
    loss: float = 0.0
    loss_correlation: float = 0.0
    gemodel: GEModel | None = None
    duplicate: float = 0.0
    duplicate_correlation: float = 0.0
    corrupt: float = 0.0
    corrupt_correlation: float = 0.0
    reorder: float = 0.0
    reorder_correlation: float = 0.0
    gap: int = 0
    rate: float | None = None
    segment: int | None = None
    burst: int | None = None

    @property
    def is_clear(self) -> bool:
        """True when this direction changes nothing (the proxy may take its fast path)."""
        return self == CLEAR

    @property
    def delays(self) -> bool:
        """True when data is held back at all (delay, jitter, rate or slicing)."""
        return bool(self.delay or self.jitter or self.rate or self.segment)

    @property
    def expected_loss(self) -> float:
        """Loss fraction the configuration should produce in the long run."""
        return self.gemodel.mean_loss if self.gemodel else self.loss

    def describe(self) -> dict[str, Any]:
        """The non-default fields, JSON-ready (what the journal and statistics show as configured)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value != f.default:
                out[f.name] = dataclasses.asdict(value) if isinstance(value, GEModel) else value
        return out


CLEAR = LinkParams()

_FRACTIONS = (
    "delay_correlation",
    "loss",
    "loss_correlation",
    "duplicate",
    "duplicate_correlation",
    "corrupt",
    "corrupt_correlation",
    "reorder",
    "reorder_correlation",
)
_FIELDS = tuple(f.name for f in dataclasses.fields(LinkParams))
PARAMETER_NAMES = tuple(sorted((*_FIELDS, *ALIASES)))


def _fail(name: str, message: str) -> ConfigError:
    return ConfigError(f"{name}: {message}")


def _duration(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _fail(name, f"expected a time such as '100ms' or '2s', got {value!r}")
    try:
        seconds = parse_duration(value, allow_negative=True)
    except UnitError as exc:
        raise _fail(name, f"expected a time such as '100ms' or '2s', got {value!r}") from exc
    if seconds < 0:
        raise _fail(name, f"expected a time of zero or more, got {value!r}")
    return seconds


def _fraction(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _fail(name, f"expected a percentage from 0% to 100%, got {value!r}")
    try:
        return parse_fraction(value)
    except UnitError as exc:
        raise _fail(name, f"expected a percentage from 0% to 100%, got {value!r}") from exc


def _rate(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _fail(name, f"expected a rate such as '384kbit' or '1mbit', got {value!r}")
    try:
        return parse_rate(value)
    except UnitError as exc:
        raise _fail(name, f"{exc.detail}") from exc


def _size(name: str, value: Any, *, minimum: int = 1) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _fail(name, f"expected a size in bytes such as 536 or '4KiB', got {value!r}")
    try:
        size = parse_size(value)
    except UnitError as exc:
        raise _fail(name, exc.detail) from exc
    if size < minimum:
        raise _fail(name, f"expected a size of at least {minimum} byte(s), got {value!r}")
    return size


def _gemodel(value: Any) -> GEModel | None:
    """``gemodel`` as ``None``, a GEModel, a mapping, a sequence ``(p, r, 1-h, 1-k)`` or ``"1% 10%"``."""
    if value is None or isinstance(value, GEModel):
        return value
    names = ("p", "r", "1-h", "1-k")
    if isinstance(value, str):
        parts: list[Any] = value.split()
    elif isinstance(value, Mapping):
        keymap = {"p": "p", "r": "r", "1-h": "1-h", "bad_loss": "1-h", "1-k": "1-k", "good_loss": "1-k"}
        unknown = [k for k in value if k not in keymap]
        if unknown:
            raise _fail("gemodel", f"unknown key {unknown[0]!r}: expected p, r, 1-h, 1-k")
        ordered = {keymap[k]: v for k, v in value.items()}
        if "p" not in ordered:
            raise _fail("gemodel", "expected at least 'p' (good->bad transition probability)")
        parts = [ordered.get(n) for n in names]
        while parts and parts[-1] is None:
            parts.pop()
        if None in parts:
            raise _fail("gemodel", "give r before 1-h, and 1-h before 1-k, as tc netem does")
    elif isinstance(value, list | tuple):
        parts = list(value)
    else:
        raise _fail("gemodel", f"expected 'p [r [1-h [1-k]]]' as percentages, got {value!r}")
    if not 1 <= len(parts) <= 4:
        raise _fail("gemodel", f"expected 1 to 4 values 'p [r [1-h [1-k]]]', got {value!r}")
    probs = [_fraction(f"gemodel {names[i]}", part) for i, part in enumerate(parts)]
    p = probs[0]
    r = probs[1] if len(probs) > 1 else 1.0 - p  # tc: r defaults to 1-p (Bernoulli)
    bad_loss = probs[2] if len(probs) > 2 else 1.0
    good_loss = probs[3] if len(probs) > 3 else 0.0
    return GEModel(p=p, r=r, bad_loss=bad_loss, good_loss=good_loss)


def _convert(name: str, value: Any, label: str) -> Any:
    """``value`` of field ``name`` in its canonical unit; errors name ``label`` (what the caller wrote)."""
    if name in ("delay", "jitter"):
        return _duration(label, value)
    if name in _FRACTIONS:
        return _fraction(label, value)
    if name == "distribution":
        if value not in DISTRIBUTIONS:
            raise _fail(label, f"expected one of {', '.join(DISTRIBUTIONS)}, got {value!r}")
        return value
    if name == "gemodel":
        return _gemodel(value)
    if name == "gap":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise _fail(label, f"expected a whole number of packets, 0 or more, got {value!r}")
        return value
    if name == "rate":
        return _rate(label, value)
    if name in ("segment", "burst"):
        return _size(label, value)
    raise AssertionError(name)  # pragma: no cover - every field is handled above


def build_params(base: LinkParams = CLEAR, **changes: Any) -> LinkParams:
    """``base`` with ``changes`` applied, checked as a whole; raises :class:`ConfigError`."""
    values: dict[str, Any] = {}
    for key, raw in changes.items():
        name = ALIASES.get(key, key)
        if name not in _FIELDS:
            raise _fail(key, f"unknown parameter; expected one of {', '.join(PARAMETER_NAMES)}")
        if name in values:
            raise _fail(key, f"given twice (as {name!r} and an alias)")
        values[name] = _convert(name, raw, key)
    new = dataclasses.replace(base, **values)
    return check(new, given=values)


def check(params: LinkParams, given: Mapping[str, Any] | None = None) -> LinkParams:
    """Cross-field rules netem enforces; returns ``params`` unchanged when they hold."""
    given = given or {}
    if params.loss and params.gemodel is not None:
        culprit = "gemodel" if "gemodel" in given else "loss"
        raise _fail(culprit, "use either random 'loss' or 'gemodel', not both (set the other to 0/None)")
    if params.reorder and not params.delay:
        raise _fail("reorder", "reordering needs a delay (netem sends reordered packets early)")
    if params.burst is not None and params.rate is None:
        raise _fail("burst", "a token bucket depth needs a 'rate' to go with it")
    if params.reorder and params.gap == 0:
        params = dataclasses.replace(params, gap=1)  # tc: reorder without gap means gap 1
    return params


def build_directions(
    current: Mapping[str, LinkParams], direction: str | None, changes: Mapping[str, Any]
) -> dict[str, LinkParams]:
    """New per-direction parameters for ``apply``: both directions, or only ``"up"``/``"down"``."""
    targets = _directions(direction)
    return {d: build_params(current[d], **changes) if d in targets else current[d] for d in DIRECTIONS}


def _directions(direction: str | None) -> tuple[str, ...]:
    if direction is None or direction == "both":
        return DIRECTIONS
    if direction not in DIRECTIONS:
        raise _fail("direction", f"expected 'up' (device to service), 'down' or 'both', got {direction!r}")
    return (direction,)


def byte_count(name: str, value: Any) -> int | None:
    """A byte count parameter such as ``close_after`` (``None`` passes through); raises ConfigError."""
    return _size(name, value, minimum=0)


def directions(direction: str | None) -> tuple[str, ...]:
    """The directions a ``direction=`` argument names; raises :class:`ConfigError` when unknown."""
    return _directions(direction)
