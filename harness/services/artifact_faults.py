"""Server-side faults of the OTA artifact server, switched on and off at run time by a test.

Each fault is a small frozen dataclass; :class:`FaultPlan` holds the active ones and decides, per
request, what the server does instead of (or on top of) serving the file. Several faults can be active
at once; each may be limited to some artifact names and to a number of firings.

=================  ============================================================================
``ServerError``    HTTP 500 on every Nth matching request
``Unavailable``    HTTP 503 with ``Retry-After: N``
``TruncateBody``   declares the full ``Content-Length``, sends K body bytes, then closes the connection
``IgnoreRange``    answers 200 with the whole file even when a ``Range`` was asked for
``SlowBody``       sends the body at a fixed rate (bytes per second)
=================  ============================================================================

The image changing mid-download is not a fault here: it is :meth:`ArtifactServer.replace`, which
gives the artifact a new ETag between two requests.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class ServerError:
    """HTTP 500 on every ``every``-th matching request (1 = all of them)."""

    every: int = 1
    action = "server-error"

    def __post_init__(self) -> None:
        _positive("every", self.every)


@dataclass(frozen=True)
class Unavailable:
    """HTTP 503 with ``Retry-After: retry_after`` (seconds)."""

    retry_after: int = 1
    action = "unavailable"

    def __post_init__(self) -> None:
        if self.retry_after < 0:
            raise ValueError(f"retry_after: expected 0 or more seconds (got {self.retry_after})")


@dataclass(frozen=True)
class TruncateBody:
    """Declare the full ``Content-Length``, send ``after`` body bytes, close the connection."""

    after: int
    action = "truncate-body"

    def __post_init__(self) -> None:
        if self.after < 0:
            raise ValueError(f"after: expected 0 or more bytes (got {self.after})")


@dataclass(frozen=True)
class IgnoreRange:
    """Answer 200 with the whole file, as a server without Range support does."""

    action = "ignore-range"


@dataclass(frozen=True)
class SlowBody:
    """Send the body at ``rate`` bytes per second."""

    rate: float
    action = "slow-body"

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ValueError(f"rate: expected more than 0 bytes per second (got {self.rate})")


Fault = ServerError | Unavailable | TruncateBody | IgnoreRange | SlowBody


def describe(fault: Fault) -> dict[str, Any]:
    """The fault as journal parameters: ``{"fault": "server-error", "every": 3}``."""
    return {"fault": fault.action, **asdict(fault)}


@dataclass
class Decision:
    """What to do with one request: answer with an error status, or serve with these changes."""

    status: int | None = None
    retry_after: int | None = None
    ignore_range: bool = False
    truncate_after: int | None = None
    rate: float | None = None
    fired: list[str] = field(default_factory=list)


@dataclass
class _Active:
    fault: Fault
    names: frozenset[str] | None
    times: int | None
    seen: int = 0
    fired: int = 0

    def matches(self, name: str) -> bool:
        return self.names is None or name in self.names

    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times


class FaultPlan:
    """The active faults; thread-safe (tests set faults, the server's loop thread decides)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: list[_Active] = []

    def add(self, fault: Fault, *, names: frozenset[str] | None = None, times: int | None = None) -> object:
        """Activate ``fault``; returns a handle for :meth:`remove`."""
        if times is not None:
            _positive("times", times)
        entry = _Active(fault, names, times)
        with self._lock:
            self._active.append(entry)
        return entry

    def remove(self, handle: object) -> bool:
        """Deactivate the fault :meth:`add` returned ``handle`` for; False if it was already gone."""
        with self._lock:
            for i, entry in enumerate(self._active):
                if entry is handle:
                    del self._active[i]
                    return True
        return False

    def clear(self) -> int:
        """Remove every fault; returns how many were active."""
        with self._lock:
            count = len(self._active)
            self._active.clear()
            return count

    def active(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {**describe(a.fault), "names": sorted(a.names) if a.names else None, "times": a.times, "fired": a.fired}
                for a in self._active
            ]

    def decide(self, name: str, *, has_body: bool = True) -> Decision:
        """Count this request against every matching fault and say what the server should do.

        Body faults (truncate, slow) do not fire on a request without a body (HEAD), so a ``times``
        limit is spent on downloads only.
        """
        decision = Decision()
        with self._lock:
            for active in self._active:
                if not active.matches(name) or active.exhausted():
                    continue
                active.seen += 1
                if _apply(active.fault, active.seen, decision, has_body):
                    active.fired += 1
                    decision.fired.append(active.fault.action)
        return decision


def _apply(fault: Fault, seen: int, decision: Decision, has_body: bool) -> bool:
    """Fold one fault into the decision; False when it does not fire on this request."""
    if decision.status is not None:
        return False  # an earlier fault already answers with an error
    if not has_body and isinstance(fault, TruncateBody | SlowBody):
        return False
    if isinstance(fault, ServerError):
        if seen % fault.every:
            return False
        decision.status = 500
    elif isinstance(fault, Unavailable):
        decision.status, decision.retry_after = 503, fault.retry_after
    elif isinstance(fault, TruncateBody):
        decision.truncate_after = fault.after
    elif isinstance(fault, IgnoreRange):
        decision.ignore_range = True
    else:
        decision.rate = fault.rate
    return True


def _positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}: expected an integer of 1 or more (got {value!r})")
