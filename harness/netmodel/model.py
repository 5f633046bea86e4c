"""The impairment model: what netem decides for each packet or chunk, with no sockets and no clock.

Everything here takes the current time as an argument and draws from a seeded
:class:`random.Random`, so the same seed and the same calls give the same decisions: a failing run
can be replayed with the same impairment sequence, and the model is tested without I/O.

The random processes mirror the Linux ``sch_netem`` code:

* correlation is netem's ``get_crandom``: ``u = (1 - rho) * U + rho * u_prev``;
* ``delay``/``jitter`` draw a standard variate from the distribution's inverse CDF at that ``u``
  (netem's tables are exactly that: uniform is ``delay +/- jitter``; normal is clipped to +/-4
  jitter; pareto and paretonormal use the iproute2 ``pareto.c``/``paretonormal.c`` formulas);
* ``loss gemodel`` steps the Gilbert-Elliott chain, deciding the loss with the state the packet
  found (as ``loss_gilb_ell`` does);
* duplicate, loss, corrupt, reorder and rate are applied in netem's order.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from statistics import NormalDist

from harness.netmodel.params import LinkParams

_STD_NORMAL = NormalDist()
_TABLE_LIMIT = 32767 / 8192  # netem tables are s16 scaled by NETEM_DIST_SCALE: about +/-4 jitter
_U_MIN = 1e-12


class CorrelatedUniform:
    """netem's ``get_crandom``: uniform draws in [0, 1) with first-order correlation ``rho``."""

    __slots__ = ("_last", "_rho", "_rng")

    def __init__(self, rng: random.Random, rho: float = 0.0) -> None:
        self._rng = rng
        self._rho = rho
        self._last = 0.0

    def next(self) -> float:
        value = self._rng.random()
        if self._rho == 0.0:
            return value
        self._last = (1.0 - self._rho) * value + self._rho * self._last
        return self._last


def standard_variate(distribution: str, u: float) -> float:
    """The distribution's standardised value at quantile ``u`` (inverse CDF, as netem's tables)."""
    if distribution == "uniform":
        return 2.0 * u - 1.0
    u = min(max(u, _U_MIN), 1.0 - _U_MIN)
    if distribution == "normal":
        value = _STD_NORMAL.inv_cdf(u)
    elif distribution == "pareto":
        value = _pareto(u)
    elif distribution == "paretonormal":
        value = (_STD_NORMAL.inv_cdf(u) + 3.0 * _pareto(u)) / 4.0
    else:
        raise ValueError(f"unknown distribution {distribution!r}")
    return max(-_TABLE_LIMIT, min(_TABLE_LIMIT, value))


def _pareto(u: float) -> float:
    """iproute2 ``pareto.c``: shape a=3, shifted to mean zero and scaled by 4/3."""
    base: float = (1.0 - u) ** (-1.0 / 3.0)
    return (base - 1.5) * (4.0 / 3.0)


def standard_cdf(distribution: str, x: float) -> float:
    """CDF of :func:`standard_variate` for an uncorrelated ``u`` (for shape checks such as KS)."""
    if distribution == "uniform":
        return min(1.0, max(0.0, (x + 1.0) / 2.0))
    if x >= _TABLE_LIMIT:
        return 1.0
    if distribution == "normal":
        return 0.0 if x < -_TABLE_LIMIT else _STD_NORMAL.cdf(x)
    if distribution == "pareto":
        base = x * 0.75 + 1.5  # pareto value in units of x_m = 1
        return 0.0 if base < 1.0 else 1.0 - base**-3.0
    if distribution == "paretonormal":
        lo, hi = _U_MIN, 1.0 - _U_MIN  # monotone in u: invert by bisection
        if x <= standard_variate(distribution, lo):
            return 0.0
        for _ in range(60):
            mid = (lo + hi) / 2.0
            if standard_variate(distribution, mid) <= x:
                lo = mid
            else:
                hi = mid
        return lo
    raise ValueError(f"unknown distribution {distribution!r}")


class DelaySampler:
    """``delay TIME JITTER CORRELATION distribution D``: one delay per packet or chunk, never negative."""

    __slots__ = ("_delay", "_distribution", "_jitter", "_uniform")

    def __init__(self, params: LinkParams, rng: random.Random) -> None:
        self._delay = params.delay
        self._jitter = params.jitter
        self._distribution = params.distribution
        self._uniform = CorrelatedUniform(rng, params.delay_correlation)

    def sample(self) -> float:
        if not self._jitter:
            return self._delay
        u = self._uniform.next()
        return max(0.0, self._delay + self._jitter * standard_variate(self._distribution, u))


class LossProcess:
    """``loss random P [CORR]`` or ``loss gemodel p r 1-h 1-k``; ``lost()`` decides one packet."""

    __slots__ = ("_bad", "_ge", "_loss", "_rng", "_uniform")

    def __init__(self, params: LinkParams, rng: random.Random) -> None:
        self._rng = rng
        self._loss = params.loss
        self._ge = params.gemodel
        self._uniform = CorrelatedUniform(rng, params.loss_correlation)
        self._bad = False

    @property
    def in_bad_state(self) -> bool:
        return self._bad

    def lost(self) -> bool:
        ge = self._ge
        if ge is not None:
            rng = self._rng
            if self._bad:
                if rng.random() < ge.r:
                    self._bad = False
                return rng.random() < ge.bad_loss
            if rng.random() < ge.p:
                self._bad = True
            return rng.random() < ge.good_loss
        if not self._loss:
            return False
        return self._uniform.next() < self._loss


@dataclass(frozen=True)
class Delivery:
    """One copy of a datagram to send: at ``at`` (same clock as ``now``), maybe with one bit flipped."""

    at: float
    flip: tuple[int, int] | None = None  # (byte index, bit index)
    duplicate: bool = False

    def apply(self, data: bytes) -> bytes:
        """The payload as it leaves the point (corrupted if this copy was chosen for it)."""
        if self.flip is None or not data:
            return data
        index, bit = self.flip
        buf = bytearray(data)
        buf[index] ^= 1 << bit
        return bytes(buf)


class DatagramModel:
    """netem's per-packet decisions for UDP: duplicate, loss, corrupt, delay, reorder, rate."""

    def __init__(self, params: LinkParams, rng: random.Random) -> None:
        self.params = params
        self._rng = rng
        self._delay = DelaySampler(params, rng)
        self._loss = LossProcess(params, rng)
        self._dup = CorrelatedUniform(rng, params.duplicate_correlation)
        self._corrupt = CorrelatedUniform(rng, params.corrupt_correlation)
        self._reorder = CorrelatedUniform(rng, params.reorder_correlation)
        self._counter = 0
        self._last_send = -math.inf  # time_to_send of the queue's tail (for rate)
        self._bytes_per_s = params.rate / 8.0 if params.rate else 0.0
        self.last_lost = False  # whether the loss process dropped the last packet decided

    def decide(self, now: float, size: int) -> list[Delivery]:
        """The copies of one datagram of ``size`` bytes offered at ``now``; empty when it is lost."""
        p = self.params
        count = 1
        if p.duplicate and self._dup.next() < p.duplicate:
            count += 1
        self.last_lost = self._loss.lost()
        if self.last_lost:
            count -= 1
        if count == 0:
            return []
        flip = None
        if p.corrupt and self._corrupt.next() < p.corrupt and size:
            flip = (self._rng.randrange(size), self._rng.randrange(8))
        out = [Delivery(at=self._send_time(now, size), flip=flip)]
        if count > 1:  # the clone goes through the queue again, uncorrupted, with its own delay
            out.append(Delivery(at=self._send_time(now, size), duplicate=True))
        return out

    def _send_time(self, now: float, size: int) -> float:
        p = self.params
        if p.gap and not (self._counter < p.gap - 1 or self._reorder.next() >= p.reorder):
            self._counter = 0  # this one jumps the queue
            return now
        delay = self._delay.sample()
        self._counter += 1
        if self._bytes_per_s:
            start = max(now + delay, self._last_send)
            self._last_send = start + size / self._bytes_per_s
            return self._last_send
        return now + delay


class TokenBucket:
    """A token bucket of ``burst`` bytes filled at ``rate`` bit/s, as a GCRA (virtual scheduling).

    ``start_time(now, size)`` charges ``size`` bytes and says when they may leave: at once while
    the bucket holds enough, later once it is empty. One bucket is shared by every connection of a
    link direction, so the cap is the link's, not each connection's.
    """

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._bytes_per_s = rate / 8.0
        self._tau = burst / self._bytes_per_s
        self._tat = -math.inf  # theoretical arrival time

    def start_time(self, now: float, size: int) -> float:
        self._tat = max(self._tat, now) + size / self._bytes_per_s
        return max(now, self._tat - self._tau)


def bucket_for(params: LinkParams) -> TokenBucket | None:
    """The token bucket ``params`` ask for (None without a ``rate``)."""
    if not params.rate:
        return None
    return TokenBucket(params.rate, params.burst if params.burst is not None else default_burst(params))


class StreamModel:
    """Release times for TCP chunks: delay and jitter per chunk, token-bucket rate, order kept.

    A chunk's release time is ``max(its start + its delay, previous release)`` so bytes never
    overtake each other; with ``rate`` the start is when the (link's shared) :class:`TokenBucket`
    lets the chunk go.
    """

    def __init__(self, params: LinkParams, rng: random.Random, bucket: TokenBucket | None = None) -> None:
        self.params = params
        self._delay = DelaySampler(params, rng)
        self._last_release = -math.inf
        self._bucket = bucket if bucket is not None else bucket_for(params)
        # With a rate, no piece may be larger than the bucket: a link serialises frame-sized units,
        # and a large chunk released whole would arrive ahead of the rate it is charged at.
        self.segment: int | None = params.segment
        if self._bucket is not None:
            self.segment = min(params.segment or self._bucket.burst, max(1, self._bucket.burst))

    def release_time(self, now: float, size: int) -> float:
        start = now if self._bucket is None else self._bucket.start_time(now, size)
        release = max(start + self._delay.sample(), self._last_release)
        self._last_release = release
        return release

    def continue_from(self, previous: StreamModel) -> None:
        """Take over a replaced model's queue position, so a change never reorders bytes."""
        self._last_release = previous._last_release


def default_burst(params: LinkParams) -> int:
    """Token bucket depth when none is given: 10 ms of the rate, at least one 1500-byte frame."""
    if not params.rate:
        return 0
    return max(1500, int(params.rate / 8.0 * 0.010))


def derive_rng(seed: int | str | None, *names: str) -> random.Random:
    """An independent, reproducible stream per link and direction (stable across processes)."""
    if seed is None:
        return random.Random()
    return random.Random(":".join([str(seed), *names]))
