"""What the board runtime asks of its host: a scheduler, and executors for the actions that need I/O.

:class:`~harness.twin.runtime.BoardRuntime` is pure: it owns the order of events and actions, the
timers, the flash-programming stall, the console transmit buffer and its backpressure, and the
rebuild of the core on a reboot, but it reads no clock and touches no file, socket or thread. A host
hands it one object per protocol below:

* the process host (:mod:`harness.twin.host`): asyncio's loop as the scheduler, the pty master as
  the console, the flash file, paho-mqtt and asyncio streams, JSON lines to the rig;
* a simulated board: a simulated clock, a simulated UART, a bytearray, simulated links;
* the tests (``tests/twin/runtime_fakes.py``): a heap of timers, bytes in memory.

Executors call back into the runtime only through its public methods (``feed``,
``console_writable``), never from inside an ``execute``/``send`` call that the runtime is making.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from harness.twin.events import Event, NetConnect, NetDisconnect, NetPublish, NetSubscribe
from harness.twin.http_events import HttpCancel, HttpGet

NetAction = NetConnect | NetPublish | NetSubscribe | NetDisconnect
HttpAction = HttpGet | HttpCancel


class Scheduler(Protocol):
    """One clock, in seconds, and callbacks at times on it."""

    def now(self) -> float:
        """The current time (the ``now`` every event is handled at)."""
        ...

    def wall_offset(self) -> float:
        """What to add to :meth:`now` to get Unix time (the device's real-time clock at power-on)."""
        ...

    def call_at(self, when: float, callback: Callable[[], None]) -> object:
        """Run ``callback()`` at ``when`` (at once, but not from inside this call, if ``when`` is past);
        callbacks due at the same time run in the order they were scheduled. Returns a handle."""
        ...

    def call_soon(self, callback: Callable[[], None]) -> None:
        """Run ``callback()`` after the current callback returns, before time moves on."""
        ...

    def cancel(self, handle: object) -> None:
        """Forget a callback that has not run yet (a handle of one that ran is ignored)."""
        ...


class Console(Protocol):
    """The console UART's transmit side (input arrives as ``runtime.feed(ConsoleInput(data))``)."""

    def send(self, data: bytes) -> int:
        """Take what fits now, without blocking; return how many bytes were taken (0: full).

        Raises ``OSError`` when the console is gone: the runtime then drops what it holds.
        """
        ...

    def watch_writable(self, on: bool) -> None:
        """While on, call ``runtime.console_writable()`` whenever the console can take bytes again."""
        ...


class FlashStore(Protocol):
    """The flash chip's contents, outliving every core (and, in the process host, every process)."""

    def read(self) -> bytes:
        """The whole flash, as it is now (a new core is built from it)."""
        ...

    def program(self, offset: int, data: bytes) -> None:
        """Store one page-program unit (the runtime calls this once the unit's programming time passed)."""
        ...


class NetLink(Protocol):
    """The MQTT stack: answers with ``NetConnected``/``NetDisconnected``/``NetPublished``/``NetMessage``."""

    def execute(self, action: NetAction) -> None: ...

    def reset(self) -> None:
        """A new core takes over: drop the connection; nothing of the old one is reported any more."""
        ...


class HttpLink(Protocol):
    """The HTTP client: answers with ``HttpResponse``/``HttpChunk``/``HttpDone``/``HttpFailed``."""

    def execute(self, action: HttpAction) -> None: ...

    def reset(self) -> None:
        """A new core takes over: abandon every request; nothing of theirs is reported any more."""
        ...


class Reports(Protocol):
    """What the board tells whoever powers it (the rig): activity, halts, OTA status, reboots, faults."""

    def report(self, event: str, **fields: object) -> None:
        """``state`` (``state=``), ``halt`` (``reason=``), ``ota`` (``phase=, version=, percent=,
        reason=``), ``reboot`` (``reason=``)."""
        ...

    def fault(self, event: Event, error: Exception) -> None:
        """The core raised while handling ``event``: the firmware crashed. The runtime stops after this
        (the process host reports it and ends the process)."""
        ...
