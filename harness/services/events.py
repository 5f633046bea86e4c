"""Fault windows read from journal records: when the network was down, when power went off.

Telemetry accounting explains lost messages with these. Journal contract (written by the power
driver, the impairment point and the broker service):

* ``{"kind": "power", "action": "off"|"on"|"cycle"|"set", "t": ...}`` — ``cycle`` has ``off_for``;
  ``set`` cuts power only when it sets ``voltage`` 0 or ``output`` false.
* ``{"kind": "injection", "action": "partition"|"heal"|"apply"|"profile"|"reset"|"broker-stop"|
  "broker-start", "params": {...}}`` — a partition with ``params.duration`` lasts that long, one
  without lasts until the next ``heal`` (or ``reset``); ``apply``/``profile`` that leave traffic
  lossy open a lossy window closed by the next ``apply``/``profile``/``heal``/``reset``; a ``reset``
  is an instant. Lossy means: by the impairment point's ``configured`` parameters, loss, a
  Gilbert-Elliott model or corruption on a service that applied it (``not_applied`` lists what a
  TCP service could not: a stream drops nothing); for records without those fields, ``params``
  with ``loss`` > 0 or ``partition``/``stall``/``down`` true.
* the collector's own ``{"kind": "telemetry.collector", "event": "disconnected"|"connected"}``:
  while the collector is away, messages can be lost at the broker.

A record may name one device (``device`` field, or ``params.device``); otherwise it applies to all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Window:
    """A time span (Unix seconds) during which messages could be lost on the way."""

    start: float
    end: float
    cause: str  # what opened it: partition, broker-stop, impairment, reset, collector-offline
    device: str | None = None  # None: every device

    def applies_to(self, device: str) -> bool:
        return self.device is None or self.device == device

    def overlaps(self, start: float, end: float, grace: float = 0.0) -> bool:
        return start <= self.end + grace and end >= self.start - grace


@dataclass(frozen=True)
class PowerOff:
    """The moment a device's supply output went off."""

    t: float
    action: str
    off_for: float | None = None
    device: str | None = None

    def applies_to(self, device: str) -> bool:
        return self.device is None or self.device == device


def _scope(rec: Mapping[str, Any]) -> str | None:
    params = rec.get("params")
    device = rec.get("device")
    if device is None and isinstance(params, Mapping):
        device = params.get("device")
    return device if isinstance(device, str) else None


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _loses(name: str, value: Any) -> bool:
    """A configured parameter (as the impairment point describes it) that drops or spoils datagrams."""
    if name in ("loss", "corrupt"):
        number = _number(value)
        return number is not None and number > 0
    return name == "gemodel" and bool(value)


def _lossy_change(rec: Mapping[str, Any], params: Mapping[str, Any]) -> bool:
    """Whether an ``apply``/``profile`` record leaves traffic lossy, counting only what was applied.

    The impairment point writes ``configured`` (the parameters in force afterwards, per service and
    direction) and ``not_applied`` (per stream service: the packet-only parameters it cannot apply,
    e.g. ``loss`` on TCP). A record without them (another writer, an older journal) is judged on its
    ``params`` alone."""
    configured, not_applied = rec.get("configured"), rec.get("not_applied")
    if not (isinstance(configured, Mapping) and isinstance(not_applied, Mapping)):
        return _lossy(params)
    for service, per_dir in configured.items():
        skipped = set(not_applied.get(service) or ())
        for conf in per_dir.values() if isinstance(per_dir, Mapping) else ():
            if isinstance(conf, Mapping) and any(_loses(k, v) for k, v in conf.items() if k not in skipped):
                return True
    return any(params.get(flag) is True for flag in ("partition", "stall", "down"))


def _lossy(params: Mapping[str, Any]) -> bool:
    loss = _number(params.get("loss"))
    if loss is not None and loss > 0:
        return True
    if isinstance(params.get("loss"), str) and params["loss"].strip() not in ("", "0", "0%"):
        return True
    return any(params.get(flag) is True for flag in ("partition", "stall", "down"))


def network_windows(records: Iterable[Mapping[str, Any]], run_end: float) -> list[Window]:
    """Every span the network (or broker, or collector link) was down or lossy, in time order."""
    windows: list[Window] = []
    open_: dict[tuple[str, str | None], tuple[float, str]] = {}  # (family, device) -> (start, cause)

    def close(family: str | None, device: str | None, t: float) -> None:
        for key in [
            k
            for k in open_
            if (family is None or k[0] == family) and (device is None or k[1] is None or k[1] == device)
        ]:
            start, cause = open_.pop(key)
            windows.append(Window(start, max(start, t), cause, key[1]))

    ordered = sorted(
        (r for r in records if r.get("kind") in ("injection", "telemetry.collector")),
        key=lambda r: float(r.get("t", 0.0)),
    )
    for rec in ordered:
        t = float(rec.get("t", 0.0))
        device = _scope(rec)
        if rec.get("kind") == "telemetry.collector":
            if rec.get("event") == "disconnected":
                open_.setdefault(("collector", None), (t, "collector-offline"))
            elif rec.get("event") == "connected":
                close("collector", None, t)
            continue
        action = rec.get("action")
        params = rec.get("params") if isinstance(rec.get("params"), Mapping) else {}
        assert isinstance(params, Mapping)
        if action == "partition":
            duration = _number(params.get("duration"))
            if duration is not None:
                windows.append(Window(t, t + duration, "partition", device))
            else:
                open_.setdefault(("partition", device), (t, "partition"))
        elif action == "heal":
            close("partition", device, t)
            close("impairment", device, t)
        elif action == "reset":
            close("partition", device, t)
            close("impairment", device, t)
            windows.append(Window(t, t, "reset", device))
        elif action in ("apply", "profile"):
            close("impairment", device, t)
            if _lossy_change(rec, params):
                open_[("impairment", device)] = (t, "impairment")
        elif action == "broker-stop":
            open_.setdefault(("broker", None), (t, "broker-stop"))
        elif action == "broker-start":
            close("broker", None, t)
    for (family, device), (start, cause) in list(open_.items()):
        windows.append(Window(start, max(start, run_end), cause, device))
        del open_[(family, device)]
    windows.sort(key=lambda w: w.start)
    return windows


def power_offs(records: Iterable[Mapping[str, Any]]) -> list[PowerOff]:
    """Every moment a supply output went off, in time order."""
    offs: list[PowerOff] = []
    for rec in records:
        if rec.get("kind") != "power":
            continue
        action = rec.get("action")
        t = float(rec.get("t", 0.0))
        if action == "off":
            offs.append(PowerOff(t, "off", device=_scope(rec)))
        elif action == "cycle":
            offs.append(PowerOff(t, "cycle", off_for=_number(rec.get("off_for")), device=_scope(rec)))
        elif action == "set" and (_number(rec.get("voltage")) == 0.0 or rec.get("output") is False):
            offs.append(PowerOff(t, "set", device=_scope(rec)))
    offs.sort(key=lambda p: p.t)
    return offs
