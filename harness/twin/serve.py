"""``python -m harness.twin serve`` (and ``harness twin serve``): run the twin's rig until told to stop.

Prints one JSON line on stdout when ready::

    {"event": "ready", "console": "/dev/pts/N", "scpi": "TCPIP::127.0.0.1::PORT::SOCKET",
     "scpi_host": "127.0.0.1", "scpi_port": PORT, "channel": 1, "flash": PATH, "pid": PID}

Logs go to stderr. SIGTERM/SIGINT: kill the board, close everything, exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import signal
import sys
from pathlib import Path
from typing import NoReturn

from harness.twin.rig import RigError, RigOptions, TwinRig

PROG = "harness twin serve"
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(ms|s)?")


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad input as one line (no usage dump)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def parse_duration(text: str) -> float:
    """``50ms``, ``0.2s``, ``0.05`` (seconds) -> seconds."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"expected a duration like 50ms or 0.2s (got {text!r})")
    value = float(match.group(1))
    return value / 1000 if match.group(2) == "ms" else value


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1 (got {text!r})")
    return int(text)


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"expected a TCP port 0..65535, 0 for a free one (got {text!r})")
    return int(text)


def _device_id(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.\-]{1,32}", text):
        raise argparse.ArgumentTypeError(f"expected 1-32 of A-Z a-z 0-9 . _ - (got {text!r})")
    return text


def _channel(text: str) -> int:
    if text not in ("1", "2", "3"):
        raise argparse.ArgumentTypeError(f"expected a supply channel 1, 2 or 3 (got {text!r})")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Run the digital twin: pty console + SCPI power supply.")
    parser.add_argument("--flash", type=Path, help="flash file (created and factory-programmed if missing; "
                        "default: a temporary file removed on exit)")  # fmt: skip
    parser.add_argument("--host", default="127.0.0.1", help="SCPI listen address (default 127.0.0.1)")
    parser.add_argument("--scpi-port", type=_port, default=0, help="SCPI TCP port (default 0: a free port)")
    parser.add_argument("--power", choices=("on", "off"), default="on", help="initial output state")
    parser.add_argument("--device-id", type=_device_id, default="twin-0001", help="device id shown in status")
    parser.add_argument("--boot-time", type=parse_duration, default=0.05, help="bootloader-to-app time")
    parser.add_argument("--flash-program-time", type=parse_duration, default=0.0,
                        help="time per 256-byte program unit (default 0); the firmware stalls meanwhile, "
                        "so power cuts land inside multi-unit writes")  # fmt: skip
    parser.add_argument("--seed", type=int, help="seed every random choice (entropy, current noise)")
    parser.add_argument("--slot-pages", type=_positive_int, default=512, help="4 KiB pages per slot")
    parser.add_argument("--channel", type=_channel, default=1, help="supply channel the twin is wired to")
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    return parser


def options_from(args: argparse.Namespace) -> RigOptions:
    return RigOptions(
        flash=args.flash,
        host=args.host,
        scpi_port=args.scpi_port,
        power_on=args.power == "on",
        device_id=args.device_id,
        boot_time=args.boot_time,
        seed=args.seed,
        slot_pages=args.slot_pages,
        channel=args.channel,
        program_time=args.flash_program_time,
    )


async def serve(options: RigOptions) -> int:
    """Run a rig until SIGTERM/SIGINT (exit 0) or until its board host dies (exit 1)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    rig = TwinRig(options)
    try:
        ready = await rig.start()
        sys.stdout.write(json.dumps(ready) + "\n")
        sys.stdout.flush()
        stopped = asyncio.ensure_future(stop.wait())
        failed = asyncio.ensure_future(rig.failed.wait())
        await asyncio.wait({stopped, failed}, return_when=asyncio.FIRST_COMPLETED)
        for task in (stopped, failed):
            task.cancel()
        return 1 if rig.failed.is_set() and not stop.is_set() else 0
    finally:
        await rig.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``python -m harness.twin serve`` and ``harness twin serve``."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr, format="twin %(levelname)s %(message)s")
    try:
        return asyncio.run(serve(options_from(args)))
    except RigError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1
