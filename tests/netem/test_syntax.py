"""``tc netem`` option strings read into the point's keyword parameters."""

from __future__ import annotations

from typing import Any

import pytest

from harness.drivers.netem import build_params, parse_netem
from harness.errors import ConfigError


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("delay 100ms", {"delay": "100ms"}),
        ("delay 100ms 10ms 25% distribution normal",
         {"delay": "100ms", "jitter": "10ms", "delay_correlation": "25%", "distribution": "normal"}),
        ("loss 1%", {"loss": "1%"}),
        ("loss random 1% 25%", {"loss": "1%", "loss_correlation": "25%"}),
        ("loss gemodel 1% 10% 70% 0.1%", {"gemodel": "1% 10% 70% 0.1%"}),
        ("duplicate 1% corrupt 0.1% 5%", {"duplicate": "1%", "corrupt": "0.1%", "corrupt_correlation": "5%"}),
        ("delay 10ms reorder 25% 50% gap 5",
         {"delay": "10ms", "reorder": "25%", "reorder_correlation": "50%", "gap": 5}),
        ("rate 256kbit", {"rate": "256kbit"}),
    ],
)
def test_netem_strings(spec: str, expected: dict[str, Any]) -> None:
    parsed = parse_netem(spec)
    assert parsed == expected
    build_params(**parsed)  # and the values are valid parameters


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("delya 10ms", r"^netem: unknown keyword 'delya'; expected one of delay, distribution"),
        ("delay", r"^netem: 'delay' expects TIME \[JITTER \[CORRELATION\]\], got 'nothing'$"),
        ("delay 1ms 2ms 3% 4%", r"^netem: 'delay' expects TIME"),
        ("limit 1000", r"^netem: 'limit' is not supported by the userspace point"),
        ("loss state 1%", r"^netem: 'loss state' \(4-state Markov\) is not supported"),
        ("loss 1% loss 2%", r"^netem: 'loss' given twice$"),
        ("loss gemodel", r"^netem: 'loss gemodel' expects p \[r \[1-h \[1-k\]\]\], got 'nothing'$"),
    ],
)
def test_bad_netem_strings(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_netem(spec)
