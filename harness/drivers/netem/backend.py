"""Choosing the impairment backend, and the interface every backend offers.

:class:`NetworkImpairment` is what a test or scenario may rely on (the ``network`` fixture wraps
it); :class:`~harness.drivers.netem.point.ImpairmentPoint` implements it in userspace.
:func:`open_point` picks the backend (``auto`` / ``userspace`` / ``kernel``), journals the choice
with its reason, and returns a started point.
"""

from __future__ import annotations

import subprocess
from contextlib import AbstractContextManager
from typing import Any, Protocol, runtime_checkable

from harness.drivers.netem.kernel import Runner, select_backend
from harness.drivers.netem.point import ImpairmentPoint, JournalLike
from harness.errors import RigError
from harness.netmodel.link import Address


@runtime_checkable
class NetworkImpairment(Protocol):
    """The run-time control every impairment backend offers."""

    backend: str

    def add_tcp(self, upstream: Address, *, listen: Address = ..., name: str | None = None) -> Address: ...
    def add_udp(self, upstream: Address, *, listen: Address = ..., name: str | None = None) -> Address: ...
    def apply(self, *, direction: str | None = None, service: str | None = None, **params: Any) -> None: ...
    def clear(self, *, direction: str | None = None, service: str | None = None) -> None: ...
    def profile(self, name: str, *, service: str | None = None) -> None: ...
    def partition(self, duration: float | str | None = None, *, service: str | None = None) -> None: ...
    def heal(self, *, service: str | None = None) -> None: ...
    def reset(self, *, service: str | None = None) -> int: ...
    def impaired(self, *, direction: str | None = None, service: str | None = None,
                 **params: Any) -> AbstractContextManager[Any]: ...
    def partitioned(self, *, service: str | None = None) -> AbstractContextManager[Any]: ...
    def statistics(self, service: str | None = None) -> dict[str, Any]: ...
    def stop(self) -> None: ...


def open_point(
    journal: JournalLike | None = None,
    seed: int | str | None = None,
    *,
    backend: str = "auto",
    runner: Runner = subprocess.run,
    **options: Any,
) -> ImpairmentPoint:
    """A started impairment point on the chosen backend; the choice and its reason are journalled.

    ``auto`` and ``userspace`` give the userspace point. ``kernel`` raises :class:`RigError` with
    the reason when ``tc netem`` is unusable here, and also where it is usable, because the
    packet-level backend object is not part of this version (detection, selection and ``tc``
    command rendering are; see ``docs/network.md``).
    """
    chosen, message = select_backend(backend, runner)
    if journal is not None:
        journal.record("netem.backend", requested=backend, chosen=chosen, reason=message)
    if chosen == "kernel":
        raise RigError(
            f"netem: {message}, but this version has no kernel backend object yet; "
            "use backend='userspace' (or 'auto')"
        )
    return ImpairmentPoint(journal, seed, **options).start()
