"""Parameter validation: netem names and units in, one-line errors naming the parameter out."""

from __future__ import annotations

from typing import Any

import pytest

from harness.errors import ConfigError
from harness.netmodel.params import CLEAR, GEModel, build_directions, build_params


def test_netem_names_and_units_are_read() -> None:
    p = build_params(delay="100ms", jitter="10ms", delay_correlation="25%", distribution="normal",
                     loss="1.5%", rate="384kbit", segment="1KiB")
    assert p.delay == pytest.approx(0.1)
    assert p.jitter == pytest.approx(0.01)
    assert p.delay_correlation == pytest.approx(0.25)
    assert p.distribution == "normal"
    assert p.loss == pytest.approx(0.015)
    assert p.rate == pytest.approx(384_000)
    assert p.segment == 1024


def test_latency_is_an_alias_of_delay_and_bare_numbers_are_seconds() -> None:
    assert build_params(latency=0.25).delay == pytest.approx(0.25)
    assert build_params(latency="250ms") == build_params(delay="250ms")


def test_changes_merge_onto_the_base() -> None:
    base = build_params(delay="50ms", loss="1%")
    merged = build_params(base, loss="3%")
    assert merged.delay == pytest.approx(0.05) and merged.loss == pytest.approx(0.03)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("1%", GEModel(p=0.01, r=0.99, bad_loss=1.0, good_loss=0.0)),  # tc: r defaults to 1-p
        ("1% 10%", GEModel(p=0.01, r=0.10)),
        (("1%", "10%", "70%", "0.1%"), GEModel(p=0.01, r=0.10, bad_loss=0.70, good_loss=0.001)),
        ({"p": "5%", "r": "50%"}, GEModel(p=0.05, r=0.5)),
    ],
)
def test_gemodel_forms(given: Any, expected: GEModel) -> None:
    got = build_params(gemodel=given).gemodel
    assert got is not None
    for field in ("p", "r", "bad_loss", "good_loss"):
        assert getattr(got, field) == pytest.approx(getattr(expected, field))


def test_gemodel_mean_loss_and_burst() -> None:
    ge = GEModel(p=0.01, r=0.25)
    assert ge.mean_loss == pytest.approx(0.01 / 0.26)
    assert ge.mean_bad_run == pytest.approx(4.0)


def test_reorder_without_gap_means_gap_one() -> None:
    assert build_params(delay="10ms", reorder="25%").gap == 1


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"loss": "150%"}, "loss: expected a percentage from 0% to 100%, got '150%'"),
        ({"loss": -0.1}, "loss: expected a percentage from 0% to 100%, got -0.1"),
        ({"delay": "-5ms"}, "delay: expected a time of zero or more, got '-5ms'"),
        ({"delay": "5kg"}, "delay: expected a time such as '100ms' or '2s', got '5kg'"),
        ({"jitter": "10%"}, "jitter: expected a time such as '100ms' or '2s', got '10%'"),
        ({"latency": True}, "latency: expected a time such as '100ms' or '2s', got True"),
        ({"distribution": "gaussian"}, "distribution: expected one of uniform, normal, pareto, paretonormal"),
        ({"rate": "fast"}, "rate: expected a rate such as '384kbit'"),
        ({"rate": 0}, "rate: expected a rate above zero"),
        ({"segment": 0}, "segment: expected a size of at least 1 byte(s), got 0"),
        ({"gap": -1}, "gap: expected a whole number of packets, 0 or more, got -1"),
        ({"lossy": "1%"}, "lossy: unknown parameter; expected one of"),
        ({"gemodel": "1% 2% 3% 4% 5%"}, "gemodel: expected 1 to 4 values 'p [r [1-h [1-k]]]'"),
        ({"gemodel": "1% 200%"}, "gemodel r: expected a percentage from 0% to 100%, got '200%'"),
        ({"loss": "1%", "gemodel": "1%"}, "gemodel: use either random 'loss' or 'gemodel', not both"),
        ({"reorder": "10%"}, "reorder: reordering needs a delay"),
        ({"burst": "10KiB"}, "burst: a token bucket depth needs a 'rate'"),
        ({"delay": "1ms", "latency": "2ms"}, "latency: given twice"),
    ],
)
def test_bad_parameters_give_one_line_naming_the_parameter(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        build_params(**changes)
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith(message), text


def test_direction_is_checked() -> None:
    current = {"up": CLEAR, "down": CLEAR}
    with pytest.raises(ConfigError, match=r"^direction: expected 'up' \(device to service\), 'down' or 'both'"):
        build_directions(current, "sideways", {"delay": "1ms"})
    only_up = build_directions(current, "up", {"delay": "1ms"})
    assert only_up["up"].delay == pytest.approx(0.001) and only_up["down"] is CLEAR


def test_describe_lists_only_what_was_set() -> None:
    described = build_params(delay="20ms", gemodel="1% 25%").describe()
    assert described["delay"] == pytest.approx(0.02)
    assert described["gemodel"]["r"] == pytest.approx(0.25)
    assert "loss" not in described and "jitter" not in described
    assert CLEAR.describe() == {} and CLEAR.is_clear
