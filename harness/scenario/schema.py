"""The scenario file format: a timeline of steps, injected events and checks.

Validated with pydantic; every error becomes one line ``file:line:col: field: what was
expected`` through :mod:`harness.yamlfile`. Shorthands keep files short: ``power: cycle``,
``wait: 30s``, ``network: heal``, ``mark: after-ota``. The reference is ``docs/scenarios.md``.
"""

from __future__ import annotations

import difflib
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from harness.errors import ConfigError
from harness.fieldtypes import Duration, SizePerHour
from harness.rig.spec import CAPABILITIES
from harness.scenario.checks import CheckSpec, parse_check
from harness.twin.image import Variant  # the image format is the twin's, defined once (docs/ota.md)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _network_params(value: dict[str, Any]) -> dict[str, Any]:
    """Check impairment parameters with the impairment point's own validator (tc netem names)."""
    from harness.netmodel.params import build_params

    try:
        build_params(**value)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    return value


def _profile_name(value: str) -> str:
    from harness.netmodel.profiles import PROFILES

    if value not in PROFILES:
        raise ValueError(f"expected one of the network profiles {', '.join(PROFILES)}, got {value!r}")
    return value




class NetworkConditions(BaseModel):
    """Network conditions: a profile, explicit tc-netem parameters (``latency: 100ms``, ``loss: 2%``), or both.

    Written as a profile name (``network: 3g``) or a mapping; parameters other than ``profile``
    are netem parameters, checked by the impairment point's own validator.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    profile: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"profile": data} if isinstance(data, str) else data

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, value: str | None) -> str | None:
        return None if value is None else _profile_name(value)

    @model_validator(mode="after")
    def _valid_params(self) -> NetworkConditions:
        if self.params:
            _network_params(self.params)
        return self

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


# -- steps ----------------------------------------------------------------------------------


class PowerStep(_Strict):
    action: Literal["on", "off", "cycle"]
    off: Duration | None = Field(default=None, description="off time of a cycle (default: the rig's)")
    wait_ready: bool = Field(default=True, description="after on/cycle, wait for the device's prompt")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"action": data} if isinstance(data, str) else data


class ConsoleStep(_Strict):
    send: str | None = None
    command: str | None = None
    expect: str | None = Field(default=None, description="regex to wait for (after send/command, if any)")
    timeout: Duration = 10.0

    @model_validator(mode="after")
    def _something(self) -> ConsoleStep:
        if self.send is None and self.command is None and self.expect is None:
            raise ValueError("expected at least one of send, command, expect")
        if self.send is not None and self.command is not None:
            raise ValueError("expected send or command, not both")
        return self


class WaitStep(_Strict):
    seconds: Duration | None = Field(default=None, alias="for")
    until: Literal["telemetry", "console", "online", "offline"] | None = None
    count: int = Field(default=1, ge=1)
    pattern: str | None = None
    timeout: Duration = 60.0

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"for": data} if isinstance(data, str | int | float) else data

    @model_validator(mode="after")
    def _one(self) -> WaitStep:
        if (self.seconds is None) == (self.until is None):
            raise ValueError("expected either 'for: <duration>' or 'until: <condition>'")
        if self.until == "console" and not self.pattern:
            raise ValueError("until: console needs a 'pattern' to wait for")
        return self


class NetworkStep(_Strict):
    apply: NetworkConditions | None = None
    profile: str | None = None
    partition: Duration | None = Field(default=None, description="partition for this long (0: until heal)")
    heal: bool = False
    reset: bool = False

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if data in ("heal", "reset"):
            return {data: True}
        if data == "partition":
            return {"partition": 0}
        return data

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, value: str | None) -> str | None:
        return None if value is None else _profile_name(value)

    @model_validator(mode="after")
    def _one(self) -> NetworkStep:
        chosen = [k for k in ("apply", "profile", "partition") if getattr(self, k) is not None]
        chosen += [k for k in ("heal", "reset") if getattr(self, k)]
        if len(chosen) != 1:
            raise ValueError(
                "expected exactly one of apply, profile, partition, heal, reset"
                + (f", got {' and '.join(chosen)}" if chosen else "")
            )
        return self


VARIANTS = tuple(v.label for v in Variant)


def _variant(value: Any) -> Any:
    if isinstance(value, str) and value in VARIANTS:
        return value
    hint = difflib.get_close_matches(str(value), VARIANTS, n=1, cutoff=0.6)
    more = f" (did you mean {hint[0]!r}?)" if hint else ""
    raise ValueError(f"expected one of {', '.join(VARIANTS)}, got {value!r}{more}")


VariantName = Annotated[str, BeforeValidator(_variant)]


def _variant_parameter(variant: str, leak: float | None, boot_delay: float | None) -> int:
    """The image header's variant parameter (bytes/h for leak, ms for slow-boot); ValueError on a mismatch."""
    if leak is not None and variant != "leak":
        raise ValueError(f"leak: only an image of variant leak leaks (this one is {variant})")
    if boot_delay is not None and variant != "slow-boot":
        raise ValueError(f"boot_delay: only an image of variant slow-boot boots slowly (this one is {variant})")
    if variant == "leak":
        if leak is None or leak <= 0:
            raise ValueError("leak: a leak image needs its rate, such as 'leak: 2MiB/h'")
        value = round(leak)
    elif variant == "slow-boot":
        if boot_delay is None or boot_delay <= 0:
            raise ValueError("boot_delay: a slow-boot image needs its extra boot time, such as 'boot_delay: 3s'")
        value = round(boot_delay * 1000)
    else:
        return 0
    if value >= 2**32:
        field = "leak" if variant == "leak" else "boot_delay"
        raise ValueError(f"{field}: expected less than 2**32 {'bytes/h' if field == 'leak' else 'ms'}")
    return value


class OtaStep(_Strict):
    version: str = Field(description="firmware version to build and deploy")
    variant: VariantName = Field(default="healthy", description="the twin's image variant (docs/ota.md)")
    leak: SizePerHour | None = Field(default=None, description="variant leak: heap lost per hour of uptime")
    boot_delay: Duration | None = Field(default=None, description="variant slow-boot: extra time to boot")
    expect: Literal["committed", "rolled_back", "rejected"] = "committed"
    corrupt: Literal["none", "payload", "signature", "wrong-key"] = "none"
    timeout: Duration = 300.0

    @model_validator(mode="after")
    def _parameter(self) -> OtaStep:
        _variant_parameter(self.variant, self.leak, self.boot_delay)
        return self

    @property
    def variant_param(self) -> int:
        return _variant_parameter(self.variant, self.leak, self.boot_delay)


class TelemetryStep(_Strict):
    messages: int = Field(ge=1, description="wait until this many more messages arrived")
    timeout: Duration = 120.0


class BrokerStep(_Strict):
    action: Literal["stop", "start", "restart"]
    outage: Duration | None = Field(default=None, description="restart: how long the broker stays down")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"action": data} if isinstance(data, str) else data


STEP_KINDS = ("power", "console", "wait", "network", "ota", "telemetry", "broker", "mark", "repeat")
STEP_NEEDS = {
    "power": "power",
    "console": "console",
    "network": "network",
    "ota": "ota",
    "telemetry": "telemetry",
    "broker": "telemetry",
}


class Step(_Strict):
    """One step: exactly one action key, plus an optional name."""

    name: str | None = None
    power: PowerStep | None = None
    console: ConsoleStep | None = None
    wait: WaitStep | None = None
    network: NetworkStep | None = None
    ota: OtaStep | None = None
    telemetry: TelemetryStep | None = None
    broker: BrokerStep | None = None
    mark: str | None = None
    repeat: Repeat | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Step:
        present = [k for k in STEP_KINDS if getattr(self, k) is not None]
        if len(present) != 1:
            got = f"got {' and '.join(present)}" if present else "got none"
            raise ValueError(f"expected exactly one action ({', '.join(STEP_KINDS)}), {got}")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in STEP_KINDS if getattr(self, k) is not None)

    @property
    def action(self) -> Any:
        return getattr(self, self.kind)

    def label(self) -> str:
        if self.name:
            return self.name
        action = self.action
        if isinstance(action, str):
            return f"{self.kind} {action}"
        if isinstance(action, BaseModel):
            fields = action.model_dump(exclude_defaults=True, by_alias=True)
            inner = ", ".join(f"{k}={v}" for k, v in fields.items() if k != "steps")
            return f"{self.kind} {inner}".strip()
        return self.kind


class Repeat(_Strict):
    times: int = Field(ge=1, le=100_000)
    steps: list[Step] = Field(min_length=1)


Step.model_rebuild()

# -- events ---------------------------------------------------------------------------------

EVENT_ACTIONS = ("power-cut", "partition", "profile", "broker-restart", "reboot", "ota")
EVENT_NEEDS = {
    "ota": "ota",
    "power-cut": "power",
    "partition": "network",
    "profile": "network",
    "broker-restart": "telemetry",
    "reboot": "console",
}


class Event(_Strict):
    """An injection alongside the steps: at a time, every period (with jitter), or at random (Poisson)."""

    do: Literal["power-cut", "partition", "profile", "broker-restart", "reboot", "ota"]
    at: Duration | None = None
    every: Duration | None = None
    random: Duration | None = Field(default=None, description="mean interval of a Poisson process")
    jitter: Duration = 0.0
    start: Duration = 0.0
    until: Duration | None = None
    count: int | None = Field(default=None, ge=1)
    off: Duration = Field(default=1.0, description="power-cut: how long the power stays off")
    duration: Duration | None = Field(default=None, description="partition/broker-restart: outage length")
    profile: str | None = None
    variant: VariantName = Field(default="healthy", description="ota: the image variant each update carries")
    leak: SizePerHour | None = Field(default=None, description="ota, variant leak: heap lost per hour")
    boot_delay: Duration | None = Field(default=None, description="ota, variant slow-boot: extra boot time")
    expect: Literal["committed", "rolled_back", "rejected"] = Field(
        default="committed", description="ota: the outcome each update must have"
    )

    @property
    def variant_param(self) -> int:
        return _variant_parameter(self.variant, self.leak, self.boot_delay) if self.do == "ota" else 0

    @model_validator(mode="after")
    def _timing(self) -> Event:
        chosen = [k for k in ("at", "every", "random") if getattr(self, k) is not None]
        if len(chosen) != 1:
            got = f", got {' and '.join(chosen)}" if chosen else ""
            raise ValueError(f"expected exactly one of at, every, random{got}")
        if self.every is not None and self.every <= 0:
            raise ValueError("every: expected a period above zero")
        if self.random is not None and self.random <= 0:
            raise ValueError("random: expected a mean interval above zero")
        if self.every is not None and self.jitter >= self.every:
            raise ValueError(f"jitter: expected less than the period ({self.every:g}s), got {self.jitter:g}s")
        if self.do in ("partition", "broker-restart") and self.duration is None:
            raise ValueError(f"duration: a {self.do} event needs a duration")
        if self.do == "profile":
            if self.profile is None:
                raise ValueError("profile: a profile event needs the profile to switch to")
            try:
                _profile_name(self.profile)
            except ValueError as exc:
                raise ValueError(f"profile: {exc}") from None
        if self.do == "ota":
            _variant_parameter(self.variant, self.leak, self.boot_delay)
        else:
            for name, given in (("variant", self.variant != "healthy"), ("leak", self.leak is not None),
                                ("boot_delay", self.boot_delay is not None)):  # fmt: skip
                if given:
                    raise ValueError(f"{name}: only an ota event carries an image, not a {self.do} event")
        if self.until is not None and self.until <= self.start:
            raise ValueError("until: expected a time after start")
        return self


# -- the file ---------------------------------------------------------------------------


def _checks(value: Any) -> Any:
    if not isinstance(value, list):
        return value
    out = []
    for item in value:
        if isinstance(item, str):
            out.append({"check": item})
        else:
            out.append(item)
    return out


class Check(_Strict):
    check: str
    continuous: bool = Field(default=False, description="also judged while the scenario runs; stops it at once")
    name: str | None = None

    @field_validator("check")
    @classmethod
    def _parse(cls, value: str) -> str:
        parse_check(value)  # raises ValueError with the reason
        return value

    @model_validator(mode="after")
    def _judgeable(self) -> Check:
        if self.continuous:
            why = parse_check(self.check).early_judgement()
            if why is not None:
                raise ValueError(f"continuous: {self.check!r} can only be judged at the end: {why}")
        return self

    @property
    def spec(self) -> CheckSpec:
        return parse_check(self.check)


class Scenario(_Strict):
    scenario: str = Field(description="the scenario's name")
    description: str = ""
    requires: list[str] = Field(default_factory=list)
    seed: int = 0
    duration: Duration | None = None
    network: NetworkConditions | None = None
    steps: list[Step] = Field(default_factory=list)
    events: list[Event] = Field(default_factory=list)
    checks: Annotated[list[Check], BeforeValidator(_checks)] = Field(default_factory=list)

    @field_validator("requires")
    @classmethod
    def _capabilities(cls, value: list[str]) -> list[str]:
        for cap in value:
            if cap not in CAPABILITIES:
                raise ValueError(f"expected capabilities from {', '.join(CAPABILITIES)}, got {cap!r}")
        return value

    @model_validator(mode="after")
    def _steps_or_events(self) -> Scenario:
        if not self.steps and not self.events:
            raise ValueError("steps: a scenario needs at least one step or event")
        return self

    def needed_capabilities(self) -> set[str]:
        """What the scenario's steps and events use, besides what it declares in ``requires``."""
        caps = set(self.requires)
        if self.network is not None:
            caps.add("network")
        for step in iter_steps(self.steps):
            need = STEP_NEEDS.get(step.kind)
            if need:
                caps.add(need)
        for event in self.events:
            caps.add(EVENT_NEEDS[event.do])
        for check in self.checks:
            caps.update(check.spec.metric.needs)
        return caps


def iter_steps(steps: list[Step]) -> Any:
    for step in steps:
        yield step
        if step.repeat is not None:
            yield from iter_steps(step.repeat.steps)
