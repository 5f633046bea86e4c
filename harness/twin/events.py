"""Events into the firmware core and actions out of it — the whole vocabulary in one module.

The core (:class:`harness.twin.device.Device`) is sans-IO: a runtime feeds it :data:`Event`
objects together with the time on the runtime's clock and executes the :data:`Action` objects
it returns, in order. New capabilities (network, MQTT, HTTP) add new dataclasses here and new
members to the two unions; runtimes ignore actions they do not know only by explicit choice.
"""

from __future__ import annotations

from dataclasses import dataclass

# --------------------------------------------------------------------------- events (into the core)


@dataclass(frozen=True)
class PowerOn:
    """Supply came up (or the core was reset). ``entropy`` seeds every random choice of this boot."""

    reset_cause: str
    entropy: int


@dataclass(frozen=True)
class ConsoleInput:
    """Bytes received on the console UART."""

    data: bytes


@dataclass(frozen=True)
class TimerFired:
    """A timer started with :class:`StartTimer` expired (and was not cancelled)."""

    name: str


Event = PowerOn | ConsoleInput | TimerFired

# --------------------------------------------------------------------------- actions (out of the core)


@dataclass(frozen=True)
class ConsoleOutput:
    """Bytes to transmit on the console UART."""

    data: bytes


@dataclass(frozen=True)
class FlashWrite:
    """Program ``data`` at ``offset``: exactly one page-program unit (aligned, at most one unit long)."""

    offset: int
    data: bytes


@dataclass(frozen=True)
class StartTimer:
    """(Re)start the timer ``name``; deliver :class:`TimerFired` after ``delay`` seconds."""

    name: str
    delay: float


@dataclass(frozen=True)
class CancelTimer:
    """Cancel the timer ``name`` if it is pending."""

    name: str


@dataclass(frozen=True)
class Reboot:
    """Restart the core from what flash holds, with ``reset_cause=reason``."""

    reason: str


@dataclass(frozen=True)
class StateChange:
    """Power-relevant activity changed: ``"boot"``, ``"idle"`` or ``"busy"`` (drives the current model)."""

    state: str


@dataclass(frozen=True)
class Halt:
    """The firmware stopped for good (until the next power-on); ``reason`` says why.

    Later actions in the same list (the console lines explaining the halt) are still executed.
    Like :class:`StateChange`, it precedes the console output it explains.
    """

    reason: str


Action = ConsoleOutput | FlashWrite | StartTimer | CancelTimer | Reboot | StateChange | Halt

#: The values :class:`StateChange` may carry.
ACTIVITY_STATES = ("boot", "idle", "busy")
