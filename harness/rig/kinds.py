"""Rig kinds: what a rig file's ``kind:`` means, in one table.

A kind says which sections a rig of it needs and refuses, which parts it brings without a section
(a twin brings its own console and supply), whether a process claims it before opening it (a board
serves one process at a time; every process starts its own twin), which device id it reports and
how its endpoints come up. Code that behaves differently per kind asks :func:`kind_of`; nothing else
looks at which sections a rig file has.

``virtual`` (a twin in simulated time) and ``labgrid`` (a board reserved through a labgrid
coordinator) are known names that are refused with a one-line "not available yet" until they exist.
"""

from __future__ import annotations

import difflib
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar, Literal, get_args

from harness.errors import ConfigError

if TYPE_CHECKING:
    from harness.rig.rig import Rig
    from harness.rig.spec import RigSpec

RigKind = Literal["board", "twin", "virtual", "labgrid"]
KIND_NAMES: tuple[str, ...] = get_args(RigKind)


class Kind(ABC):
    """The behaviour of one available rig kind."""

    name: ClassVar[RigKind]
    summary: ClassVar[str]
    brings: ClassVar[frozenset[str]] = frozenset()
    """Parts (``console``, ``power``) a rig of this kind has without a section naming them."""
    claimed: ClassVar[bool] = False
    """A process claims the rig before opening it (harness.rig.claim); it may be a member of a pool."""

    @abstractmethod
    def sections_problem(self, spec: RigSpec) -> str | None:
        """``"field: what is wrong"`` when the spec's sections do not fit this kind, else None."""

    def device_id(self, spec: RigSpec) -> str:
        """The id the device is told to use on the broker."""
        return spec.name

    def telemetry_device(self, spec: RigSpec) -> str | None:
        """The device whose telemetry the ``telemetry`` fixture shows (None: whatever the device calls itself)."""
        return None

    @abstractmethod
    def start_endpoints(self, rig: Rig) -> None:
        """Start what the rig needs running and set ``rig.console_url`` and ``rig.power_resource``."""


class Board(Kind):
    name = "board"
    summary = "a physical board on a bench: the harness opens the console URL and the supply the file names"
    claimed = True

    def sections_problem(self, spec: RigSpec) -> str | None:
        if spec.twin is not None:
            return "twin: a board rig has no twin section; remove it, or set kind: twin"
        if spec.console is None:
            return ("console: a board rig needs a console (console.url: a pyserial URL such as /dev/ttyUSB0 or "
                    "rfc2217://host:port), or a twin section for the digital twin")  # fmt: skip
        if spec.console.url is None:
            return "console.url: a board rig needs the console's pyserial URL"
        if spec.power is not None and spec.power.resource is None:
            return "power.resource: a board rig needs the supply's VISA resource string"
        return None

    def start_endpoints(self, rig: Rig) -> None:
        spec = rig.spec
        rig.console_url = spec.console.url if spec.console else None
        rig.power_resource = spec.power_spec.resource if spec.power else None


class Twin(Kind):
    name = "twin"
    summary = "the harness's digital twin, started by the harness (one per pytest-xdist worker)"
    brings = frozenset({"console", "power"})

    def sections_problem(self, spec: RigSpec) -> str | None:
        if spec.twin is None:
            return "kind: a twin rig needs a twin section (twin: {} takes every default)"
        if spec.console is not None and spec.console.url is not None:
            return "console.url: a twin rig gets its console from the twin; remove url or the twin section"
        if spec.power is not None and spec.power.resource is not None:
            return "power.resource: a twin rig gets its supply from the twin; remove resource or the twin section"
        return None

    def device_id(self, spec: RigSpec) -> str:
        assert spec.twin is not None  # sections_problem
        return spec.twin.device_id

    def telemetry_device(self, spec: RigSpec) -> str | None:
        return self.device_id(spec)

    def start_endpoints(self, rig: Rig) -> None:
        from harness.rig.twin_process import TwinProcess

        spec = rig.spec
        assert spec.twin is not None  # sections_problem
        rig.twin = TwinProcess.start(spec.twin, spec.power_spec, rig.workdir, name=spec.twin.device_id)
        rig.add_closer(rig.twin.close)
        rig.console_url = rig.twin.endpoints.console
        rig.power_resource = rig.twin.endpoints.scpi
        if spec.twin.console_transport == "rfc2217":
            rig.console_url = rig.serve_rfc2217(rig.twin.endpoints.console)


KINDS: dict[str, Kind] = {kind.name: kind for kind in (Board(), Twin())}
"""The kinds a rig can be today."""

NOT_AVAILABLE: dict[str, str] = {
    "virtual": "a virtual twin runs in simulated time, which the harness cannot do yet",
    "labgrid": "reserving a board through a labgrid coordinator is not built yet",
}
"""Known kinds that cannot be used yet, and why."""

assert set(KINDS) | set(NOT_AVAILABLE) == set(KIND_NAMES)


def kind_problem(value: object) -> str | None:
    """What is wrong with a ``kind:`` value, one line with a did-you-mean, or None."""
    if value in KINDS:
        return None
    available = ", ".join(KINDS)
    if value in NOT_AVAILABLE:
        return f"{value!r} rigs are not available yet ({NOT_AVAILABLE[str(value)]}); available: {available}"
    message = f"expected one of {available} (later also {', '.join(NOT_AVAILABLE)}), got {value!r}"
    hint = difflib.get_close_matches(str(value), KIND_NAMES, n=1, cutoff=0.6)
    if hint:
        message += f"; did you mean {hint[0]!r}?"
    return message


def default_kind(data: dict[str, object]) -> RigKind:
    """The kind of a rig file without ``kind:``: a twin when it has a twin section, else a board."""
    return "twin" if data.get("twin") is not None else "board"


def kind_of(spec: RigSpec) -> Kind:
    """The behaviour of the spec's kind (a validated spec's kind is always available)."""
    try:
        return KINDS[spec.kind]
    except KeyError:
        raise ConfigError(f"rig {spec.name!r}: kind: {kind_problem(spec.kind)}") from None
