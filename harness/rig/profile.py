"""Device profiles: how a firmware speaks on its console, as data.

A team describes its own board (prompt, boot-done marker, version command and how to read its
answer, reboot command) in its rig file; the harness needs no code for it. The twin's reference
profile ships as ``twin-reference``.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from harness.errors import ConfigError
from harness.fieldtypes import Duration

#: What a device can know about why it reset (the harness adds what it did itself: docs/reports.md).
ResetCause = Literal["power_on", "brownout", "pin", "watchdog", "software", "crash"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VersionQuery(_Strict):
    """How to ask for the running firmware version and pick it out of the answer."""

    command: str = "version"
    pattern: str = Field(
        default=r"(?P<version>\d+\.\d+\.\d+\S*)",
        description="regex applied to the command's output; the group 'version' is the version",
    )

    @field_validator("pattern")
    @classmethod
    def _has_group(cls, value: str) -> str:
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"expected a regular expression, got {value!r} ({exc})") from None
        if "version" not in compiled.groupindex:
            raise ValueError(f"expected a regex with a named group (?P<version>...), got {value!r}")
        return value


class DeviceProfile(_Strict):
    """How the harness talks to one kind of firmware over its console."""

    name: str = "custom"
    prompt: str = Field(description="text the shell prints when it is ready for a command")
    boot_done: str = Field(description="regex for the line that says the firmware finished booting")
    boot_banner: str | None = Field(
        default=None,
        description="regex for the line the firmware prints early in every boot (the bootloader's banner); "
        "optional named groups: version (the image it runs), reset_cause (why it reset), boot_count",
    )
    reset_causes: dict[str, ResetCause] = Field(
        default_factory=dict,
        description="the firmware's words for its reset cause (the banner's reset_cause group) -> one of "
        "power_on, brownout, pin, watchdog, software, crash",
    )
    line_ending: str = Field(default="\r", description="what ends a command line sent to the device")
    echo: bool = Field(default=True, description="the shell echoes what it is sent")
    version: VersionQuery = VersionQuery()
    reboot_command: str = "reboot"
    error_pattern: str = Field(default=r"^(ERR|Error|error)\b", description="regex: a command failed")
    boot_timeout: Duration = 10.0
    command_timeout: Duration = 10.0
    set_config: str = Field(
        default="config set {key} {value}",
        description="command template to change a device setting (e.g. point it at a broker)",
    )
    broker_setup: list[str] = Field(
        default_factory=list,
        description="commands that point the firmware at the run's broker: templates with {host}, {port}, "
        "{device_id}; empty: the firmware cannot be pointed at a broker from its console",
    )
    broker_apply: Literal["reboot", "none"] = Field(
        default="reboot", description="what makes the firmware use a new broker setting"
    )
    ota_apply: str | None = Field(
        default=None,
        description="command template that starts an update: {url}, {sha256}, {size}, {version}; "
        "empty: the firmware takes no update from its console",
    )
    ota_delivery: Literal["console", "mqtt"] = Field(
        default="console",
        description="how update jobs reach the firmware: 'mqtt' publishes a JSON job on ota_job_topic and "
        "follows the reports on ota_status_topic (docs/ota.md); 'console' types ota_apply and follows the console",
    )
    ota_job_topic: str = Field(
        default="devices/{device_id}/ota/job", description="topic the firmware takes jobs from: {device_id}"
    )
    ota_status_topic: str = Field(
        default="devices/{device_id}/ota/status", description="topic the firmware reports job status on: {device_id}"
    )
    ota_key_setup: list[str] = Field(
        default_factory=list, description="commands that provision the update-signing public key: {pubkey_hex}"
    )
    ota_outcome: str = Field(
        default=(
            r"OTA (?P<phase>committed|rolled_back|rejected|failed)\b"
            r"(?: (?P<version>\d[^\s]*))?(?: reason=(?P<reason>[^\r\n]+))?(?=\r?\n)"
        ),
        description="regex for the console line that ends an update (matched once the whole line is in): "
        "groups phase, version, reason",
    )
    ota_phase: str = Field(
        default=r"^OTA (?P<phase>downloading|verifying|rebooting|trial|resuming|retry)\b",
        description="regex for console lines that mark an update's phases (for timings)",
    )
    telemetry_interval_key: str | None = Field(
        default=None, description="setting (for set_config) that holds the telemetry period in seconds"
    )
    health_window_key: str | None = Field(
        default=None, description="setting (for set_config) that holds how long a trial boot of an update may "
        "take to become healthy, in seconds (a test of a never-healthy image may shorten it)",
    )

    @property
    def takes_ota(self) -> bool:
        """The firmware can be given an update: over MQTT, or with a console command."""
        return self.ota_delivery == "mqtt" or bool(self.ota_apply)

    @field_validator("ota_job_topic", "ota_status_topic")
    @classmethod
    def _device_topic(cls, value: str) -> str:
        if value.count("{device_id}") != 1 or any(c in value.replace("{device_id}", "") for c in "{}+#"):
            raise ValueError(f"expected an MQTT topic with {{device_id}} once and no wildcards, got {value!r}")
        return value

    @field_validator("boot_done", "error_pattern", "boot_banner")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"expected a regular expression, got {value!r} ({exc})") from None
        return value

    def boot_patterns(self) -> dict[str, object]:
        """What the reports need to find boots in the journaled console lines (a ``device`` record)."""
        return {"boot_done": self.boot_done, "boot_banner": self.boot_banner, "reset_causes": dict(self.reset_causes)}

    @field_validator("prompt")
    @classmethod
    def _non_empty(cls, value: str) -> str:
        if not value:
            raise ValueError("expected the prompt text, got an empty string")
        return value


def builtin_profiles() -> dict[str, DeviceProfile]:
    """The profiles shipped with the harness, by name."""
    import yaml

    out: dict[str, DeviceProfile] = {}
    folder = resources.files("harness.rig") / "profiles"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            data = yaml.safe_load(entry.read_text(encoding="utf-8"))
            profile = DeviceProfile.model_validate(data)
            out[profile.name] = profile
    return out


def get_profile(name: str) -> DeviceProfile:
    profiles = builtin_profiles()
    try:
        return profiles[name]
    except KeyError:
        raise ConfigError(
            f"unknown device profile {name!r}; built-in profiles: {', '.join(sorted(profiles))} "
            f"(or describe yours inline in the rig file)"
        ) from None
