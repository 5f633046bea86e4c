"""The pure impairment model: seeded, reproducible, and producing what netem's semantics say."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from harness.netmodel.model import (
    CorrelatedUniform,
    DatagramModel,
    DelaySampler,
    LossProcess,
    StreamModel,
    bucket_for,
    derive_rng,
    standard_cdf,
    standard_variate,
)
from harness.netmodel.params import build_params
from harness.netmodel.stats import BurstCounter


def _decisions(seed: int, n: int = 2000) -> list[list[tuple[float, object, bool]]]:
    params = build_params(delay="50ms", jitter="20ms", distribution="normal", loss="5%",
                          duplicate="2%", corrupt="1%", reorder="10%", gap=3)
    model = DatagramModel(params, derive_rng(seed, "mqtt", "up"))
    return [[(d.at, d.flip, d.duplicate) for d in model.decide(i * 0.001, 100)] for i in range(n)]


def test_same_seed_same_sequence_other_seed_other_sequence() -> None:
    assert _decisions(7) == _decisions(7)
    assert _decisions(7) != _decisions(8)


def test_streams_are_per_service_and_direction() -> None:
    a = derive_rng(1, "mqtt", "up").random()
    assert a == derive_rng(1, "mqtt", "up").random()
    assert a != derive_rng(1, "mqtt", "down").random()
    assert a != derive_rng(1, "ota", "up").random()


def test_random_loss_rate_within_binomial_bounds() -> None:
    n, p = 100_000, 0.05
    loss = LossProcess(build_params(loss="5%"), random.Random(3))
    lost = sum(loss.lost() for _ in range(n))
    sigma = math.sqrt(n * p * (1 - p))
    assert abs(lost - n * p) < 4 * sigma


def test_gilbert_elliott_bursts_match_the_model() -> None:
    params = build_params(gemodel="1% 25%")
    assert params.gemodel is not None
    loss = LossProcess(params, random.Random(11))
    bursts = BurstCounter()
    n = 200_000
    lost = 0
    for _ in range(n):
        outcome = loss.lost()
        lost += outcome
        bursts.outcome(outcome)
    summary = bursts.summary()
    assert summary["mean"] == pytest.approx(params.gemodel.mean_bad_run, rel=0.08)
    assert lost / n == pytest.approx(params.gemodel.mean_loss, rel=0.10)


def test_correlation_makes_successive_draws_alike() -> None:
    def lag1(rho: float) -> float:
        u = CorrelatedUniform(random.Random(5), rho)
        xs = [u.next() for _ in range(20_000)]
        mean = sum(xs) / len(xs)
        num = sum((a - mean) * (b - mean) for a, b in itertools.pairwise(xs))
        den = sum((a - mean) ** 2 for a in xs)
        return num / den

    assert abs(lag1(0.0)) < 0.05
    assert lag1(0.75) > 0.5


@pytest.mark.parametrize("distribution", ["uniform", "normal", "pareto", "paretonormal"])
def test_delay_distribution_matches_its_cdf(distribution: str) -> None:
    params = build_params(delay="100ms", jitter="10ms", distribution=distribution)
    sampler = DelaySampler(params, random.Random(21))
    n = 5000
    standard = sorted((sampler.sample() - 0.1) / 0.01 for _ in range(n))
    d = max(
        max(abs((i + 1) / n - standard_cdf(distribution, x)), abs(i / n - standard_cdf(distribution, x)))
        for i, x in enumerate(standard)
    )
    assert d < 1.63 / math.sqrt(n)  # KS critical value at the 1% level
    mean = sum(standard) / n
    assert abs(mean) < 0.1


def test_uniform_jitter_stays_within_delay_plus_minus_jitter_and_never_negative() -> None:
    sampler = DelaySampler(build_params(delay="10ms", jitter="5ms"), random.Random(1))
    draws = [sampler.sample() for _ in range(5000)]
    assert min(draws) >= 0.005 - 1e-12 and max(draws) <= 0.015
    wide = DelaySampler(build_params(delay="1ms", jitter="10ms", distribution="normal"), random.Random(1))
    assert min(wide.sample() for _ in range(5000)) == 0.0  # clamped, as netem sends "in the past" now


def test_standard_variates_are_monotone_and_clipped() -> None:
    for distribution in ("normal", "pareto", "paretonormal"):
        values = [standard_variate(distribution, i / 1000) for i in range(1001)]
        assert values == sorted(values)
        assert max(values) <= 32767 / 8192 and min(values) >= -32767 / 8192


def test_reorder_sends_every_gap_th_packet_at_once() -> None:
    model = DatagramModel(build_params(delay="100ms", reorder="100%", gap=5), random.Random(2))
    times = [model.decide(float(i), 10)[0].at - i for i in range(20)]
    early = [i for i, t in enumerate(times) if t == 0.0]
    assert early == [4, 9, 14, 19]
    assert all(t == pytest.approx(0.1) for i, t in enumerate(times) if i not in early)


def test_duplicate_and_corrupt() -> None:
    model = DatagramModel(build_params(duplicate="100%", corrupt="100%"), random.Random(9))
    data = bytes(range(64))
    copies = model.decide(0.0, len(data))
    assert len(copies) == 2 and copies[1].duplicate and copies[1].apply(data) == data
    flipped = copies[0].apply(data)
    diff = [a ^ b for a, b in zip(flipped, data, strict=True) if a != b]
    assert len(diff) == 1 and bin(diff[0]).count("1") == 1


def test_loss_takes_back_the_duplicate_first() -> None:
    model = DatagramModel(build_params(duplicate="100%", loss="100%"), random.Random(9))
    copies = model.decide(0.0, 10)
    assert len(copies) == 1 and model.last_lost


def test_datagram_rate_serialises_packets() -> None:
    model = DatagramModel(build_params(rate="8000bit"), random.Random(1))  # 1000 bytes/s
    times = [model.decide(0.0, 100)[0].at for _ in range(10)]
    assert times[-1] == pytest.approx(1.0)
    assert times == sorted(times)


def test_stream_keeps_byte_order_under_jitter() -> None:
    model = StreamModel(build_params(delay="20ms", jitter="19ms", distribution="pareto"), random.Random(4))
    releases = [model.release_time(i * 0.001, 100) for i in range(2000)]
    assert releases == sorted(releases)
    assert all(r >= i * 0.001 for i, r in enumerate(releases))


def test_stream_token_bucket_caps_the_rate() -> None:
    model = StreamModel(build_params(rate="80kbit", burst=1000), random.Random(4))  # 10 kB/s, 1 kB bucket
    releases = [model.release_time(0.0, 1000) for _ in range(100)]
    assert releases[0] == 0.0  # the bucket starts full
    assert releases[-1] == pytest.approx(100 * 0.1 - 0.1)


def test_one_bucket_caps_two_streams_together() -> None:
    params = build_params(rate="80kbit", burst=1000)  # 10 kB/s for the link
    bucket = bucket_for(params)
    a = StreamModel(params, random.Random(1), bucket)
    b = StreamModel(params, random.Random(2), bucket)
    last = 0.0
    for _ in range(50):
        last = max(a.release_time(0.0, 1000), b.release_time(0.0, 1000))
    assert last == pytest.approx(100 * 0.1 - 0.1)  # 100 kB at 10 kB/s, whichever stream sent it


def test_a_replaced_stream_model_keeps_the_order() -> None:
    old = StreamModel(build_params(delay="500ms"), random.Random(4))
    last = old.release_time(0.0, 10)
    new = StreamModel(build_params(delay="1ms"), random.Random(4))
    new.continue_from(old)
    assert new.release_time(0.01, 10) >= last
