"""The reference shell's commands: one table, one small function per command.

Each command writes its reply lines through ``device.say``/``device.error`` into ``out``.
Replies of well-formed commands never start with ``ERR``; every error is one line
``ERR <what was expected>``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from harness.twin.dump import MAX_BYTES
from harness.twin.events import Action
from harness.twin.firmware import Firmware
from harness.twin.heap import heap_free
from harness.twin.ota_client import OtaFirmware
from harness.twin.ota_client import command as ota_command
from harness.twin.records import CONFIG_LIMIT, encode_config, write_config
from harness.twin.settings import check as check_setting

Command = Callable[[OtaFirmware, str, float, list[Action]], None]
KEY_PATTERN = re.compile(r"[A-Za-z0-9_.\-]{1,32}")
VALUE_LIMIT = 128


def run(device: OtaFirmware, line: str, now: float, out: list[Action]) -> None:
    """Dispatch one command line."""
    name, _, args = line.strip().partition(" ")
    command = COMMANDS.get(name)
    if command is None:
        device.error(out, f"unknown command: {name} (try 'help')")
        return
    command(device, args.strip(), now, out)


def _no_args(device: Firmware, name: str, args: str, out: list[Action]) -> bool:
    if args:
        device.error(out, f"{name} takes no arguments (got {args!r})")
        return False
    return True


def cmd_help(device: Firmware, args: str, now: float, out: list[Action]) -> None:
    if _no_args(device, "help", args, out):
        for usage, text in HELP:
            device.say(out, f"{usage:<24} {text}")


def cmd_version(device: Firmware, args: str, now: float, out: list[Action]) -> None:
    if _no_args(device, "version", args, out) and device.image is not None:
        device.say(out, f"fw {device.image.version} slot={device.slot} build={device.image.build_id}")


def cmd_status(device: Firmware, args: str, now: float, out: list[Action]) -> None:
    if not _no_args(device, "status", args, out) or device.image is None:
        return
    status = {
        "uptime": round(device.uptime(now), 3),
        "heap_free": heap_free(device, now),
        "boot_id": device.boot_id,
        "slot": device.slot,
        "fw_version": device.image.version,
        "boot_count": device.bootctl.boot_count,
        "reset_cause": device.reset_cause,
        "device_id": device.device_id,
        "security_counter": device.bootctl.security_counter,
        "build": device.image.build_id,
    }
    device.say(out, json.dumps(status, separators=(",", ":")))


def cmd_uptime(device: Firmware, args: str, now: float, out: list[Action]) -> None:
    if _no_args(device, "uptime", args, out):
        device.say(out, f"uptime {device.uptime(now):.3f}")


def cmd_reboot(device: Firmware, args: str, now: float, out: list[Action]) -> None:
    if _no_args(device, "reboot", args, out):
        device.say(out, "rebooting")
        device.reboot(out, "software", now)


def cmd_mqtt(device: Firmware, args: str, now: float, out: list[Action]) -> None:
    if _no_args(device, "mqtt", args, out) and device.session is not None:
        device.say(out, json.dumps(device.session.describe(), separators=(",", ":")))


def cmd_dump(device: Firmware, args: str, now: float, out: list[Action]) -> None:
    if not args.isdigit() or not 1 <= int(args) <= MAX_BYTES:
        device.error(out, f"dump expects a byte count 1..{MAX_BYTES} (got {args!r})")
        return
    device.start_dump(out, int(args))


def cmd_config(device: Firmware, args: str, now: float, out: list[Action]) -> None:
    verb, _, rest = args.partition(" ")
    rest = rest.strip()
    if verb == "list" and not rest:
        for key, value in sorted(device.config.items()):
            device.say(out, f"{key}={value}")
    elif verb == "get" and KEY_PATTERN.fullmatch(rest):
        if rest in device.config:
            device.say(out, f"{rest}={device.config[rest]}")
        else:
            device.error(out, f"config key not set: {rest}")
    elif verb == "set":
        key, _, value = rest.partition(" ")
        value = value.strip()
        if not KEY_PATTERN.fullmatch(key) or not value or len(value) > VALUE_LIMIT:
            device.error(
                out,
                f"config set expects KEY VALUE (KEY: 1-32 of A-Z a-z 0-9 . _ -; VALUE: 1-{VALUE_LIMIT} characters)",
            )
            return
        problem = check_setting(key, value)
        if problem is not None:
            device.error(out, problem)
            return
        _store(device, {**device.config, key: value}, out)
    elif verb == "del" and KEY_PATTERN.fullmatch(rest):
        if rest not in device.config:
            device.error(out, f"config key not set: {rest}")
            return
        _store(device, {k: v for k, v in device.config.items() if k != rest}, out)
    else:
        device.error(out, "config expects: list | get KEY | set KEY VALUE | del KEY")


def _store(device: Firmware, values: dict[str, str], out: list[Action]) -> None:
    size = len(encode_config(values))
    if size > CONFIG_LIMIT:
        device.error(out, f"config full: {size} bytes serialized, limit {CONFIG_LIMIT}")
        return
    out.extend(write_config(device.flash, values))
    device.config = values
    device.say(out, "OK")


COMMANDS: dict[str, Command] = {
    "help": cmd_help,
    "version": cmd_version,
    "status": cmd_status,
    "uptime": cmd_uptime,
    "reboot": cmd_reboot,
    "dump": cmd_dump,
    "config": cmd_config,
    "mqtt": cmd_mqtt,
    "ota": ota_command,
}

HELP = (
    ("help", "this list"),
    ("version", "firmware version, slot and build"),
    ("status", "one JSON line: uptime, heap, boot id, slot, version, boot count, reset cause"),
    ("uptime", "seconds since power-on"),
    ("reboot", "software reset"),
    ("config list", "all persisted settings"),
    ("config get KEY", "one setting"),
    ("config set KEY VALUE", "persist a setting (survives power cuts)"),
    ("config del KEY", "remove a setting"),
    ("dump N", "N//64 numbered 64-byte lines, then DUMP-END with a CRC32"),
    ("mqtt", "one JSON line: MQTT link state, connections, buffer, dropped count"),
    ("ota apply URL SHA SIZE VER", "download, verify and trial-boot an image (SHA: SHA-256 of the file)"),
    ("ota status", "one JSON line: OTA phase, version, progress, last outcome"),
)
