"""``harness rig check``: open every part of a rig once and say, part by part, what answered.

``rig validate`` reads a file; this touches the hardware: the console is opened, the supply is
asked ``*IDN?`` and the state of the rig's channel, an external broker is sent an MQTT CONNECT.
A bench is claimed first (the same lock a run takes), so a check never disturbs a board another
run is using. Parts are checked independently: a dead console does not hide a dead supply.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.rig.rig import Rig
from harness.rig.spec import RigSpec
from harness.run.runfolder import make_scratch


@dataclass(frozen=True)
class PartCheck:
    """One part of a rig and what opening it gave."""

    rig: str
    part: str
    target: str
    ok: bool
    detail: str

    def line(self) -> str:
        status = "ok" if self.ok else "FAILED"
        return f"{self.rig}: {self.part} {self.target}: {status}: {self.detail}"


def check_rig(spec: RigSpec, source: str, *, lock_dir: Path | None = None) -> list[PartCheck]:
    """Open each part of the rig once; one PartCheck per part (a twin is started and stopped)."""
    from harness.rig.claim import DEFAULT_LOCK_DIR, holders, resource_keys, try_claim

    def result(part: str, target: str, ok: bool, detail: str) -> PartCheck:
        return PartCheck(spec.name, part, target, ok, " ".join(detail.split()))

    keys = resource_keys(spec)
    claim = None
    if keys:
        folder = lock_dir or DEFAULT_LOCK_DIR
        claim = try_claim(spec, keys, folder, {"worker": "rig-check", "run_id": "rig-check"})
        if claim is None:
            held = "; ".join(h.describe() for h in holders(keys, folder)) or "held"
            return [result("claim", ", ".join(keys), False, f"{held}; check again when that run is done")]
    workdir = make_scratch("rig-check")  # swept by the next run if this check is killed
    rig = Rig(spec, source, workdir)
    out: list[PartCheck] = []
    try:
        try:
            rig.start_endpoints()
        except HarnessError as exc:
            return [result("twin", source, False, str(exc))]
        if rig.twin is not None:
            out.append(result("twin", f"pid {rig.twin.endpoints.pid}", True, "started"))
        if rig.console_url is not None:
            out.append(result("console", rig.console_url, *_check_console(rig)))
        if rig.power_resource is not None:
            out.append(result("power", rig.power_resource, *_check_power(rig)))
        services = spec.services
        if services is not None and services.broker.startswith(("mqtt://", "mqtts://")):
            out.append(result("broker", services.broker, *_check_broker(spec)))
        elif services is not None:
            out.append(result("broker", services.broker, True, "started by the harness for each run"))
        return out
    finally:
        with contextlib.suppress(HarnessError):
            rig.close()
        shutil.rmtree(workdir, ignore_errors=True)
        if claim is not None:
            claim.release()


def _guarded(fn: Callable[[], str]) -> tuple[bool, str]:
    try:
        return True, fn()
    except (HarnessError, OSError) as exc:
        return False, str(exc)


def _check_console(rig: Rig) -> tuple[bool, str]:
    def run() -> str:
        console = rig.make_console().open()
        console.close()
        return f"opened at {rig.spec.console_spec.baudrate} baud"

    return _guarded(run)


def _check_power(rig: Rig) -> tuple[bool, str]:
    def run() -> str:
        power = rig.make_power(program=False).open()  # *IDN?; nothing is switched or programmed
        try:
            state = "on" if power.is_on() else "off"
            return f"{power.idn or 'no *IDN? reply'}; channel {power.channel} output {state}"
        finally:
            power.close()

    return _guarded(run)


def _check_broker(spec: RigSpec) -> tuple[bool, str]:
    from harness.services.broker import ExternalBroker

    services = spec.services
    assert services is not None
    tls = services.tls

    def run() -> str:
        broker = ExternalBroker(
            services.broker, ca_cert=tls.ca_cert if tls else None, client_cert=tls.client_cert if tls else None,
            client_key=tls.client_key if tls else None, insecure=tls.insecure if tls else False,
            username=services.username, password=services.password,
        )  # fmt: skip
        broker.check(timeout=5.0)
        return "accepted an MQTT connection"

    return _guarded(run)
