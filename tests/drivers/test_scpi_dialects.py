"""The dialect table: lookup, command rendering, reply parsing."""

from __future__ import annotations

import pytest

from harness.drivers.scpi_dialects import DIALECTS, get_dialect, parse_error_reply
from harness.errors import ConfigError


def test_unknown_dialect_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as info:
        get_dialect("tektronix-9000")
    message = str(info.value)
    assert "'tektronix-9000'" in message
    for name in ("generic", "rigol-dp800", "keysight-e36300", "siglent-spd3303"):
        assert name in message


@pytest.mark.parametrize(
    ("dialect", "template", "values", "expected"),
    [
        ("generic", "output_on", {}, ["INST:NSEL 2", "OUTP ON"]),
        ("generic", "set_voltage", {"v": 3.3}, ["INST:NSEL 2", "VOLT 3.3"]),
        ("rigol-dp800", "output_off", {}, [":OUTP CH2,OFF"]),
        ("rigol-dp800", "apply", {"v": 5.0, "a": 0.25}, [":APPL CH2,5,0.25"]),
        ("rigol-dp800", "measure_current", {}, [":MEAS:CURR? CH2"]),
        ("keysight-e36300", "set_current", {"a": 0.1}, ["CURR 0.1,(@2)"]),
        ("keysight-e36300", "output_query", {}, ["OUTP? (@2)"]),
        ("siglent-spd3303", "set_voltage", {"v": 12.0}, ["CH2:VOLT 12"]),
        ("siglent-spd3303", "output_on", {}, ["OUTP CH2,ON"]),
    ],
)
def test_commands_render_per_dialect(
    dialect: str, template: str, values: dict[str, float], expected: list[str]
) -> None:
    d = get_dialect(dialect)
    assert d.commands(getattr(d, template), 2, **values) == expected


def test_numbers_are_plain_decimals() -> None:
    d = get_dialect("generic")
    assert d.commands(d.set_voltage, 1, v=1e-7)[-1] == "VOLT 0"
    assert d.commands(d.set_voltage, 1, v=0.000123)[-1] == "VOLT 0.000123"


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ('0,"No error"', (0, "No error")),
        ('-113,"Undefined header"', (-113, "Undefined header")),
        ('+0,"No error"\n', (0, "No error")),
        ("0  No Error", (0, "No Error")),
    ],
)
def test_error_replies_parse(reply: str, expected: tuple[int, str]) -> None:
    assert parse_error_reply(reply) == expected


def test_garbage_error_reply_is_rejected() -> None:
    with pytest.raises(ValueError, match="is not"):
        parse_error_reply("hello")


def test_output_state_words_and_status_bits() -> None:
    assert DIALECTS["generic"].parse_output_state("1", 1) is True
    assert DIALECTS["rigol-dp800"].parse_output_state("OFF", 1) is False
    siglent = DIALECTS["siglent-spd3303"]
    assert siglent.parse_output_state("0x0010", 1) is True
    assert siglent.parse_output_state("0x0010", 2) is False
    assert siglent.parse_output_state("0x30", 2) is True
    with pytest.raises(ValueError, match="neither"):
        DIALECTS["generic"].parse_output_state("maybe", 1)
