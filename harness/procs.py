"""Child processes the harness starts (twin rigs, brokers) never outlive it.

:func:`spawn` starts a child whose kernel-side lifeline is ``PR_SET_PDEATHSIG`` (Linux): the kernel
sends the child ``SIGTERM`` the moment the harness dies for any reason — an exception, SIGTERM,
or a SIGKILL of pytest that no ``atexit`` or ``finally`` survives — so no broker or twin is left
holding ports and flash files. The death signal fires when the *thread* that forked the child
exits, not the process: a broker restarted from a scenario's event thread would be killed when
that thread ends. So every child is forked from one long-lived daemon thread of this module
(``harness-spawner``), which lives exactly as long as the harness process.

A child that loses the race (the harness died between ``fork`` and ``prctl``) sees its parent
changed and exits at once.
"""

from __future__ import annotations

import ctypes
import os
import queue
import signal
import subprocess
import sys
import threading
from concurrent.futures import Future
from typing import Any

PR_SET_PDEATHSIG = 1
DEATH_SIGNAL = signal.SIGTERM


def _die_with(parent: int, sig: int) -> None:
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:  # the harness is already gone: no signal will ever come
            os._exit(1)


class _Spawner:
    """One daemon thread that does every ``fork`` of the harness (see the module docstring)."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Future[subprocess.Popen[bytes]], list[str], dict[str, Any]]] = (
            queue.SimpleQueue()
        )
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def submit(self, argv: list[str], kwargs: dict[str, Any]) -> subprocess.Popen[bytes]:
        with self._lock:
            if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
                self._jobs = queue.SimpleQueue()  # a forked harness (xdist worker) starts its own thread
                self._thread = threading.Thread(target=self._run, name="harness-spawner", daemon=True)
                self._pid = os.getpid()
                self._thread.start()
            done: Future[subprocess.Popen[bytes]] = Future()
            self._jobs.put((done, argv, kwargs))
        return done.result()

    def _run(self) -> None:
        jobs = self._jobs
        while True:  # lives as long as the process: its death is the children's death signal
            done, argv, kwargs = jobs.get()
            if not done.set_running_or_notify_cancel():
                continue
            try:
                done.set_result(subprocess.Popen(argv, **kwargs))
            except BaseException as exc:  # handed back to the caller's thread, raised there
                done.set_exception(exc)


_SPAWNER = _Spawner()


def spawn(argv: list[str], *, death_signal: int = DEATH_SIGNAL, **kwargs: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen(argv, **kwargs)`` for a child that dies with the harness (see module doc)."""
    if "preexec_fn" in kwargs:
        raise TypeError("spawn() sets preexec_fn itself")
    parent = os.getpid()
    kwargs["preexec_fn"] = lambda: _die_with(parent, death_signal)
    return _SPAWNER.submit(list(argv), kwargs)
