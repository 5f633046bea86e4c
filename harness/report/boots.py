"""Every boot of a run, with its cause, from the journal alone.

Three sources, merged: the harness's own ``boot`` records (written when it waited for the prompt: time
to prompt measured), the console lines matching the device profile's boot banner and boot-done marker
(every boot the console saw, the ones the harness did not wait for included: a scenario's power cut, a
watchdog reset), and changes of ``boot_id`` in telemetry (a device without a console).

The cause joins what the device says about its reset (the banner's ``reset_cause``: power_on, brownout,
pin, watchdog, software, crash) with what the harness did just before (a power cut, a supply cycle, a
reboot it asked for, an OTA reboot): see :data:`CAUSES`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

#: Every cause a boot can be given; the first six are the harness's own doing (expected).
CAUSES = (
    "power on",  # the supply was switched on (the first boot of a run, or after an off step)
    "power cut",  # a scenario's power-cut event (or a cut injected by a test)
    "supply cycle",  # the harness cycled the supply (dut.power_cycle, a power cycle step, recovery)
    "software reboot",  # the reboot command: expected when the harness sent it, not when the firmware did
    "OTA reboot",  # the firmware rebooted into a new image during an update
    "trial revert",  # a trial image failed its health check or crashed; the bootloader went back
    "watchdog",
    "crash",
    "power loss",  # the device lost power with no harness action (a brownout, a loose cable)
    "unknown",
)
EXPECTED_CAUSES = frozenset({"power on", "power cut", "supply cycle", "OTA reboot", "trial revert"})
#: A harness action this long before a boot may explain it (and never one before the previous boot).
CAUSE_WINDOW = 120.0
#: Telemetry this close (s) to a known boot is that boot; telemetry may lag a boot by BOOT_SLACK.
MATCH_SLACK = 1.0
#: A record this close (s) to a boot's start or prompt still belongs to it (the order records are written in).
EDGE = 0.05
BOOT_SLACK = 30.0
#: ``boot`` record reasons the harness writes, and the action each stands for.
_REASONS = {
    "power-on": "power on",
    "already-booting": "power on",
    "boot": "power on",
    "power-cycle": "supply cycle",
    "power-cut": "power cut",
    "reboot": "software reboot",
    "ota": "OTA reboot",
}
#: Device reset causes a recorded reason may carry (crafted or older journals: ``reason="watchdog"``).
_DEVICE_CAUSES = {"power_on", "brownout", "pin", "watchdog", "software", "crash"}


@dataclass
class Boot:
    """One boot: when it began, when the prompt came (if it did), and why."""

    t: float  # when the boot began: power on, reset request, or the first console line of the boot
    device: str
    reason: str  # the harness's word (power-on, power-cycle, reboot, ota) or the device's reset cause
    expected: bool
    cause: str  # one of CAUSES
    seconds: float | None = None  # time to prompt, from ``timed_from``
    reset_cause: str | None = None  # what the device said (normalised: power_on, watchdog, ...)
    version: str | None = None  # the image this boot ran, from the banner
    source: str = "harness"  # harness | console | telemetry
    ready: float | None = None  # when the prompt came; None: it never did (a crash at start)
    timed_from: str = ""  # power on | reboot request | banner | harness
    worker: str = ""  # the xdist worker whose journal holds it: only its own harness actions explain it


@dataclass(frozen=True)
class Patterns:
    banner: re.Pattern[str] | None
    done: re.Pattern[str] | None
    causes: dict[str, str]


def patterns_from(records: list[dict[str, Any]]) -> dict[str, Patterns]:
    """The boot patterns per device, from the ``device`` records the Dut journals (the last one wins)."""
    out: dict[str, Patterns] = {}
    for r in records:
        if r.get("kind") != "device" or r.get("action") != "profile":
            continue
        banner, done = r.get("boot_banner"), r.get("boot_done")
        causes = r.get("reset_causes") if isinstance(r.get("reset_causes"), dict) else {}
        out[str(r.get("device") or "")] = Patterns(
            re.compile(banner) if banner else None, re.compile(done) if done else None, dict(causes or {})
        )
    return out


@dataclass
class _Seen:
    device: str
    start: float  # banner time (or done time with no banner)
    worker: str = ""
    done: float | None = None
    version: str | None = None
    reset_cause: str | None = None


def console_boots(records: list[dict[str, Any]], pats: dict[str, Patterns]) -> list[_Seen]:
    """Boots on the console: one per banner line (its done line attached), or per done line."""
    out: list[_Seen] = []
    current: dict[str, _Seen] = {}
    for r in records:
        if r.get("kind") != "console":
            continue
        device = str(r.get("source") or "")
        p = pats.get(device) or (next(iter(pats.values())) if len(pats) == 1 else None)
        if p is None:
            continue
        line, t = str(r.get("line", "")), float(r["t"])
        m = p.banner.search(line) if p.banner else None
        if m:
            groups = m.groupdict()
            raw = groups.get("reset_cause")
            seen = _Seen(device, t, str(r.get("worker") or ""), version=groups.get("version"),
                         reset_cause=p.causes.get(raw, raw) if raw else None)  # fmt: skip
            current[device] = seen
            out.append(seen)
        if p.done and p.done.search(line):
            seen_or_none = current.get(device)
            if seen_or_none is None or seen_or_none.done is not None:
                # a boot whose banner was not seen (or a profile without one)
                seen_or_none = _Seen(device, t, str(r.get("worker") or ""))
                current[device] = seen_or_none
                out.append(seen_or_none)
            seen_or_none.done = t
    return out


def _actions(records: list[dict[str, Any]]) -> list[tuple[float, str, str]]:
    """What the harness did that boots a device: (t, action, device), the device as ``worker/device``
    (either part empty when the record does not say)."""
    out: list[tuple[float, str, str]] = []
    for r in records:
        kind, t = r.get("kind"), float(r.get("t", 0.0))
        device = f"{r.get('worker') or ''}/{r.get('device') or ''}"
        action = str(r.get("action") or r.get("do") or "")
        if kind == "injection" and action == "power-cut" and not r.get("failed"):
            out.append((t, "cut", device))
        elif action == "reboot" and (kind == "reset" or (kind == "injection" and not r.get("failed"))):
            out.append((t, "reboot", device))
        elif kind == "power" and action == "off":
            out.append((t, "off", device))
        elif kind == "power" and action == "cycle":
            out.append((t, "cycle", device))
            off = r.get("actual_off", r.get("off_for"))
            if isinstance(off, int | float):
                out.append((t + float(off), "on", device))
        elif kind == "power" and action == "on":
            out.append((t, "on", device))
        elif kind == "ota" and r.get("phase") in ("rebooting", "trial", "rolled_back"):
            out.append((t, f"ota-{r.get('phase')}", device))
    return sorted(out)


def _cause(done: set[str], reason: str | None, reset_cause: str | None) -> tuple[str, bool]:
    """(cause, expected) from the harness actions before the boot, its boot record reason, and the
    device's reset cause."""
    said = _REASONS.get(reason or "")
    device = reset_cause or (reason if reason in _DEVICE_CAUSES else None)
    if "cut" in done or said == "power cut":
        return "power cut", True
    if said == "supply cycle" or "cycle" in done or ("off" in done and "on" in done and said != "power on"):
        return "supply cycle", True
    if device in ("watchdog", "crash"):
        if "ota-open" in done or "ota-trial" in done or "ota-rolled_back" in done:
            return "trial revert", True
        return str(device), False
    if "ota-rebooting" in done or said == "OTA reboot":
        return "OTA reboot", True
    if device == "software" and "ota-trial" in done and "reboot" not in done:
        # The boot into a trial: an OTA resumed after a power cut verifies and reboots at once, and its
        # ``rebooting`` report can be lost with the session it was queued on; the trial it then reports
        # (moments after the banner) says what this software reset was.
        return "OTA reboot", True
    if "reboot" in done:
        return "software reboot", True  # the harness sent the reboot command (a ``reset`` record)
    if said == "power on" or "on" in done:
        return "power on", True
    if device == "software" or said == "software reboot":
        return "software reboot", False  # the firmware rebooted itself: nobody asked
    if device in ("power_on", "brownout", "pin"):
        return "power loss" if device != "pin" else "unknown", False
    return "unknown", False


def boots(records: list[dict[str, Any]], patterns: dict[str, Patterns] | None = None) -> list[Boot]:
    """Every boot in ``records`` (time-ordered), with cause and time to prompt where it is known."""
    pats = patterns if patterns is not None else patterns_from(records)
    seen = console_boots(records, pats) if pats else []
    actions = _actions(records)
    used: set[int] = set()
    out: list[Boot] = []
    for r in records:
        if r.get("kind") != "boot":
            continue
        ready = float(r["t"])
        seconds = float(r["seconds"]) if isinstance(r.get("seconds"), int | float) else None
        begun = ready - (seconds or 0.0)
        device = str(r.get("device") or "")
        match = next((i for i, s in enumerate(seen) if i not in used and s.device in ("", device)
                      and s.done is not None and begun - EDGE <= s.done <= ready + EDGE),
                     None)  # fmt: skip
        s = seen[match] if match is not None else None
        if match is not None:
            used.add(match)
        out.append(Boot(begun, device, str(r.get("reason") or "unknown"), False, "unknown", seconds,
                        s.reset_cause if s else None, s.version if s else None, "harness", ready,
                        "harness", str(r.get("worker") or "")))  # fmt: skip
    for i, s in enumerate(seen):
        if i in used:
            continue
        out.append(Boot(s.start, s.device, s.reset_cause or "unknown", False, "unknown", None, s.reset_cause,
                        s.version, "console", s.done, "banner", s.worker))  # fmt: skip
    out.sort(key=lambda b: b.t)
    updates = _ota_spans(records)
    previous_end: dict[str, float] = {}
    for b in out:
        # The harness actions since the previous boot was up (within CAUSE_WINDOW) until this one was.
        since = max(previous_end.get(b.device, -1e18), b.t - CAUSE_WINDOW) - EDGE
        upto = b.ready if b.ready is not None else b.t
        window = [(t, a) for t, a, d in actions if since <= t <= upto + EDGE and _mine(d, b.worker, b.device)]
        done = {a for _, a in window}
        if any(_mine(d, b.worker, b.device) and t0 <= b.t <= t1 for d, t0, t1 in updates):
            done.add("ota-open")
        reason = None if b.source == "console" else b.reason
        b.cause, b.expected = _cause(done, reason, b.reset_cause)
        if b.source == "console":  # timed from what started it: the supply on, the reboot request
            starts = [(t, a) for t, a in window if a in ("on", "reboot", "ota-rebooting") and t <= b.t + EDGE]
            if starts:
                b.t = min(b.t, starts[-1][0])
                b.timed_from = "power on" if starts[-1][1] == "on" else "reboot request"
            if b.ready is not None:
                b.seconds = round(b.ready - b.t, 6)
            b.reason = b.reset_cause or b.cause
        previous_end[b.device] = upto
    out += _telemetry_boots(records, out, actions)
    return sorted(out, key=lambda b: b.t)


def _mine(who: str, worker: str, device: str) -> bool:
    """Whether an action by ``who`` (``worker/device``) may explain a boot of ``device`` on ``worker``."""
    w, _, d = who.partition("/")
    return (not w or not worker or w == worker) and (not d or not device or d == device)


def _ota_spans(records: list[dict[str, Any]]) -> list[tuple[str, float, float]]:
    """(device, start, end) of every OTA attempt from the moment it rebooted into the new image to its
    outcome: a watchdog or crash reset then is the trial image failing (the bootloader reverts it), not
    a device fault of its own. Before that (a download, a verification) it is the device's fault."""
    out: list[tuple[str, float, float]] = []
    open_: dict[str, float] = {}
    for r in records:
        if r.get("kind") != "ota":
            continue
        device, phase, t = f"{r.get('worker') or ''}/{r.get('device') or ''}", r.get("phase"), float(r["t"])
        if phase in ("rebooting", "trial") and device not in open_:
            open_[device] = t
        elif phase == "job":
            open_.pop(device, None)
        if phase in ("committed", "rolled_back", "rejected") and device in open_:
            out.append((device, open_.pop(device), t))
    out += [(d, t0, float("inf")) for d, t0 in open_.items()]
    return out


def _telemetry_boots(records: list[dict[str, Any]], known: list[Boot], actions: list[tuple[float, str, str]]
                     ) -> list[Boot]:  # fmt: skip
    """boot_id changes in telemetry that no boot above accounts for."""
    out: list[Boot] = []
    last: dict[str, tuple[str, float]] = {}
    for r in records:
        if r.get("kind") != "telemetry" or not isinstance(r.get("payload"), dict):
            continue
        device = str(r.get("device") or r["payload"].get("device") or "")
        boot_id, t = r["payload"].get("boot_id"), float(r.get("arrival") or r["t"])
        prev = last.get(device)
        last[device] = (str(boot_id), t)
        if prev is None or boot_id is None or prev[0] == str(boot_id):
            continue
        if any(prev[1] - MATCH_SLACK <= (b.ready or b.t) <= t + BOOT_SLACK and b.device in ("", device)
               for b in known + out):  # fmt: skip
            continue
        uptime = r["payload"].get("uptime")
        at = t - float(uptime) if isinstance(uptime, int | float) and prev[1] < t - float(uptime) < t else t
        worker = str(r.get("worker") or "")
        done = {a for when, a, d in actions
                if prev[1] - CAUSE_WINDOW <= when <= t + MATCH_SLACK and _mine(d, worker, device)}  # fmt: skip
        cause, expected = _cause(done, None, None)
        fw = r["payload"].get("fw")
        out.append(Boot(at, device, "unseen" if cause == "unknown" else cause, expected, cause, None, None,
                        str(fw) if fw else None, "telemetry", None, "", worker))  # fmt: skip
    return out
