"""Tolerance values with units, allowances, and what the renderings show."""

from __future__ import annotations

import pytest

from harness.errors import UnitError
from harness.report.compare import Comparison, MetricDelta
from harness.report.compare_render import html, markdown
from harness.report.tolerances import DEFAULTS, Tolerance, parse_relative, parse_value


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [
        ("150ms", "duration", 0.15),
        ("2s", "duration", 2.0),
        (3, "duration", 3.0),
        ("100B/h", "bytes_per_h", 100.0),
        ("1.5kB/h", "bytes_per_h", 1500.0),
        (-50, "bytes_per_h", 50.0),
        ("2mV/h", "volts_per_h", 0.002),
        ("0.01V/h", "volts_per_h", 0.01),
        ("5mA", "amps", 0.005),
        ("0.2A", "amps", 0.2),
        ("250mW", "watts", 0.25),
        (2, "count", 2.0),
    ],
)
def test_absolute_values_in_base_units(value: object, kind: str, expected: float) -> None:
    assert parse_value(value, kind) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("value", "kind"),
    [("fast", "duration"), ("5 parsecs", "bytes_per_h"), (True, "count"), ("x", "count"), ("3V", "amps")],
)
def test_bad_absolute_values(value: object, kind: str) -> None:
    with pytest.raises(UnitError, match="expected"):
        parse_value(value, kind)


def test_relative_values() -> None:
    assert parse_relative("20%") == pytest.approx(0.2)
    assert parse_relative("150%") == pytest.approx(1.5)
    assert parse_relative(0.1) == pytest.approx(0.1)
    with pytest.raises(UnitError):
        parse_relative("twenty")


def test_allowance_is_the_larger_of_absolute_and_relative() -> None:
    tol = Tolerance("ota.duration.max", "higher", "duration", relative=0.2, absolute=5.0)
    assert tol.allowance(10.0) == pytest.approx(5.0)
    assert tol.allowance(100.0) == pytest.approx(20.0)


@pytest.mark.parametrize(
    ("metric", "baseline", "current", "regressed", "improved"),
    [
        ("heap.slope", -100.0, -160.0, True, False),  # leaking faster: lower is worse
        ("heap.slope", -100.0, -140.0, False, False),
        ("heap.slope", -200.0, -100.0, False, True),
        ("boot.time.p95", 1.0, 1.3, True, False),
        ("boot.time.p95", 1.0, 1.2, False, False),
        ("reboots.unexpected", 0.0, 1.0, True, False),
    ],
)
def test_direction_decides(
    metric: str, baseline: float, current: float, regressed: bool, improved: bool
) -> None:
    d = MetricDelta(metric, baseline, current, DEFAULTS[metric])
    assert (d.regressed, d.improved) == (regressed, improved)


def test_renderings_escape_test_names() -> None:
    cmp = Comparison("run<1>", "base")
    cmp.new_failures = ["t.py::test_x[<script>alert(1)</script>]"]
    page = html(cmp)
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "`t.py::test_x[<script>alert(1)</script>]`" in markdown(cmp)  # Markdown shows it as code
