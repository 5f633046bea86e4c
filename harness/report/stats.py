"""Small statistics the reports need, with numpy only (scipy is not a dependency).

* :func:`t_quantile` — Student's t quantile, by bisection on the exact CDF (regularized incomplete
  beta function, continued fraction as in Numerical Recipes §6.4).
* :func:`fit_slope` — least-squares slope with a confidence interval, pooled *within* segments:
  each segment (a device boot) may start at its own level, all share one slope. A heap that is
  refilled by every reboot still shows its leak, instead of a saw-tooth fitted as one line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, eps = 1e-300, 3e-16
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    ln_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    front = math.exp(ln_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t, ``df`` degrees of freedom."""
    if df <= 0:
        raise ValueError(f"degrees of freedom must be positive, got {df}")
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t, ``df`` degrees of freedom (``t_quantile(0.975, 10)`` = 2.228)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"quantile level must be in (0, 1), got {p}")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
        if hi > 1e12:
            return math.inf
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile, ``q`` in 0..1; None for no values."""
    if len(values) == 0:
        return None
    return float(np.percentile(np.asarray(values, dtype=float), q * 100.0))


@dataclass(frozen=True)
class SlopeFit:
    """A fitted slope (value per second) with its confidence interval."""

    slope: float
    low: float
    high: float
    stderr: float
    n: int
    segments: int
    dof: int
    confidence: float
    level: float  # fitted value at ``at`` (the last sample of the last segment)
    at: float

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0.0 or self.high < 0.0


def fit_slope(
    t: Sequence[float],
    v: Sequence[float],
    segments: Sequence[object] | None = None,
    *,
    confidence: float = 0.95,
) -> SlopeFit | None:
    """Least-squares slope of ``v`` over ``t`` with one intercept per segment; None if too little data.

    Degrees of freedom are ``n - segments - 1``; at least one is needed for an interval.
    """
    tt = np.asarray(t, dtype=float)
    vv = np.asarray(v, dtype=float)
    seg = np.zeros(len(tt), dtype=int) if segments is None else _codes(segments)
    ok = np.isfinite(tt) & np.isfinite(vv)
    tt, vv, seg = tt[ok], vv[ok], seg[ok]
    if len(tt) < 3:
        return None
    dt = np.empty_like(tt)
    dv = np.empty_like(vv)
    groups = np.unique(seg)
    for g in groups:
        m = seg == g
        dt[m] = tt[m] - tt[m].mean()
        dv[m] = vv[m] - vv[m].mean()
    sxx = float(np.dot(dt, dt))
    dof = len(tt) - len(groups) - 1
    if sxx <= 0.0 or dof < 1:
        return None
    slope = float(np.dot(dt, dv)) / sxx
    resid = dv - slope * dt
    s2 = float(np.dot(resid, resid)) / dof
    stderr = math.sqrt(s2 / sxx)
    half = t_quantile(0.5 + confidence / 2.0, dof) * stderr
    last = seg[int(np.argmax(tt))]
    m = seg == last
    at = float(tt[m].max())
    level = float(vv[m].mean() + slope * (at - tt[m].mean()))
    return SlopeFit(
        slope, slope - half, slope + half, stderr, len(tt), len(groups), dof, confidence, level, at
    )


def _codes(labels: Sequence[object]) -> np.ndarray:
    index: dict[object, int] = {}
    return np.asarray([index.setdefault(x, len(index)) for x in labels], dtype=int)
