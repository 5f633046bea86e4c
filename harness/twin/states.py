"""The firmware core's legal moves, in one table.

Each entry maps ``(state, event type)`` to the handler that runs and the states it may leave
the core in. Anything not in the table is an :class:`IllegalMove`; a handler that ends in a
state outside its row is a bug caught the same way. ``docs/twin.md`` draws its state diagram
from this table.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.twin.events import (
    ConsoleInput,
    NetConnected,
    NetDisconnected,
    NetMessage,
    NetPublished,
    PowerOn,
    TimerFired,
)
from harness.twin.http_events import HttpChunk, HttpDone, HttpFailed, HttpResponse

OFF = "off"  # constructed, not yet powered
BOOTING = "booting"  # bootloader done, waiting for the boot timer before the application starts
RUNNING = "running"  # shell prompt, ready for commands
BUSY = "busy"  # a long command (dump) is streaming; input is buffered
HALTED = "halted"  # nothing bootable (or a fatal fault); only a power cycle helps
# A software reset waits (at most harness.twin.device.RESET_DRAIN) for the broker to acknowledge the
# reports in flight, so that the last ones ("rebooting") are not lost with a connection that dies
# unnoticed or a broker that has not read them yet; console input is dropped, as on a resetting board.
STOPPING = "stopping"
RESET = "reset"  # a Reboot action was emitted; the runtime builds a new core from flash

STATES = (OFF, BOOTING, RUNNING, BUSY, HALTED, STOPPING, RESET)


class IllegalMove(Exception):
    """An event arrived in a state where it has no meaning (a runtime bug, not a device fault)."""


@dataclass(frozen=True)
class Move:
    handler: str
    next_states: frozenset[str]


def _move(handler: str, *states: str) -> Move:
    return Move(handler, frozenset(states))


NET_EVENTS = (NetConnected, NetDisconnected, NetPublished, NetMessage)
HTTP_EVENTS = (HttpResponse, HttpChunk, HttpDone, HttpFailed)

MOVES: dict[tuple[str, type], Move] = {
    (OFF, PowerOn): _move("power_on", BOOTING, HALTED),
    (BOOTING, ConsoleInput): _move("ignore_input", BOOTING),
    # The app starts (running), or crashes at start and waits for its watchdog (booting, then reset).
    (BOOTING, TimerFired): _move("timer", RUNNING, BOOTING, RESET),
    (RUNNING, ConsoleInput): _move("console_input", RUNNING, BUSY, STOPPING, RESET),
    (RUNNING, TimerFired): _move("timer", RUNNING, BUSY, STOPPING, RESET),
    (BUSY, ConsoleInput): _move("console_input", BUSY),
    (BUSY, TimerFired): _move("timer", BUSY, RUNNING, STOPPING, RESET),
    # The MQTT session (harness.twin.session, its own table) hears the network while the app runs.
    # Messages it subscribed to (OTA jobs) go to their owner; none of them resets the board by itself.
    **{(RUNNING, net): _move("net", RUNNING) for net in NET_EVENTS},
    **{(BUSY, net): _move("net", BUSY) for net in NET_EVENTS},
    (HALTED, ConsoleInput): _move("ignore_input", HALTED),
    # The OTA client (harness.twin.ota_client) hears its downloads; a verified image ends in a reboot.
    **{(RUNNING, http): _move("http", RUNNING, STOPPING, RESET) for http in HTTP_EVENTS},
    **{(BUSY, http): _move("http", BUSY, STOPPING, RESET) for http in HTTP_EVENTS},
    # Stopping: the last PUBACKs (or the connection's loss, or the drain timer) end in the reset.
    (STOPPING, ConsoleInput): _move("ignore_input", STOPPING),
    (STOPPING, TimerFired): _move("timer", RESET),
    **{(STOPPING, net): _move("net", STOPPING, RESET) for net in NET_EVENTS},
    **{(STOPPING, http): _move("ignore_http", STOPPING) for http in HTTP_EVENTS},
}


def legal_move(state: str, event: object) -> Move:
    """The row for ``event`` in ``state``, or :class:`IllegalMove` naming both."""
    move = MOVES.get((state, type(event)))
    if move is None:
        legal = sorted(cls.__name__ for (st, cls) in MOVES if st == state) or ["nothing"]
        raise IllegalMove(
            f"{type(event).__name__} is not a legal event in state {state!r} (legal there: {', '.join(legal)})"
        )
    return move
