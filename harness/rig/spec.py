"""Rig files: validated data about where a device's console, power and services are.

A rig file's ``kind:`` says what it is (:mod:`harness.rig.kinds`): the harness's digital twin
(``kind: twin`` and a ``twin:`` section) or a physical board (``kind: board``, ``console.url``,
``power.resource``). Either way the tests see the same fixtures. See ``docs/rigs.md`` for the format.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from harness.errors import ConfigError
from harness.fieldtypes import Amps, Duration, Volts
from harness.rig.kinds import RigKind, default_kind, kind_of, kind_problem
from harness.rig.profile import DeviceProfile, get_profile
from harness.rig.visa import resource_problem


def _has_console(spec: RigSpec) -> bool:
    return "console" in kind_of(spec).brings or spec.console is not None


def _has_power(spec: RigSpec) -> bool:
    return "power" in kind_of(spec).brings or spec.power is not None


def _has_telemetry(spec: RigSpec) -> bool:
    return spec.services is not None and _has_console(spec) and bool(spec.profile.broker_setup)


def _has_network(spec: RigSpec) -> bool:
    return _has_telemetry(spec) and spec.services is not None and spec.services.network


def _has_ota(spec: RigSpec) -> bool:
    return _has_telemetry(spec) and spec.profile.takes_ota


CAPABILITY_RULES: tuple[tuple[str, str, Callable[[RigSpec], bool]], ...] = (
    ("console", "`kind: twin`, or a `console` section (a board's `console.url`)", _has_console),
    ("power", "`kind: twin`, or a `power` section (a board's `power.resource`)", _has_power),
    ("network", "`telemetry`, and `services.network: true` (the default): the device's service traffic "
                "goes through the impairment point", _has_network),
    ("telemetry", "`console`, a `services` section, and a profile with `broker_setup` commands", _has_telemetry),
    ("ota", "`telemetry`, and a profile that takes updates (`ota_delivery: mqtt`, or an `ota_apply` command)",
     _has_ota),
)  # fmt: skip
"""Each capability, when a rig has it (the table in docs/rigs.md is this one), and the test of it."""

CAPABILITIES = tuple(name for name, _, _ in CAPABILITY_RULES)


_URL_SCHEMES = ("rfc2217", "socket", "loop", "spy", "alt", "hwgrep", "cp2110")
"""pyserial's URL handlers; anything without ``://`` is a device path (/dev/ttyUSB0, COM3)."""


def console_url_problem(url: str) -> str | None:
    """What is wrong with a pyserial URL's syntax, or None (whether the port exists is ``harness rig check``'s)."""
    if not url.strip():
        return "expected a pyserial URL such as /dev/ttyUSB0 or rfc2217://host:port, got an empty text"
    if "://" not in url:
        return None
    scheme, rest = url.split("://", 1)
    if scheme not in _URL_SCHEMES:
        return f"expected a pyserial URL scheme ({', '.join(s + '://' for s in _URL_SCHEMES)}), got {url!r}"
    if scheme in ("rfc2217", "socket"):
        host, _, port = rest.split("?", 1)[0].rstrip("/").rpartition(":")
        if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            return f"expected {scheme}://host:port with a port 1-65535, got {url!r}"
    return None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TwinSpec(_Strict):
    """The harness starts a digital twin for this rig (one per pytest-xdist worker)."""

    device_id: str = "twin-1"
    boot_time: Duration = 0.05
    seed: int = 1
    slot_pages: int = Field(default=512, ge=16, le=4096)
    console_transport: Literal["pty", "rfc2217"] = Field(
        default="pty",
        description="pty: open the twin's pseudo-terminal directly; rfc2217: put it behind an "
        "RFC 2217 server on loopback and reach it over the network, as a lab console server",
    )


class ConsoleSpec(_Strict):
    url: str | None = Field(
        default=None, description="any pyserial URL: /dev/ttyUSB0, rfc2217://host:port, socket://..."
    )
    baudrate: int = Field(default=115200, gt=0)

    @field_validator("url")
    @classmethod
    def _pyserial_url(cls, value: str | None) -> str | None:
        problem = None if value is None else console_url_problem(value)
        if problem:
            raise ValueError(problem)
        return value


class PowerSpec(_Strict):
    resource: str | None = Field(
        default=None, description="VISA resource: TCPIP::host::5025::SOCKET, USB0::..., ASRL..."
    )
    dialect: str = "generic"
    channel: int = Field(default=1, ge=1, le=16)
    voltage: Volts = 3.3
    current_limit: Amps = 0.5
    off_time: Duration = Field(default=0.2, description="how long a power cycle keeps the output off")
    timeout: Duration = 5.0

    @field_validator("resource")
    @classmethod
    def _visa_syntax(cls, value: str | None) -> str | None:
        problem = None if value is None else resource_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("dialect")
    @classmethod
    def _known_dialect(cls, value: str) -> str:
        try:
            from harness.drivers.scpi_dialects import DIALECTS
        except ImportError:  # drivers not importable: leave the check to the driver
            return value
        if value not in DIALECTS:
            raise ValueError(f"expected one of {', '.join(sorted(DIALECTS))}, got {value!r}")
        return value


class BrokerTLS(_Strict):
    ca_cert: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    insecure: bool = False


class ServicesSpec(_Strict):
    """The device's services for a run: an MQTT broker, and the impairment point in front of it."""

    broker: str = Field(
        default="auto",
        description="auto | mosquitto | embedded (started by the harness) or mqtt[s]://host:port (existing)",
    )
    tls: BrokerTLS | None = None
    username: str | None = None
    password: str | None = None
    network: bool = Field(default=True, description="route the device's service traffic through the impairment point")
    seed: int = Field(default=1, description="seed of the impairment point's randomness")
    listen_host: str = Field(default="127.0.0.1", description="where the impairment point listens for the device")
    advertise_host: str | None = Field(
        default=None, description="the address the device is told to connect to (default: listen_host)"
    )
    telemetry_interval: Duration | None = Field(
        default=None, description="set the device's telemetry period (via the profile's set_config)"
    )

    @field_validator("broker")
    @classmethod
    def _broker(cls, value: str) -> str:
        if value in ("auto", "mosquitto", "embedded") or value.startswith(("mqtt://", "mqtts://")):
            return value
        raise ValueError(f"expected auto, mosquitto, embedded or an mqtt://host:port URL, got {value!r}")


def _profile(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return get_profile(value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
    return value


class RigSpec(_Strict):
    """One rig: a device, how to reach its console and power, and how its firmware speaks."""

    name: str
    kind: RigKind = Field(default="board", description="board | twin (virtual and labgrid: not available yet); "
                                      "default: twin when there is a twin section, else board")
    description: str = ""
    twin: TwinSpec | None = None
    console: ConsoleSpec | None = None
    power: PowerSpec | None = None
    services: ServicesSpec | None = None
    profile: Annotated[DeviceProfile, BeforeValidator(_profile)] = Field(
        default_factory=lambda: get_profile("twin-reference")
    )

    @model_validator(mode="before")
    @classmethod
    def _default_kind(cls, data: Any) -> Any:
        if isinstance(data, dict) and "kind" not in data:
            return {**data, "kind": default_kind(data)}
        return data

    @field_validator("kind", mode="before")
    @classmethod
    def _known_kind(cls, value: Any) -> Any:
        problem = kind_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _sections(self) -> RigSpec:
        problem = kind_of(self).sections_problem(self)
        if problem:
            raise ValueError(problem)
        return self

    @property
    def power_spec(self) -> PowerSpec:
        return self.power or PowerSpec()

    @property
    def console_spec(self) -> ConsoleSpec:
        return self.console or ConsoleSpec()

    @property
    def device_id(self) -> str:
        """The id the device is told to use on the broker (a twin's ``twin.device_id``, else the rig's name)."""
        return kind_of(self).device_id(self)

    @property
    def telemetry_device(self) -> str | None:
        """The device whose telemetry the ``telemetry`` fixture shows (None: a board's, whatever it calls itself)."""
        return kind_of(self).telemetry_device(self)

    def capabilities(self) -> frozenset[str]:
        """What the rig offers tests, by :data:`CAPABILITY_RULES`."""
        return frozenset(name for name, _, has in CAPABILITY_RULES if has(self))
