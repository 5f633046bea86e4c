"""A Rig: one device and everything that reaches it, brought up from a rig file.

The rig's kind (:mod:`harness.rig.kinds`) brings its endpoints up: for a twin rig the harness starts
the twin's rig process first; for a board it opens the console URL and the VISA resource the file
names. Tests only ever see the drivers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import CapabilityMissing, HarnessError, RigError
from harness.rig.dut import Dut
from harness.rig.kinds import kind_of
from harness.rig.spec import RigSpec

if TYPE_CHECKING:
    from harness.drivers.console import Console
    from harness.drivers.power import PowerSupply
    from harness.rig.twin_process import TwinProcess
    from harness.run.journal import Journal


class Rig:
    """The live resources of one rig; close() releases all of them (and stops a twin)."""

    def __init__(self, spec: RigSpec, source: str, workdir: Path, journal: Journal | None = None) -> None:
        self.spec = spec
        self.source = source
        self.workdir = workdir
        self.journal = journal
        self.twin: TwinProcess | None = None
        self.console_url: str | None = None
        self.power_resource: str | None = None
        self._console: Console | None = None
        self._power: PowerSupply | None = None
        self._closers: list[Any] = []
        self.dut: Dut | None = None

    @classmethod
    def open(cls, spec: RigSpec, source: str, workdir: Path, journal: Journal | None = None) -> Rig:
        rig = cls(spec, source, workdir, journal)
        try:
            rig._bring_up()
        except BaseException:
            rig.close()
            raise
        return rig

    def _bring_up(self) -> None:
        self.start_endpoints()
        if self.journal is not None:
            self.journal.record(
                "rig", action="open", rig=self.spec.name, source=self.source,
                console=self.console_url, power=self.power_resource,
            )  # fmt: skip
        if self.power_resource is not None:
            self._power = self.make_power().open()
            self._closers.append(self._power.close)
        if self.console_url is not None:
            self._console = self.make_console().open()
            self._closers.append(self._console.close)
        self.dut = Dut(
            self._console,
            self._power,
            self.spec.profile,
            journal=self.journal,
            name=self.device_name,
            off_time=self.spec.power_spec.off_time,
        )

    def start_endpoints(self) -> None:
        """Start what this rig needs running (a twin, its RFC 2217 server) and learn where the console
        and the supply are; opens neither (``harness rig check`` opens each on its own)."""
        kind_of(self.spec).start_endpoints(self)

    def add_closer(self, closer: Callable[[], object]) -> None:
        """Call ``closer`` when the rig closes (closers run newest first)."""
        self._closers.append(closer)

    @property
    def device_name(self) -> str:
        return self.spec.device_id

    def make_power(self, *, program: bool = True) -> PowerSupply:
        """The supply's driver, not yet opened; ``program``: set the rig's voltage and limit on open."""
        from harness.drivers.power import PowerSupply

        if self.power_resource is None:
            raise CapabilityMissing(f"rig {self.spec.name!r} has no power supply")
        power_spec = self.spec.power_spec
        return PowerSupply(
            self.power_resource,
            dialect=power_spec.dialect,
            channel=power_spec.channel,
            name=f"{self.spec.name}:psu",
            journal=self.journal,
            timeout=power_spec.timeout,
            voltage=power_spec.voltage if program else None,
            current_limit=power_spec.current_limit if program else None,
        )

    def make_console(self) -> Console:
        """The console's driver, not yet opened."""
        from harness.drivers.console import Console

        if self.console_url is None:
            raise CapabilityMissing(f"rig {self.spec.name!r} has no console")
        profile = self.spec.profile
        return Console(
            self.console_url,
            baudrate=self.spec.console_spec.baudrate,
            name=self.device_name,
            journal=self.journal,
            prompt=profile.prompt,
            line_ending=profile.line_ending,
            echo=profile.echo,
        )

    def serve_rfc2217(self, device: str) -> str:
        """Put ``device`` behind an RFC 2217 server on loopback for the rig's life; its URL."""
        from harness.drivers.rfc2217_server import Rfc2217Server

        server = Rfc2217Server(device, host="127.0.0.1", port=0)
        server.start()
        self.add_closer(server.stop)
        return server.url

    @property
    def capabilities(self) -> frozenset[str]:
        return self.spec.capabilities()

    @property
    def console(self) -> Console:
        if self._console is None:
            raise CapabilityMissing(f"rig {self.spec.name!r} has no console")
        return self._console

    @property
    def power(self) -> PowerSupply:
        if self._power is None:
            raise CapabilityMissing(f"rig {self.spec.name!r} has no power supply")
        return self._power

    @property
    def console_if_any(self) -> Console | None:
        """The opened console, or None when the rig has none (``console`` raises instead)."""
        return self._console

    @property
    def power_if_any(self) -> PowerSupply | None:
        """The opened supply, or None when the rig has none (``power`` raises instead)."""
        return self._power

    def death(self) -> str | None:
        """What died under us (a twin's rig process: the rig cannot be recovered in place), with where
        to look; None while the rig is alive."""
        if self.twin is None or self.twin.alive():
            return None
        return f"the twin's rig process died (log: {self.twin.log_path})"

    def close(self) -> None:
        errors: list[str] = []
        while self._closers:
            closer = self._closers.pop()
            try:
                closer()
            except HarnessError as exc:
                errors.append(str(exc))
            except OSError as exc:
                errors.append(f"{closer}: {exc}")
        if self.journal is not None:
            with contextlib.suppress(Exception):
                self.journal.record("rig", action="close", rig=self.spec.name, errors=errors)
        if errors:
            raise RigError(f"rig {self.spec.name!r} did not close cleanly: {'; '.join(errors)}")
