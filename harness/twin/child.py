"""The board host: ``python -m harness.twin.child``, started once by the rig, forks one process per boot.

Why a fork server: starting a Python interpreter costs 100-200 ms on a small CI machine, a power
cycle must cost tens of milliseconds. So the rig starts this process once (with the pty master,
a control pipe and a report pipe passed via ``pass_fds``); it imports the firmware and waits.
For every power-on the rig sends ``{"cmd": "spawn", "gen": N, "reset_cause": ..., "entropy": ...}``
and this process forks a *board process* that runs :class:`~harness.twin.host.FirmwareHost` and
reports ``{"event": "spawned", "gen": N, "pid": PID}``. The rig kills board processes directly
with SIGKILL (power off). Both this process and every board process have ``PR_SET_PDEATHSIG =
SIGKILL``, so nothing outlives the rig. EOF on the control pipe: kill boards, reap, exit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import select
import signal
import sys
import traceback

from harness.twin.host import FirmwareHost, HostConfig

PR_SET_PDEATHSIG = 1
POLL_INTERVAL = 0.5


def die_with_parent(parent_pid: int) -> None:
    """Ask the kernel to SIGKILL us when our parent dies; exit now if it already has."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
        print(f"twin child: prctl(PR_SET_PDEATHSIG) failed, errno {ctypes.get_errno()}", file=sys.stderr)
    if os.getppid() != parent_pid:
        os._exit(1)


def _report(fd: int, **fields: object) -> None:
    os.write(fd, (json.dumps(fields, separators=(",", ":")) + "\n").encode())


def _board(config: HostConfig, control_fd: int, request: dict[str, object], parent: int) -> None:
    """In the forked board process: never returns."""
    status = 0
    try:
        die_with_parent(parent)
        os.close(control_fd)
        host = FirmwareHost(config, int(str(request["gen"])))
        asyncio.run(host.run(str(request["reset_cause"]), int(str(request["entropy"]))))
    except BaseException:
        traceback.print_exc(file=sys.stderr)
        status = 70
    finally:
        os._exit(status)


class ForkServer:
    """Reads spawn requests, forks board processes, reaps them."""

    def __init__(self, config: HostConfig, control_fd: int) -> None:
        self.config = config
        self.control_fd = control_fd
        self.boards: dict[int, int] = {}  # pid -> generation

    def serve(self) -> None:
        pending = b""
        while True:
            readable, _, _ = select.select([self.control_fd], [], [], POLL_INTERVAL)
            self._reap(block=False)
            if not readable:
                continue
            data = os.read(self.control_fd, 4096)
            if not data:
                break
            pending += data
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if line.strip():
                    self._handle(json.loads(line))
        self.shutdown()

    def _handle(self, request: dict[str, object]) -> None:
        if request.get("cmd") != "spawn":
            print(f"twin child: unknown request {request!r}", file=sys.stderr)
            return
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            _board(self.config, self.control_fd, request, parent)
        self.boards[pid] = int(str(request["gen"]))
        _report(self.config.events_fd, event="spawned", gen=request["gen"], pid=pid)

    def _reap(self, *, block: bool) -> None:
        for pid in list(self.boards):
            done, status = os.waitpid(pid, 0 if block else os.WNOHANG)
            if done:
                gen = self.boards.pop(pid)
                code = os.waitstatus_to_exitcode(status)
                _report(self.config.events_fd, event="exited", gen=gen, pid=pid, code=code)

    def shutdown(self) -> None:
        for pid in self.boards:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._reap(block=True)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m harness.twin.child", description=__doc__)
    parser.add_argument("--flash", required=True)
    parser.add_argument("--console-fd", type=int, required=True)
    parser.add_argument("--events-fd", type=int, required=True)
    parser.add_argument("--control-fd", type=int, required=True)
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--slot-pages", type=int, required=True)
    parser.add_argument("--boot-time", type=float, required=True)
    parser.add_argument("--device-id", required=True)
    parser.add_argument("--program-time", type=float, default=0.0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    die_with_parent(args.parent)
    # The rig decides when we stop (EOF on the control pipe, or our death with it): a Ctrl-C or a
    # SIGTERM sent to the whole process group must not take the board down behind the rig's back.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    config = HostConfig(
        flash_path=args.flash,
        console_fd=args.console_fd,
        events_fd=args.events_fd,
        slot_pages=args.slot_pages,
        boot_time=args.boot_time,
        device_id=args.device_id,
        program_time=args.program_time,
    )
    server = ForkServer(config, args.control_fd)
    _report(config.events_fd, event="host-ready", pid=os.getpid())
    server.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
