"""The pure board runtime on a fake scheduler and in-memory executors: what the process host does, no pty."""

from __future__ import annotations

import json
from itertools import pairwise

from harness.twin import BOOT_DONE, PROMPT, TimerFired
from harness.twin.dump import LINE_BYTES
from harness.twin.events import NetConnect
from harness.twin.runtime import HIGH_WATER
from harness.twin.telemetry import telemetry_topic

from .pump import SMALL
from .runtime_fakes import WALL, Board

BOOT_TIME = 0.05  # RuntimeConfig's default, like the core's


def booted(flash: bytearray, **options: object) -> Board:
    board = Board(flash, SMALL, **options)  # type: ignore[arg-type]
    board.runtime.power_on("power-on", entropy=7)
    board.read_until(PROMPT)
    return board


def reboot(board: Board) -> None:
    board.type(b"reboot\r")
    board.read_until(BOOT_DONE.encode() + b"\r\n" + PROMPT)


def big_config(board: Board, keys: int = 6) -> None:
    """Enough config that the next config write spans several program units."""
    for i in range(keys):
        assert board.command(f"config set filler{i} {'v' * 120}") == ["OK"]


def test_boots_to_the_shell_prompt_at_the_boot_time(flash: bytearray) -> None:
    board = Board(flash, SMALL)
    board.runtime.power_on("power-on", entropy=7)
    text = board.read_until(PROMPT).decode()
    assert text.startswith("BOOT slot=A fw=1.0.0") and f"{BOOT_DONE}\r\n" in text
    done_at = [at for at, data in board.console.sent_at if BOOT_DONE.encode() in data]
    assert done_at == [BOOT_TIME]
    assert [f["state"] for f in board.reports.of("state")] == ["boot", "idle"]
    assert board.command("version")[0].startswith("fw 1.0.0 slot=A")
    assert board.runtime.statistics().timers == ()


def test_a_timer_drives_the_telemetry_publish_every_interval(flash: bytearray) -> None:
    board = booted(flash)
    assert board.command("config set mqtt.host broker") == ["OK"]
    assert board.command("config set telemetry.interval 0.5") == ["OK"]
    reboot(board)
    started = board.scheduler.time
    connects = [a for _, a in board.broker.actions if isinstance(a, NetConnect)]
    assert [(c.host, c.client_id) for c in connects] == [("broker", "twin-0001")]
    board.scheduler.run(started + 2.1)
    sent = board.broker.published(telemetry_topic("twin-0001"))
    payloads = [json.loads(a.payload) for _, a in sent]
    assert [p["seq"] for p in payloads] == [1, 2, 3, 4]
    gaps = [round(b[0] - a[0], 6) for a, b in pairwise(sent)]
    assert gaps == [0.5, 0.5, 0.5]
    assert abs(payloads[0]["ts"] - (WALL + sent[0][0])) < 0.01  # the scheduler's wall offset, no clock read
    assert "telemetry" in board.runtime.statistics().timers


def test_a_reboot_rebuilds_the_core_from_flash_and_cancels_the_old_timers(flash: bytearray) -> None:
    board = booted(flash)
    first = json.loads(board.command("status")[0])
    assert board.command("config set colour teal") == ["OK"]
    board.command("config set mqtt.host broker")
    reboot(board)
    board.scheduler.step(1.5)  # the first boot had no telemetry timer, the second does
    reboot(board)  # its telemetry timer must not reach the third core
    third = json.loads(board.command("status")[0])
    assert board.command("config get colour") == ["colour=teal"]  # read back from the flash store
    assert third["boot_count"] == first["boot_count"] + 2
    assert third["reset_cause"] == "software" and third["boot_id"] != first["boot_id"]
    assert [f["reason"] for f in board.reports.of("reboot")] == ["software", "software"]
    assert board.broker.resets == 2 and board.http.resets == 2 and board.reports.faults == []
    assert board.runtime.statistics().reboots == 2


def test_flash_programming_stalls_the_actions_that_follow(flash: bytearray) -> None:
    board = booted(flash, program_time=0.01)
    big_config(board)
    typed_at = board.scheduler.time
    board.type(b"config set colour teal\r")
    board.type(b"version\r")  # arrives during the stall: waits for the write to finish
    text = board.read_until(b"slot=A", within=2.0, step=0.002).decode()
    units = [at for at, _ in board.flash.programmed if at > typed_at]
    assert len(units) >= 2
    gaps = [round(b - a, 6) for a, b in pairwise([typed_at, *units])]
    assert gaps == [0.01] * len(units)  # one unit per program time, back to back
    ok_at = next(at for at, data in board.console.sent_at if b"OK" in data and at > typed_at)
    version_at = next(at for at, data in board.console.sent_at if b"fw 1.0.0" in data and at > typed_at)
    assert ok_at == units[-1] and version_at == units[-1]
    assert text.index("OK") < text.index("fw 1.0.0")


def test_power_off_inside_a_stall_loses_the_unit_being_programmed(flash: bytearray) -> None:
    board = booted(flash, program_time=0.01)
    big_config(board)
    before = len(board.flash.programmed)
    board.type(b"config set colour teal\r")
    board.scheduler.step(0.015)  # one unit landed, the second is being programmed
    board.runtime.power_off()
    board.scheduler.step(1.0)
    assert len(board.flash.programmed) == before + 1
    assert board.scheduler.pending() == [] and not board.runtime.statistics().powered
    board.runtime.power_on("power-on", entropy=8)
    board.read_until(PROMPT)
    assert board.command("config get colour") == ["ERR config key not set: colour"]  # the torn write is ignored


def test_console_backpressure_holds_timers_until_the_reader_catches_up(flash: bytearray) -> None:
    board = booted(flash, capacity=4096)
    lines = 8000
    board.type(b"dump %d\r" % (lines * LINE_BYTES))
    board.scheduler.step(1.0)  # nobody reads: the dump stops once the transmit buffer is above high water
    stats = board.runtime.statistics()
    assert stats.held == ("dump",) and HIGH_WATER < stats.tx_buffered < 2 * HIGH_WATER
    produced = len(board.console.unread) + stats.tx_buffered
    board.scheduler.step(10.0)
    assert len(board.console.unread) + board.runtime.statistics().tx_buffered == produced  # still held
    text = b""
    for _ in range(10_000):  # a slow reader: 4 KiB per millisecond of virtual time
        text += board.console.read()
        if b"DUMP-END" in text:
            break
        board.scheduler.step(0.001)
    if not text.endswith(PROMPT):
        text += board.read_until(PROMPT)
    assert f"DUMP-END lines={lines} ".encode() in text
    assert text.count(b"\r\n") >= lines and board.runtime.statistics().tx_dropped == 0


def test_output_to_a_console_that_is_gone_is_dropped_and_the_board_runs_on(flash: bytearray) -> None:
    board = booted(flash)
    board.console.gone = True
    board.type(b"uptime\r")
    board.scheduler.step(0.01)
    stats = board.runtime.statistics()
    assert stats.tx_buffered == 0 and stats.tx_dropped == len(b"uptime\r\nuptime 0.050\r\n") + len(PROMPT)
    board.console.gone = False
    assert board.command("version")[0].startswith("fw 1.0.0")


def test_a_core_that_raises_is_reported_as_a_fault_and_the_board_stops(flash: bytearray) -> None:
    board = booted(flash)
    board.runtime.feed(TimerFired("no-such-timer"))
    [(event, error)] = board.reports.faults
    assert event == TimerFired("no-such-timer") and "no-such-timer" in str(error)
    assert not board.runtime.statistics().powered and board.scheduler.pending() == []
    board.type(b"version\r")
    board.scheduler.step(1.0)
    assert board.console.read() == b""


def test_a_reboot_drops_the_old_cores_queued_network_events_but_keeps_typed_input(flash: bytearray) -> None:
    board = booted(flash, program_time=0.01)
    board.command("config set mqtt.host broker")
    reboot(board)
    topic = telemetry_topic("twin-0001")
    while not board.broker.published(topic):
        board.scheduler.step(0.0001)
    # The PUBACK is due in 1 ms; the config write stalls the board for longer, so the PUBACK waits in
    # the queue behind the Reboot. The new core (booting) must never see it; the typed line it must
    # (and, booting, ignores it).
    board.type(b"config set colour teal\rreboot\r")
    board.type(b"uptime\r")
    assert board.runtime.statistics().programming
    board.scheduler.step(0.005)
    assert board.runtime.statistics().queued_events == 2  # the PUBACK and the typed line
    text = board.read_until(BOOT_DONE.encode() + b"\r\n" + PROMPT).decode()
    assert "rebooting" in text and board.reports.faults == []
    assert board.runtime.device is not None and board.runtime.device.statistics().input_dropped == len(b"uptime\r")
    assert board.command("config get colour") == ["colour=teal"]
