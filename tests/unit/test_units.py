from __future__ import annotations

import pytest

from harness.errors import UnitError
from harness.units import (
    format_duration,
    parse_duration,
    parse_fraction,
    parse_quantity,
    parse_rate,
    parse_size,
    parse_size_per_hour,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("300ms", 0.3), ("2s", 2.0), ("1h30m", 5400.0), ("1.5", 1.5), (3, 3.0), ("250us", 250e-6),
     ("1d", 86400.0), ("2m 30s", 150.0), ("0", 0.0)],
)
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["5 parsecs", "ms", "", "-1s", "1h30", True, "1.2.3s"])
def test_bad_durations_say_what_is_accepted(bad):
    with pytest.raises(UnitError, match="expected a duration"):
        parse_duration(bad)


@pytest.mark.parametrize(("text", "frac"), [("2%", 0.02), ("0.5 %", 0.005), ("100%", 1.0), (0.25, 0.25)])
def test_fractions(text, frac):
    assert parse_fraction(text) == pytest.approx(frac)


@pytest.mark.parametrize("bad", ["150%", "-1%", "2", "lots"])
def test_bad_fractions(bad):
    with pytest.raises(UnitError, match="percentage"):
        parse_fraction(bad)


@pytest.mark.parametrize(
    ("text", "bps"), [("384kbit", 384e3), ("1mbit", 1e6), ("10kbps", 80e3), ("2Mbit/s", 2e6), (9600, 9600)]
)
def test_rates_follow_tc(text, bps):
    assert parse_rate(text) == pytest.approx(bps)


@pytest.mark.parametrize("bad", ["fast", "0kbit", "10 furlongs"])
def test_bad_rates(bad):
    with pytest.raises(UnitError):
        parse_rate(bad)


def test_sizes_and_quantities():
    assert parse_size("4KiB") == 4096
    assert parse_size("1MB") == 1_000_000
    assert parse_quantity("500mA", "A") == pytest.approx(0.5)
    assert parse_quantity("3.3V", "V") == pytest.approx(3.3)
    with pytest.raises(UnitError, match="expected a value in V"):
        parse_quantity("3.3A", "V")


@pytest.mark.parametrize(("seconds", "text"), [(0.3, "300ms"), (2.5, "2.5s"), (5400, "1h30m"), (90061, "1d1h1m1s")])
def test_format_duration_round_trips(seconds, text):
    assert format_duration(seconds) == text
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "per_hour"),
    [("200B/h", 200.0), ("2MiB/h", 2 * 1024**2), ("1KiB/min", 61440.0), ("50B/s", 180000.0), ("48kB/d", 2000.0),
     (" 4 KiB / h ", 4096.0)],
)
def test_sizes_per_hour(text, per_hour):
    assert parse_size_per_hour(text) == pytest.approx(per_hour)


@pytest.mark.parametrize(
    ("bad", "message"),
    [("200B", "expected a size per time such as '200B/h'"), ("200B/week", "(per s, min, h, d)"),
     ("lots/h", "expected a size such as '4KiB' or '1MB' (units B, kB, MB, GB, KiB, MiB, GiB), got 'lots' in 'lots/h'"),
     (200, "got 200")],
)
def test_bad_sizes_per_hour_say_what_is_accepted(bad, message):
    with pytest.raises(UnitError) as info:
        parse_size_per_hour(bad)
    assert message in str(info.value)
