"""The injection timeline: every instant an event fires, drawn from the scenario's seed.

Each event draws from its own generator (seeded with the scenario seed and the event's index),
so adding an event never moves the instants of the others, and the same file with the same seed
gives the same instants on every run — on a board in real time or a twin in simulated time.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from harness.scenario.schema import Event, Scenario
from harness.units import format_duration

MAX_INJECTIONS = 100_000


@dataclass(frozen=True, order=True)
class Injection:
    at: float
    index: int = field(compare=True)
    do: str = field(compare=False)
    params: dict[str, Any] = field(compare=False, default_factory=dict)

    def describe(self) -> str:
        extra = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.do}@{format_duration(self.at)}" + (f"({extra})" if extra else "")


def timeline_problems(scenario: Scenario, duration: float | None = None) -> list[tuple[str, str]]:
    """(field path, message) for events that cannot happen within the scenario."""
    limit = scenario.duration if duration is None else duration
    problems = []
    for i, ev in enumerate(scenario.events):
        if ev.at is not None and limit is not None and ev.at >= limit:
            problems.append((f"events[{i}].at", f"expected a time within the scenario's duration "
                             f"({format_duration(limit)}), got {format_duration(ev.at)}"))
        if ev.start and limit is not None and ev.start >= limit:
            problems.append((f"events[{i}].start", f"expected a time within the scenario's duration "
                             f"({format_duration(limit)}), got {format_duration(ev.start)}"))
        if ev.at is None and ev.until is None and ev.count is None and limit is None:
            problems.append(
                (f"events[{i}]", "a recurring event needs an end: until, count, or the scenario's duration")
            )
    return problems


def build_timeline(scenario: Scenario, *, duration: float | None = None, seed: int | None = None) -> list[Injection]:
    """All injections in time order. ``seed`` overrides the file's; ``duration`` too, and for a scenario
    with its own duration it scales the schedule to fit (``--scenario-duration 2m`` on an 8 h soak)."""
    base_seed = scenario.seed if seed is None else seed
    limit = scenario.duration if duration is None else duration
    scale = 1.0
    if duration is not None and scenario.duration:
        # A shorter run of a soak compresses its schedule: the same injections in the same order,
        # closer together, each fault shortened alike (down to MIN_OFF / MIN_OUTAGE) so the share of
        # the run spent faulted stays what the file describes. A longer run stretches the schedule only.
        limit, scale = scenario.duration, duration / scenario.duration
    out: list[Injection] = []
    for i, ev in enumerate(scenario.events):
        rng = random.Random(f"{base_seed}:{i}:{ev.do}")
        params = _params(ev, scale)
        out.extend(Injection(round(t * scale, 6), i, ev.do, params) for t in _instants(ev, rng, limit))
    out.sort()
    return out


def _instants(ev: Event, rng: random.Random, limit: float | None) -> list[float]:
    end = min(x for x in (ev.until, limit, float("inf")) if x is not None)
    if ev.at is not None:
        return [ev.at] if ev.at < end else []
    times: list[float] = []
    t = ev.start
    while len(times) < MAX_INJECTIONS and (ev.count is None or len(times) < ev.count):
        if ev.every is not None:
            t_nominal = ev.start + ev.every * (len(times) + 1)
            instant = t_nominal + (rng.uniform(-ev.jitter, ev.jitter) if ev.jitter else 0.0)
        else:
            assert ev.random is not None
            t += rng.expovariate(1.0 / ev.random)
            instant = t
            t_nominal = t
        if t_nominal >= end or instant >= end:
            break
        times.append(round(instant, 6))
    return times


#: Shortest fault a compressed schedule keeps: a power cut still drains the board, an outage still
#: outlasts a keepalive exchange.
MIN_OFF = 0.1
MIN_OUTAGE = 1.0


def _params(ev: Event, scale: float = 1.0) -> dict[str, Any]:
    if ev.do == "power-cut":
        return {"off": ev.off if scale >= 1 else max(MIN_OFF, min(ev.off, ev.off * scale))}
    if ev.do in ("partition", "broker-restart"):
        assert ev.duration is not None
        return {"duration": ev.duration if scale >= 1 else max(MIN_OUTAGE, ev.duration * scale)}
    if ev.do == "profile":
        return {"profile": ev.profile}
    if ev.do == "ota":
        return {"variant": ev.variant, "variant_param": ev.variant_param, "expect": ev.expect}
    return {}
