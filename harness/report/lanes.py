"""What happened when, as lanes: one row per layer (test / scenario, network, power, boots, OTA) under the time
plots, instead of labels piled over the data. Python tests come from the plugin's ``test`` start/end records,
scenarios from their own ``scenario`` records.

Each lane holds spans (a scenario, a partition, an OTA attempt) and points (a power cut, a boot). Points
closer together than the plot can tell apart are grouped (:func:`clusters`) and drawn once with a count;
the page lists every item in full (collapsed) so thinning never hides anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.report.analysis import Analysis

#: Colours by key: the plots draw them and the page's legend names them.
COLOURS = {
    "test": "#b3c6a3",
    "test-failed": "#e8a0a0",
    "scenario": "#8cb3d9",
    "partition": "#e15759",
    "profile": "#f28e2b",
    "impairment": "#edc948",
    "broker": "#b07aa1",
    "power": "#4e79a7",
    "supply": "#76b7b2",
    "boot": "#9c755f",
    "boot-unexpected": "#d62728",
    "committed": "#59a14f",
    "rolled_back": "#d62728",
    "rejected": "#ff9da7",
    "unfinished": "#bab0ac",
}
LEGEND = {
    "test": "test",
    "test-failed": "test failed",
    "scenario": "scenario",
    "partition": "partition",
    "profile": "network profile",
    "impairment": "impairment",
    "broker": "broker down",
    "power": "power cut",
    "supply": "supply off / cycle",
    "boot": "boot (expected)",
    "boot-unexpected": "boot (UNEXPECTED)",
    "committed": "OTA committed",
    "rolled_back": "OTA rolled back",
    "rejected": "OTA rejected",
    "unfinished": "OTA unfinished",
}


@dataclass(frozen=True)
class Item:
    start: float
    end: float | None  # None: a moment
    key: str  # a COLOURS key
    label: str

    @property
    def point(self) -> bool:
        return self.end is None


@dataclass
class Lane:
    name: str
    items: list[Item] = field(default_factory=list)


def _scenario_spans(a: Analysis) -> list[Item]:
    out: list[Item] = []
    open_: dict[str, float] = {}
    for r in a.run.of("scenario"):
        name, action, t = str(r.get("scenario") or "scenario"), r.get("action"), float(r["t"])
        if action == "start":
            open_[name] = t
        elif action in ("end", "interrupted") and name in open_:
            out.append(Item(open_.pop(name), t, "scenario", name if action == "end" else f"{name} (interrupted)"))
    out += [Item(t0, a.end, "scenario", f"{name} (no end)") for name, t0 in open_.items()]
    return sorted(out, key=lambda i: i.start)


def _short(nodeid: str) -> str:
    """``tests/device/test_boot.py::test_reboot[x]`` -> ``test_reboot[x]``: the lane has no room for paths."""
    return nodeid.rsplit("::", 1)[-1] or nodeid


def _test_spans(a: Analysis) -> list[Item]:
    """Python tests, from the plugin's ``test`` records (a test without its end ran until the run ended)."""
    out: list[Item] = []
    open_: dict[str, float] = {}
    for r in a.run.of("test"):
        nodeid, action, t = str(r.get("nodeid") or "test"), r.get("action"), float(r["t"])
        if action == "start":
            open_[nodeid] = t
        elif action == "end" and nodeid in open_:
            outcome = str(r.get("outcome") or "")
            failed = outcome in ("failed", "error")
            label = _short(nodeid) + (f" ({outcome})" if failed or outcome == "skipped" else "")
            out.append(Item(open_.pop(nodeid), t, "test-failed" if failed else "test", label))
    out += [Item(t0, a.end, "test", f"{_short(n)} (no end)") for n, t0 in open_.items()]
    return out


def lanes(a: Analysis) -> list[Lane]:
    """The lanes this run has something for, top to bottom: test / scenario, network, power, boots, OTA."""
    out = [
        Lane("test / scenario", sorted(_test_spans(a) + _scenario_spans(a), key=lambda i: i.start)),
        Lane(
            "network", [Item(b.start, b.end, b.kind if b.kind in COLOURS else "impairment", b.label) for b in a.bands]
        ),
        Lane(
            "power",
            [
                Item(m.t, None, "power" if m.label == "power cut" else "supply", m.label)
                for m in a.markers
                if m.kind == "power"
            ],
        ),
        Lane(
            "boots",
            [
                Item(
                    b.t,
                    None,
                    "boot" if b.expected else "boot-unexpected",
                    f"{b.cause or b.reason}" + ("" if b.expected else " (UNEXPECTED)"),
                )
                for b in a.reboots
            ],
        ),
        Lane(
            "OTA",
            [
                Item(
                    o.start,
                    o.end if o.end is not None else a.end,
                    o.outcome if o.outcome in COLOURS else "unfinished",
                    f"{o.version} {o.outcome.replace('_', ' ')}",
                )
                for o in a.ota
            ],
        ),
    ]
    return [lane for lane in out if lane.items]


def clusters(times: list[float], min_gap: float) -> list[list[int]]:
    """Indices of ``times`` (sorted) grouped so that within a group each is less than ``min_gap`` after the
    previous one: points a plot cannot tell apart are drawn as one, with a count."""
    groups: list[list[int]] = []
    last = None
    for i, t in enumerate(times):
        if last is not None and t - last < min_gap:
            groups[-1].append(i)
        else:
            groups.append([i])
        last = t
    return groups


def keys_used(all_lanes: list[Lane]) -> list[str]:
    """Legend entries, in :data:`COLOURS` order, for what the lanes actually hold."""
    used = {i.key for lane in all_lanes for i in lane.items}
    return [k for k in COLOURS if k in used]
