"""An in-memory runtime for the firmware core: simulated clock, flash bytearray, optional power cut.

The pump is the test double of the process runtime: it executes actions exactly like
``harness.twin.host`` does (FlashWrite -> bytes in the flash image, StartTimer -> a due time,
Reboot -> a new core from flash), but in simulated time and with a write budget that models a
power cut after the k-th page-program unit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.twin import (
    PROMPT,
    Action,
    CancelTimer,
    ConsoleInput,
    ConsoleOutput,
    Device,
    Event,
    FlashLayout,
    FlashWrite,
    Halt,
    PowerOn,
    Reboot,
    StartTimer,
    StateChange,
    TimerFired,
)

SMALL = FlashLayout(slot_pages=96)  # 384 KiB slots: room for a 256 KiB test image, fast to copy
MAX_STEPS = 100_000


class PowerCut(Exception):
    """The write budget ran out: everything after the cut never happened."""


@dataclass
class Pump:
    flash: bytearray
    layout: FlashLayout = SMALL
    boot_time: float = 0.05
    write_budget: int | None = None  # None: unlimited; k: power dies before the (k+1)-th unit
    tear_last: bool = False  # the unit that hits the cut is half programmed
    now: float = 0.0
    output: bytearray = field(default_factory=bytearray)
    timers: dict[str, float] = field(default_factory=dict)
    states: list[str] = field(default_factory=list)
    halted: str | None = None
    reboots: list[str] = field(default_factory=list)
    writes: list[FlashWrite] = field(default_factory=list)
    device: Device | None = None
    entropy: int = 1

    def power_on(self, cause: str = "power-on") -> None:
        self.device = Device(self.flash, layout=self.layout, boot_time=self.boot_time)
        self.timers.clear()
        self.feed(PowerOn(cause, self.entropy))

    def feed(self, event: Event) -> None:
        assert self.device is not None
        self.apply(self.device.handle(event, self.now))

    def apply(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, ConsoleOutput):
                self.output += action.data
            elif isinstance(action, FlashWrite):
                self._program(action)
            elif isinstance(action, StartTimer):
                self.timers[action.name] = self.now + action.delay
            elif isinstance(action, CancelTimer):
                self.timers.pop(action.name, None)
            elif isinstance(action, StateChange):
                self.states.append(action.state)
            elif isinstance(action, Halt):
                self.halted = action.reason
            elif isinstance(action, Reboot):
                self.reboots.append(action.reason)
                self.entropy += 1
                self.power_on(action.reason)
                return

    def _program(self, write: FlashWrite) -> None:
        if self.write_budget is not None:
            if self.write_budget == 0:
                if self.tear_last:
                    half = write.data[: len(write.data) // 2]
                    self.flash[write.offset : write.offset + len(half)] = half
                raise PowerCut(f"power cut before unit write at offset {write.offset}")
            self.write_budget -= 1
        self.flash[write.offset : write.offset + len(write.data)] = write.data
        self.writes.append(write)

    def run(self, until: float | None = None) -> None:
        """Fire due timers in order (advancing the clock) until none is left or ``until`` is reached."""
        for _ in range(MAX_STEPS):
            if not self.timers:
                break
            name, due = min(self.timers.items(), key=lambda item: item[1])
            if until is not None and due > until:
                break
            self.now = max(self.now, due)
            del self.timers[name]
            self.feed(TimerFired(name))
        else:
            raise AssertionError(f"timers still pending after {MAX_STEPS} steps: {self.timers}")
        if until is not None:
            self.now = max(self.now, until)

    def boot(self) -> str:
        """Power on and run to the prompt; return everything printed."""
        self.power_on()
        self.run()
        return self.take()

    def take(self) -> str:
        text = self.output.decode()
        self.output.clear()
        return text

    def type(self, data: bytes) -> str:
        self.feed(ConsoleInput(data))
        self.run()
        return self.take()

    def command(self, line: str) -> list[str]:
        """Type ``line`` + CR; return the reply lines (echo and trailing prompt stripped)."""
        text = self.type(line.encode() + b"\r")
        echo = line + "\r\n"
        assert text.startswith(echo), f"expected echo {echo!r}, got {text[:80]!r}"
        assert text.endswith(PROMPT.decode()), f"expected the prompt at the end, got {text[-80:]!r}"
        body = text[len(echo) : -len(PROMPT)]
        return body.split("\r\n")[:-1] if body else []
