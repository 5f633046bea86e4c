"""The device under test as a test sees it: boot, wait until ready, ask its version, reboot.

A small strategy in labgrid's sense: it moves the device between states (off, booting, ready)
with the console and power drivers, following the device profile, and journals every step.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from harness.errors import CapabilityMissing, DeviceError, ExpectTimeout, HarnessError, RigError
from harness.rig.profile import DeviceProfile

if TYPE_CHECKING:
    from harness.drivers.console import Console
    from harness.drivers.power import PowerSupply
    from harness.run.journal import Journal


@dataclass(frozen=True)
class BootRecord:
    """One observed boot: why, how long from power/reset to prompt, and what it printed."""

    reason: str
    seconds: float
    lines: list[str] = field(default_factory=list)


class Dut:
    """Drive one device through its console and power supply, as its profile describes."""

    def __init__(
        self,
        console: Console | None,
        power: PowerSupply | None,
        profile: DeviceProfile,
        *,
        journal: Journal | None = None,
        name: str = "dut",
        off_time: float = 0.2,
    ) -> None:
        self._console = console
        self._power = power
        self.profile = profile
        self.journal = journal
        self.name = name
        self.off_time = off_time
        self._boot_done = re.compile(profile.boot_done, re.MULTILINE)
        self._error = re.compile(profile.error_pattern, re.MULTILINE)
        self.boots: list[BootRecord] = []
        # The reports find every boot in the journaled console lines, the ones the harness did not wait
        # for included (a scenario's power cut, a watchdog reset): they need this profile's patterns.
        self._record("device", action="profile", profile=profile.name, **profile.boot_patterns())

    # -- capabilities -------------------------------------------------------------------------
    @property
    def console(self) -> Console:
        if self._console is None:
            raise CapabilityMissing(f"{self.name}: this rig has no console")
        return self._console

    @property
    def power(self) -> PowerSupply:
        if self._power is None:
            raise CapabilityMissing(f"{self.name}: this rig has no power supply")
        return self._power

    # -- states --------------------------------------------------------------------------------
    def wait_ready(
        self,
        timeout: float | None = None,
        *,
        reason: str = "boot",
        since: float | None = None,
        mark: int | None = None,
    ) -> BootRecord:
        """Wait for the boot-done marker and then the prompt.

        ``since`` (monotonic) and ``mark`` (console position) say when the boot began, so the
        record's time and lines cover it from power-on, not from when the waiting started.
        """
        start = time.monotonic() if since is None else since
        limit = self.profile.boot_timeout if timeout is None else timeout
        mark = self.console.mark() if mark is None else mark
        self.console.expect(self._boot_done, timeout=limit)
        left = max(1.0, limit - (time.monotonic() - start))
        self.console.expect(self.profile.prompt, timeout=left)
        record = BootRecord(reason, time.monotonic() - start, self.console.lines_since(mark))
        self.boots.append(record)
        self._record("boot", reason=reason, seconds=round(record.seconds, 6))
        return record

    def power_on(self, timeout: float | None = None) -> BootRecord | None:
        """Switch the supply on and wait until the device is ready.

        Already on: nothing boots; returns None once the device answers its prompt (or, if it
        does not, after a power cycle brought it back).
        """
        if self.power.is_on():
            return None if self.is_responsive() else self.power_cycle(timeout=timeout)
        self.console.flush_input()
        mark, start = self.console.mark(), time.monotonic()
        self.power.on()
        return self.wait_ready(timeout, reason="power-on", since=start, mark=mark)

    def power_off(self) -> None:
        self.power.off()

    def power_cycle(self, off_for: float | None = None, timeout: float | None = None) -> BootRecord:
        """Cut power for ``off_for`` seconds (the rig's default off time), restore it, wait ready."""
        off = self.off_time if off_for is None else off_for
        self.power.off()
        # The off time is the injected condition itself, not a wait for an event: a device that
        # is unpowered has nothing to signal. Bytes already in flight are drained meanwhile.
        threading.Event().wait(off)
        self.console.flush_input()
        mark, start = self.console.mark(), time.monotonic()
        self.power.on()
        return self.wait_ready(timeout, reason="power-cycle", since=start, mark=mark)

    def reboot(self, timeout: float | None = None) -> BootRecord:
        """Ask the firmware to reboot itself and wait until it is ready again."""
        mark, start = self.console.mark(), time.monotonic()
        self.request_reboot(by="dut.reboot")
        return self.wait_ready(timeout, reason="reboot", since=start, mark=mark)

    def request_reboot(self, *, by: str) -> None:
        """Send the profile's reboot command without waiting, journaled first as a ``reset`` record so the
        reports count the boot that follows as a software reboot the harness asked for (``by`` says who)."""
        self._record("reset", action="reboot", by=by)
        self.console.sendline(self.profile.reboot_command)

    def ensure_ready(self, timeout: float | None = None) -> None:
        """Bring the device to its prompt from whatever state it is in."""
        if self._power is not None and not self._power.is_on():
            self.power_on(timeout)
            return
        if self.is_responsive():
            return
        if self._power is None:
            # No supply to cycle: a fresh boot may still be on its way.
            self.wait_ready(timeout, reason="already-booting")
            return
        self.power_cycle(timeout=timeout)

    # -- talking ---------------------------------------------------------------------------
    def command(self, cmd: str, timeout: float | None = None, *, check: bool = True) -> str:
        """Run a shell command and return its output; ``check`` raises on the profile's error pattern."""
        out = self.console.command(cmd, timeout=self.profile.command_timeout if timeout is None else timeout)
        if check and self._error.search(out):
            raise DeviceError(f"{self.name}: command {cmd!r} failed: {out.strip()}")
        return out

    def version(self) -> str:
        query = self.profile.version
        out = self.command(query.command)
        m = re.search(query.pattern, out)
        if not m:
            raise DeviceError(
                f"{self.name}: {query.command!r} answered {out.strip()!r}, "
                f"which does not match the profile's version pattern {query.pattern!r}"
            )
        return m.group("version")

    def set_config(self, key: str, value: str) -> str:
        return self.command(self.profile.set_config.format(key=key, value=value))

    def is_responsive(self, timeout: float = 3.0) -> bool:
        """An empty line answered by a prompt within ``timeout``."""
        try:
            self.console.flush_input()
            self.console.sendline("")
            self.console.expect(self.profile.prompt, timeout=timeout)
        except ExpectTimeout:
            return False
        return True

    def health_check(self) -> str | None:
        """Check the device answers; recover it by a power cycle if not.

        Returns None when healthy, or a sentence saying what was wrong and how it was recovered.
        Raises :class:`RigError` when the device cannot be brought back.
        """
        if self._power is not None and not self._power.is_on():
            self.power_on()  # off is a normal state between tests (a test may end with a cut)
            return None
        if self.is_responsive():
            return None
        tail = " | ".join(self.console.log_tail(5)) or "<nothing>"
        if self._power is None:
            raise RigError(f"{self.name}: not answering on its console and the rig has no power to cycle "
                           f"it; last output: {tail}")
        try:
            self.power_cycle()
        except HarnessError as exc:
            raise RigError(f"{self.name}: not answering (last output: {tail}) and a power cycle did "
                           f"not bring it back: {exc}") from exc
        return f"device did not answer (last output: {tail}); recovered by a power cycle"

    def _record(self, kind: str, **fields: object) -> None:
        if self.journal is not None:
            self.journal.record(kind, device=self.name, **fields)
