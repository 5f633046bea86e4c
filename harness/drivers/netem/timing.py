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




def set_thread_priority(nice: int | None = None, realtime: bool = False) -> str:
    """Raise the calling thread's scheduling priority (Linux: per thread); returns what happened.

    ``realtime`` asks for ``SCHED_FIFO`` priority 10: the thread then preempts ordinary processes
    the moment its timer is due, which keeps delays punctual on a saturated machine (the kernel's
    RT throttling still leaves ordinary tasks 5% of each CPU). Otherwise ``nice`` (e.g. -10) is
    applied. Both need root or CAP_SYS_NICE; without it the thread keeps its priority and the
    answer says so (the point still works, only less punctually on a loaded machine).
    """
    tid = threading.get_native_id()
    if realtime:
        if not hasattr(os, "sched_setscheduler"):
            return "realtime not applied: SCHED_FIFO is not supported on this platform"
        try:
            os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(10))
        except OSError as exc:
            return f"realtime not applied: {exc.strerror or exc}"
        return "SCHED_FIFO 10"
    if nice is None:
        return "default"
    if not hasattr(os, "setpriority"):
        return f"nice {nice} not applied: not supported on this platform"
    try:
        os.setpriority(os.PRIO_PROCESS, tid, nice)
    except OSError as exc:
        return f"nice {nice} not applied: {exc.strerror or exc}"
    return f"nice {nice}"
