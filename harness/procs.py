"""Child processes the harness starts (twin rigs, brokers) never outlive it.

``die_with_parent`` is a ``preexec_fn``: on Linux it asks the kernel to send the child SIGTERM
when the harness process exits for any reason — a crash or a SIGKILL of pytest included — so no
twin or broker is left holding ports and flash files for the next run.
"""

from __future__ import annotations

import ctypes
import signal
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
