"""The harness's exception tree.

Errors from pyserial, pyvisa, paho and sockets are translated into these at the driver
boundary, with the rig, device and step attached, so a test sees one family of errors and
every message says what was expected, what was found and where.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class HarnessError(Exception):
    """Base of every error the harness raises on purpose."""


@dataclass(frozen=True)
class Location:
    """A place in a rig or scenario file: file, 1-based line and column, dotted field path."""

    file: str
    line: int | None = None
    column: int | None = None
    field: str = ""

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return where


MAX_PROBLEMS = 20
"""How many problems of one file a ConfigError lists, one a line; the rest are counted."""


class ConfigError(HarnessError):
    """A rig or scenario file (or a command-line value) is not what was expected.

    Each problem is one line: ``file:line:col: field: what was expected (got ...)``. An error
    about a file with several problems lists them all, one a line, in the order they appear in
    the file (the first is this error's own ``detail`` and ``location``), up to
    :data:`MAX_PROBLEMS`; ``file: ... and N more problems`` counts the rest.
    """

    def __init__(
        self, message: str, location: Location | None = None, *, more: Sequence[ConfigError] = (),
        omitted: int = 0,
    ) -> None:
        self.location = location
        self.detail = message
        self.more = [p for extra in more for p in extra.problems]
        self.omitted = omitted
        lines = [_one_line(message, location), *(_one_line(p.detail, p.location) for p in self.more)]
        if omitted > 0:
            where = f"{location.file}: " if location is not None else ""
            lines.append(f"{where}... and {omitted} more problem{'s' if omitted > 1 else ''}")
        super().__init__("\n".join(lines))

    @property
    def problems(self) -> list[ConfigError]:
        """Every problem listed, each a ConfigError of one line."""
        return [ConfigError(self.detail, self.location), *self.more]

    @classmethod
    def of(cls, problems: Sequence[ConfigError], limit: int = MAX_PROBLEMS) -> ConfigError:
        """One error listing ``problems`` (at least one), the first ``limit`` of them in full."""
        flat = [p for problem in problems for p in problem.problems]
        if not flat:
            raise ValueError("ConfigError.of needs at least one problem")
        first, shown = flat[0], flat[1:limit]
        return cls(first.detail, first.location, more=shown, omitted=len(flat) - 1 - len(shown))


def _one_line(message: str, location: Location | None) -> str:
    if location is None:
        return message
    if location.field:
        return f"{location}: {location.field}: {message}"
    return f"{location}: {message}"


class UnitError(ConfigError):
    """A quantity with a unit ("300ms", "2%") could not be read."""


class RigError(HarnessError):
    """A rig could not be brought up, or went away while in use."""


class CapabilityMissing(RigError):
    """The rig lacks a capability (console, power, network, ...) a test or scenario needs."""


class ConsoleError(HarnessError):
    """The console port failed (could not open, closed under us, write failed)."""


class ExpectTimeout(ConsoleError):
    """An expected pattern did not appear on the console in time."""

    def __init__(self, pattern: str, timeout: float, last_lines: Sequence[str], port: str = "") -> None:
        self.pattern = pattern
        self.timeout = timeout
        self.last_lines = list(last_lines)
        self.port = port
        tail = " | ".join(line for line in self.last_lines[-5:]) or "<nothing received>"
        on = f" on {port}" if port else ""
        super().__init__(
            f"timed out after {timeout:g}s waiting for {pattern!r}{on}; last output: {tail}"
        )


class PowerError(HarnessError):
    """The power supply could not be reached or refused a command."""


class InstrumentError(PowerError):
    """An instrument reported an error in its SCPI error queue after a command."""

    def __init__(self, instrument: str, command: str, errors: Sequence[tuple[int, str]]) -> None:
        self.instrument = instrument
        self.command = command
        self.errors = list(errors)
        listed = "; ".join(f"{code},{msg!r}" for code, msg in self.errors)
        super().__init__(f"instrument {instrument} rejected {command!r}: {listed}")


class DeviceError(HarnessError):
    """The device under test answered, but not as its profile says it should."""
