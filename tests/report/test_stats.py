"""The t quantile and the pooled slope fit the trends rest on."""

from __future__ import annotations

import random

import pytest

from harness.report.stats import fit_slope, percentile, t_cdf, t_quantile


@pytest.mark.parametrize(
    ("p", "df", "expected"),
    [  # from standard t tables
        (0.975, 1, 12.7062),
        (0.975, 2, 4.3027),
        (0.975, 5, 2.5706),
        (0.975, 10, 2.2281),
        (0.975, 30, 2.0423),
        (0.95, 10, 1.8125),
        (0.995, 20, 2.8453),
        (0.975, 1e6, 1.9600),
    ],
)
def test_t_quantile_matches_tables(p: float, df: float, expected: float) -> None:
    assert t_quantile(p, df) == pytest.approx(expected, abs=2e-4)


def test_t_quantile_is_symmetric_and_inverts_the_cdf() -> None:
    assert t_quantile(0.025, 7) == pytest.approx(-t_quantile(0.975, 7))
    assert t_quantile(0.5, 3) == 0.0
    assert t_cdf(t_quantile(0.9, 4), 4) == pytest.approx(0.9, abs=1e-9)


@pytest.mark.parametrize("p", [0.0, 1.0, -0.1, 1.5])
def test_t_quantile_rejects_levels_outside_0_1(p: float) -> None:
    with pytest.raises(ValueError, match="quantile level"):
        t_quantile(p, 5)


def test_fit_recovers_a_slope_and_its_interval_covers_it() -> None:
    rng = random.Random(3)
    t = [float(i) for i in range(200)]
    v = [5.0 - 0.25 * x + rng.gauss(0, 1.0) for x in t]
    fit = fit_slope(t, v)
    assert fit is not None
    assert fit.low < -0.25 < fit.high
    assert fit.slope == pytest.approx(-0.25, abs=0.01)
    assert fit.dof == 198 and fit.segments == 1


def test_fit_pools_segments_so_a_sawtooth_keeps_its_slope() -> None:
    # three boots, each refilling to 1000 and leaking 2 per second: one line through it all would be flat-ish
    t, v, seg = [], [], []
    for boot in range(3):
        for i in range(50):
            t.append(boot * 50.0 + i)
            v.append(1000.0 - 2.0 * i)
            seg.append(boot)
    pooled = fit_slope(t, v, seg)
    single = fit_slope(t, v)
    assert pooled is not None and single is not None
    assert pooled.slope == pytest.approx(-2.0)
    assert pooled.level == pytest.approx(1000.0 - 2.0 * 49)
    assert abs(single.slope) < 0.5


def test_fit_needs_enough_points() -> None:
    assert fit_slope([0.0, 1.0], [1.0, 2.0]) is None
    assert fit_slope([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]) is None  # no spread in time


def test_percentile() -> None:
    assert percentile([], 0.5) is None
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == pytest.approx(2.5)
