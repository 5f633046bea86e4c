"""A run stopped by a signal ends like Ctrl-C, and says so.

SIGTERM (CI cancelling a job, ``timeout(1)``, a lab scheduler) and SIGINT (Ctrl-C) both raise
``KeyboardInterrupt`` in the main thread, so pytest unwinds the running test or scenario: fixtures
tear down, rigs, brokers and twins stop, the journal is flushed and closed. The first signal's name
and wall-clock instant are kept; :func:`record` writes them to the journal as the run's final
``{"kind": "run", "action": "interrupted", "signal": "SIGTERM", "wall": ...}`` record, from which
the reports say INTERRUPTED. A second signal of the same kind is not caught again: a second SIGTERM
kills outright, a second Ctrl-C interrupts the teardown.
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Interruption:
    signal: str  # "SIGTERM", "SIGINT"
    wall: float  # time.time() when it arrived


_received: list[Interruption] = []


def install() -> None:
    """Catch SIGTERM and SIGINT in this process (main thread only; handlers others set are kept)."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_signal)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _on_signal)


def _on_signal(signum: int, frame: object) -> None:
    name = signal.Signals(signum).name
    # the next one of this kind is not caught by us again
    signal.signal(signum, signal.SIG_DFL if signum == signal.SIGTERM else signal.default_int_handler)
    if not _received:
        _received.append(Interruption(name, time.time()))
    raise KeyboardInterrupt(name)


def received() -> Interruption | None:
    """The first signal this process was stopped by, if any."""
    return _received[0] if _received else None


def record(journal: Any, reason: str = "") -> dict[str, Any]:
    """The run's ``run interrupted`` record (the signal if one arrived, else a plain KeyboardInterrupt)."""
    got = received()
    return journal.record(  # type: ignore[no-any-return]
        "run",
        action="interrupted",
        signal=got.signal if got else "KeyboardInterrupt",
        wall=got.wall if got else time.time(),
        reason=reason,
    )
