"""The SCPI power supply model: syntax, dialects, error queue (no sockets)."""

from __future__ import annotations

import pytest

from harness.twin.scpi import Session, parse_unit, split_units
from harness.twin.supply import QUEUE_DEPTH, PowerSupply


@pytest.fixture
def supply() -> PowerSupply:
    return PowerSupply(serial="SN1", draw=lambda channel: 0.0321, defaults={1: (3.3, 0.5)})


def run(supply: PowerSupply, *lines: str) -> list[str | None]:
    session = Session()
    return [supply.execute(line, session) for line in lines]


@pytest.mark.parametrize(
    ("lines", "replies"),
    [
        (["*IDN?"], ["TWIN-LABS,TWIN-PSU3,SN1,1.0"]),
        (["*idn?"], ["TWIN-LABS,TWIN-PSU3,SN1,1.0"]),
        (["OUTP?", "OUTP ON", "OUTPUT:STATE?"], ["0", None, "1"]),
        (["outp 1;:outp?;outp 0;outp?"], ["1;0"]),
        (["VOLT?", "SOUR:VOLT:LEV:IMM:AMPL 2.5", "volt?"], ["3.300", None, "2.500"]),
        (["VOLT 500mV;VOLT?", "CURR 250 mA;CURR?"], ["0.500", "0.250"]),
        (["VOLT MAX;VOLT?", "VOLT MIN;VOLT?", "VOLT DEF;VOLT?"], ["30.000", "0.000", "3.300"]),
        (["MEAS:VOLT?;MEAS:CURR?"], ["0.0000;0.0000"]),
        (["OUTP ON;MEAS:VOLT?;CURR?"], ["3.3000;0.0321"]),
        (["OUTP ON;MEAS:SCAL:CURR:DC?"], ["0.0321"]),
        (["CURR 0.01;OUTP ON;MEAS:CURR?"], ["0.0100"]),
        (
            ["INST?", "INST:NSEL 2", "INST?", "INST:NSEL?", "INST:SEL CH3", "INST:SEL?"],
            ["CH1", None, "CH2", "2", None, "CH3"],
        ),
        # Rigol DP800 forms
        ([":OUTP CH2,ON", ":OUTP? CH2", ":OUTP? CH1"], [None, "ON", "OFF"]),
        ([":APPL CH2,5,0.2", ":APPL? CH2"], [None, "CH2:30V/3A,5.000,0.2000"]),
        (
            [":OUTP CH1,ON", ":MEAS:VOLT? CH1", ":MEAS:CURR? CH1", ":MEAS:CURR? CH2"],
            [None, "3.3000", "0.0321", "0.0000"],
        ),
        ([":INST CH3", ":INST?"], [None, "CH3"]),
        # Keysight E36300 forms
        (["OUTP ON,(@1)", "OUTP? (@1)", "OUTP? (@1:3)"], [None, "1", "1,0,0"]),
        (
            ["VOLT 3.0,(@1,3)", "VOLT? (@1:3)", "CURR 0.7,(@2)", "CURR? (@2)"],
            [None, "3.000,0.000,3.000", None, "0.700"],
        ),
        (["OUTP ON,(@1)", "MEAS:VOLT? (@1)", "MEAS:CURR? (@1)"], [None, "3.3000", "0.0321"]),
        (["*RST", "OUTP? (@1:3)", "VOLT? (@1)"], [None, "0,0,0", "3.300"]),
    ],
)
def test_commands(supply: PowerSupply, lines: list[str], replies: list[str | None]) -> None:
    assert run(supply, *lines) == replies


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("BOGUS", '-113,"Undefined header"'),
        ("MEAS:VOLT", '-113,"Undefined header"'),
        ("*RST?", '-113,"Undefined header"'),
        ("OUTP:BOGUS ON", '-113,"Undefined header"'),
        ("VOLT 99", '-222,"Data out of range"'),
        ("VOLT -1", '-222,"Data out of range"'),
        ("CURR 3.5", '-222,"Data out of range"'),
        ("VOLT 7,(@3)", '-222,"Data out of range"'),
        ("OUTP MAYBE", '-224,"Illegal parameter value"'),
        ("OUTP ON,(@4)", '-224,"Illegal parameter value"'),
        (":OUTP CH9,ON", '-224,"Illegal parameter value"'),
        ("INST:SEL CH7", '-224,"Illegal parameter value"'),
        ("VOLT abc", '-104,"Data type error"'),
        ("VOLT", '-109,"Missing parameter"'),
        ("*IDN? 1", '-108,"Parameter not allowed"'),
        ("VOLT 1,2", '-108,"Parameter not allowed"'),
        ("VO-LT 1", '-100,"Command error"'),
    ],
)
def test_errors_go_to_the_queue(supply: PowerSupply, line: str, error: str) -> None:
    assert run(supply, line, "SYST:ERR?", "SYST:ERR?") == [None, error, '0,"No error"']


def test_error_queue_is_fifo_and_cleared_by_cls(supply: PowerSupply) -> None:
    assert run(supply, "BOGUS;VOLT 99", "SYST:ERR?;SYST:ERR:NEXT?") == [
        None,
        '-113,"Undefined header";-222,"Data out of range"',
    ]
    assert run(supply, "BOGUS", "*CLS", "SYST:ERR?") == [None, None, '0,"No error"']


def test_error_queue_overflow_keeps_the_oldest(supply: PowerSupply) -> None:
    run(supply, *["BOGUS"] * (QUEUE_DEPTH + 5))
    replies = run(supply, *["SYST:ERR?"] * (QUEUE_DEPTH + 1))
    assert replies[: QUEUE_DEPTH - 1] == ['-113,"Undefined header"'] * (QUEUE_DEPTH - 1)
    assert replies[QUEUE_DEPTH - 1 :] == ['-350,"Queue overflow"', '0,"No error"']


def test_errors_after_an_unread_overflow_are_dropped(supply: PowerSupply) -> None:
    run(supply, *["BOGUS"] * QUEUE_DEPTH, "VOLT 99")  # the 21st error overflows the queue
    for _ in range(QUEUE_DEPTH - 1):  # read one, make two: never more than one -350, oldest errors kept
        assert run(supply, "SYST:ERR?", "VOLT 99;VOLT 99")[0] == '-113,"Undefined header"'
    assert run(supply, "SYST:ERR?", "SYST:ERR?") == ['-350,"Queue overflow"', '0,"No error"']
    assert run(supply, "VOLT abc", "SYST:ERR?") == [None, '-104,"Data type error"']  # queued again once read


def test_compound_headers_are_relative_to_the_previous_path(supply: PowerSupply) -> None:
    assert run(supply, "OUTP ON;:MEAS:VOLT?;CURR?") == ["3.3000;0.0321"]
    assert run(supply, "SOUR:VOLT 2.0;CURR 0.3", "VOLT?;CURR?") == [None, "2.000;0.300"]


def test_sessions_keep_their_own_path_but_share_the_error_queue(supply: PowerSupply) -> None:
    first, second = Session(), Session()
    supply.execute("MEAS:VOLT?", first)
    supply.execute("BOGUS", second)
    assert supply.execute("SYST:ERR?", first) == '-113,"Undefined header"'


def test_syntax_helpers() -> None:
    assert split_units(" a ; b;;c ") == ["a", "b", "c"]
    assert split_units("VOLT 1,(@1;2)") == ["VOLT 1,(@1;2)"]
    unit = parse_unit(":OUTP:STAT? (@1,2)")
    assert (unit.tokens, unit.query, unit.params, unit.absolute) == (
        ("OUTP", "STAT"),
        True,
        ("(@1,2)",),
        True,
    )
