"""An event loop whose timers fire within tens of microseconds instead of up to a millisecond late.

asyncio's default selector on Linux is epoll, and ``epoll_wait`` takes whole milliseconds: Python
rounds every timeout *up* to the next millisecond, so a delayed packet would leave 0-1 ms late
(0.5 ms on average, plus a uniform spread that distorts the jitter distribution). The impairment
point's delays are its product, so its loop uses :class:`PreciseEpollSelector`: epoll for the
whole milliseconds, then ``select()`` on the epoll descriptor itself (microsecond timeout) for
the remainder. Readiness is still reported by epoll, so any number of sockets is fine.
"""

from __future__ import annotations

import asyncio
import math
import os
import select
import selectors
import threading

_SELECT_FD_LIMIT = 1024  # FD_SETSIZE: select() cannot watch descriptors at or above it


class PreciseEpollSelector(selectors.EpollSelector):
    """Epoll selector with sub-millisecond timeouts."""

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None or timeout <= 0:
            return super().select(timeout)
        whole = math.floor(timeout * 1000.0) / 1000.0
        if whole > 0:
            whole -= 1e-7  # so the parent's ceil() to whole milliseconds cannot add one back
            return super().select(whole)  # wakes up to 1 ms early; the loop asks again for the rest
        fd = self.fileno()
        if fd >= _SELECT_FD_LIMIT:
            return super().select(timeout)
        select.select([fd], [], [], timeout)
        return super().select(0)


def precise_event_loop() -> asyncio.AbstractEventLoop:
    """A new event loop with :class:`PreciseEpollSelector` where epoll exists, else the default loop."""
    if hasattr(selectors, "EpollSelector"):
        return asyncio.SelectorEventLoop(PreciseEpollSelector())
    return asyncio.new_event_loop()




def set_thread_nice(nice: int) -> str:
    """Give the calling thread nice value ``nice`` (Linux: per thread); returns what happened.

    Lowering nice below 0 needs root or CAP_SYS_NICE; without it the thread keeps its priority and
    the answer says so (the point still works, only less punctually on a loaded machine).
    """
    if not hasattr(os, "setpriority") or not hasattr(threading, "get_native_id"):
        return f"nice {nice} not applied: not supported on this platform"
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except OSError as exc:
        return f"nice {nice} not applied: {exc.strerror or exc}"
    return f"nice {nice}"
