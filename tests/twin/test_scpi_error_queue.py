"""The twin supply's error queue against SCPI-99's rule, through a plain pyvisa client on its socket.

SCPI-99 (21.8): the error/event queue is a FIFO; when it is full the last entry is replaced by
``-350,"Queue overflow"`` and later errors are discarded, so the oldest errors stay readable, then
the -350, then ``0,"No error"``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import pyvisa

from harness.twin.supply import QUEUE_DEPTH

from .served import start_served, stop_served

#: Commands that each queue one known error, so the order of a readout is checkable.
FAULTS = [
    ("BOGUS", '-113,"Undefined header"'),
    ("VOLT 99", '-222,"Data out of range"'),
    ("VOLT abc", '-104,"Data type error"'),
    ("VOLT", '-109,"Missing parameter"'),
    ("OUTP MAYBE", '-224,"Illegal parameter value"'),
    ("*IDN? 1", '-108,"Parameter not allowed"'),
    ("VO-LT 1", '-100,"Command error"'),
]
OVERFLOW = '-350,"Queue overflow"'
NO_ERROR = '0,"No error"'


@pytest.fixture
def supply(tmp_path: Path) -> Iterator[pyvisa.resources.MessageBasedResource]:
    twin = start_served(tmp_path, ["--power", "off"])
    manager = pyvisa.ResourceManager("@py")
    resource = manager.open_resource(twin.scpi, read_termination="\n", write_termination="\n", timeout=10000)
    assert isinstance(resource, pyvisa.resources.MessageBasedResource)
    try:
        resource.write("*CLS")
        yield resource
    finally:
        resource.close()  # not the manager: pyvisa shares it with the whole process
        stop_served(twin)


def make_errors(supply: pyvisa.resources.MessageBasedResource, first: int, count: int) -> list[str]:
    """Send ``count`` faulty commands (numbered from ``first``); the errors they queue, in order."""
    expected = []
    for n in range(first, first + count):
        command, error = FAULTS[n % len(FAULTS)]
        supply.write(command)
        expected.append(error)
    return expected


def drain(supply: pyvisa.resources.MessageBasedResource) -> list[str]:
    """Read the queue until ``0,"No error"`` (included), at most twice its depth."""
    replies: list[str] = []
    for _ in range(2 * QUEUE_DEPTH):
        replies.append(supply.query("SYST:ERR?").strip())
        if replies[-1] == NO_ERROR:
            return replies
    raise AssertionError(f"the error queue did not empty in {2 * QUEUE_DEPTH} reads; read {replies}")


def test_a_full_queue_keeps_the_oldest_errors_then_one_overflow(supply) -> None:
    sent = make_errors(supply, 0, QUEUE_DEPTH + 15)
    assert drain(supply) == [*sent[: QUEUE_DEPTH - 1], OVERFLOW, NO_ERROR]


def test_errors_while_the_overflow_is_unread_are_dropped_not_turned_into_more_overflows(supply) -> None:
    # A client reading one error per command while every command makes two: the old queue turned one
    # real error into another -350 per round, until it held twenty -350s and nothing else.
    sent = make_errors(supply, 0, QUEUE_DEPTH + 5)
    read: list[str] = []
    made: list[str] = []
    for round_ in range(QUEUE_DEPTH):  # the last round reads the -350
        read.append(supply.query("SYST:ERR?").strip())
        made = make_errors(supply, len(sent) + 2 * round_, 2)
    read += drain(supply)
    # the oldest real errors in order, ONE overflow, then what came after the overflow was read
    assert read == [*sent[: QUEUE_DEPTH - 1], OVERFLOW, *made, NO_ERROR]


def test_cls_empties_the_queue_and_clears_the_overflow(supply) -> None:
    make_errors(supply, 0, QUEUE_DEPTH + 3)
    supply.write("*CLS")
    assert supply.query("SYST:ERR?").strip() == NO_ERROR
    sent = make_errors(supply, 3, 2)
    assert drain(supply) == [*sent, NO_ERROR]
