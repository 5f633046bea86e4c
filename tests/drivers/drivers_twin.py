"""Start and stop the twin's rig (``python -m harness.twin serve``) for integration tests."""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class TwinProcess:
    """A running twin rig: its ready line and the process."""

    proc: subprocess.Popen[bytes]
    ready: dict[str, Any]
    stderr_path: Path

    @property
    def console(self) -> str:
        return str(self.ready["console"])

    @property
    def scpi(self) -> str:
        return str(self.ready["scpi"])

    def stderr_tail(self, n: int = 20) -> str:
        lines = self.stderr_path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-n:])


def start_twin(folder: Path, *extra: str, timeout: float = 60.0) -> TwinProcess:
    """Run the twin in ``folder`` (flash file there) and wait for its ready line."""
    stderr_path = folder / "twin.stderr"
    with open(stderr_path, "wb") as err:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "harness.twin",
                "serve",
                "--flash",
                str(folder / "flash.bin"),
                "--scpi-port",
                "0",
                *extra,
            ],
            cwd=folder,
            stdout=subprocess.PIPE,
            stderr=err,
        )
    assert proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    line = b""
    try:
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                raise TimeoutError(f"twin printed no ready line within {timeout}s: {stderr_path.read_text()}")
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                raise RuntimeError(f"twin exited ({proc.wait(timeout=10)}): {stderr_path.read_text()}")
            line += chunk
    except BaseException:
        stop_twin(proc)
        raise
    finally:
        selector.close()
    ready = json.loads(line.split(b"\n", 1)[0])
    assert ready["event"] == "ready", ready
    return TwinProcess(proc, ready, stderr_path)


def stop_twin(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it lingers; always reaps the process and closes its pipe."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
    if proc.stdout is not None:
        proc.stdout.close()
