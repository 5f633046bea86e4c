"""A lost VISA session against the twin's real SCPI supply: the supply restarted (a power-cycled or
re-plugged bench supply), the supply gone for good, and sessions closed under the driver by other code.

No pyvisa mocks: the twin's rig process is stopped and started again on the same port, exactly what a
lab supply whose mains or LAN drops does to a session.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import pyvisa

from harness.drivers.power import WHAT_TO_DO, PowerSupply, resource_manager
from harness.errors import PowerError
from harness.run.journal import Journal, read_journal
from tests.twin.served import ServedTwin, start_served, stop_served

FAST = (0.05, 0.1, 0.2)  # reconnect pauses for the tests: three attempts in 0.35 s


def scpi_port(twin: ServedTwin) -> str:
    return twin.scpi.split("::")[2]


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    j = Journal(tmp_path / "journal.jsonl")
    try:
        yield j
    finally:
        j.close()


def plain_query(resource: str, command: str) -> str:
    """Ask the supply with a plain pyvisa client of pyvisa's shared manager (what any other tool uses)."""
    manager = pyvisa.ResourceManager("@py")
    inst = manager.open_resource(resource, read_termination="\n", write_termination="\n", timeout=5000)
    try:
        return str(inst.query(command)).strip()
    finally:
        inst.close()


def test_closing_pyvisas_shared_manager_leaves_the_drivers_session_alone(twin: ServedTwin) -> None:
    # What tests/twin/test_serve.py's fixture used to do to the session rig in a serial run.
    with PowerSupply(twin.scpi, channel=int(twin.ready["channel"]), reconnect_delays=()) as psu:
        shared = pyvisa.ResourceManager("@py")
        shared.open_resource(twin.scpi)
        shared.close()  # closes every session opened through pyvisa's shared manager
        assert psu.is_on() is False
        psu.on()
        assert psu.is_on() is True
        assert psu.statistics()["reconnects"] == 0


def test_a_restarted_supply_is_reopened_and_nothing_is_reapplied(
    twin: ServedTwin, tmp_path: Path, journal: Journal
) -> None:
    channel = int(twin.ready["channel"])
    with PowerSupply(twin.scpi, channel=channel, name="bench:psu", journal=journal) as psu:
        psu.set(2.5, 0.4)
        psu.on()
        assert psu.is_on() is True
        stop_served(twin)  # the supply loses mains: its socket closes under the session
        again = start_served(tmp_path, ["--scpi-port", scpi_port(twin), "--power", "off"])
        try:
            assert again.scpi == twin.scpi
            assert psu.is_on() is False  # answered after one reopen, and the output was not switched back on
            assert psu.statistics()["reconnects"] == 1
            # the set point the driver had sent before is not re-sent: the supply is as its power-on left it
            assert plain_query(twin.scpi, f"VOLT? (@{channel})") != "2.500"
            psu.on()  # and the session works as before
            assert psu.is_on() is True
        finally:
            stop_served(again)
    journal.flush()
    reconnects = [r for r in read_journal(journal.path) if r["kind"] == "power" and r["action"] == "reconnect"]
    assert len(reconnects) == 1 and reconnects[0]["source"] == "bench:psu" and reconnects[0]["attempts"] >= 1


def test_a_supply_that_stays_gone_gives_one_clear_error_after_bounded_retries(twin: ServedTwin) -> None:
    psu = PowerSupply(twin.scpi, channel=int(twin.ready["channel"]), name="bench:psu", reconnect_delays=FAST)
    with psu:
        assert psu.is_on() is False
        stop_served(twin)
        started = time.monotonic()
        with pytest.raises(PowerError) as info:
            psu.on()
        took = time.monotonic() - started
    message = str(info.value)
    assert message.startswith(f"power bench:psu ({twin.scpi}): lost the VISA session (")
    assert "3 reopen attempts over " in message and "(last: [Errno 111] Connection refused)" in message
    assert message.endswith(WHAT_TO_DO)
    assert "\n" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__  # no chained traceback
    assert sum(FAST) <= took < sum(FAST) + 3 * psu.timeout, took
    assert not psu.is_open


def test_a_session_closed_under_the_driver_is_reopened(twin: ServedTwin) -> None:
    with PowerSupply(twin.scpi, channel=int(twin.ready["channel"]), reconnect_delays=FAST) as psu:
        psu.on()
        resource_manager().close()  # someone closed the harness's own manager (and so the session)
        assert psu.is_on() is True
        assert psu.statistics()["reconnects"] == 1


def test_reconnection_can_be_turned_off(twin: ServedTwin) -> None:
    with PowerSupply(twin.scpi, channel=int(twin.ready["channel"]), reconnect_delays=()) as psu:
        resource_manager().close()
        with pytest.raises(PowerError, match=r"lost the VISA session .* and reconnection is off"):
            psu.is_on()
