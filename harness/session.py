"""Run state shared by the plugin's hooks and fixtures: the rig, the run folder, the journal.

Kept in ``config.stash[STATE]``, as pytest keeps its own plugins' state; one per pytest process (so
one per xdist worker). The plugin (harness.plugin) and the scenario items (harness.scenario.items)
both read it from here, so neither imports the other for it. Everything is created lazily: a run
that never touches a rig starts no twin and writes no run folder.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness.errors import HarnessError, RigError
from harness.rig.spec import CAPABILITIES, RigSpec
from harness.run.clock import Clock, RealClock
from harness.run.journal import Journal
from harness.run.runfolder import journal_name, make_scratch, run_folder


@dataclass
class HealthEvent:
    nodeid: str
    message: str


@dataclass
class HarnessSession:
    spec: RigSpec
    source: str
    reports_dir: Path
    run_id: str
    worker: str = "main"
    health_checks: bool = True
    clock: Clock = field(default_factory=RealClock)  # the run's clock: the journal stamps with it
    _journal: Journal | None = None
    _rig: Any = None
    _services: Any = None
    workdir: Path | None = None
    broken: str | None = None
    health_events: list[HealthEvent] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    built: Any = None  # the reports built at the end of the run (harness.report.build.Built)
    choice: Any = None  # harness.rig.pool.RigChoice: the pool to claim a bench from (None: just ``spec``)
    lock_dir: Path | None = None  # where bench claims lock (None: harness.rig.claim.DEFAULT_LOCK_DIR)
    claim_timeout: float | None = None  # how long to wait for a free bench (None: the pool's own)
    claim: Any = None  # harness.rig.claim.Claim while this process holds its bench

    @property
    def folder(self) -> Path:
        return run_folder(self.reports_dir, self.run_id)

    @property
    def journal(self) -> Journal:
        if self._journal is None:
            self._journal = Journal(
                self.folder / journal_name(self.worker), run_id=self.run_id, worker=self.worker,
                compress_on_close=True,  # journal*.jsonl.gz once the run ends (docs/reports.md)
                clock=self.clock,
            )
            self._journal.record("run", action="start", run_id=self.run_id,
                                 rig=self.choice.name if self.choice is not None else self.spec.name,
                                 rig_source=self.choice.source if self.choice is not None else self.source)
        return self._journal

    @property
    def capabilities(self) -> frozenset[str]:
        return self.spec.capabilities()

    def rig(self) -> Any:
        """The live rig, brought up on first use (one per process)."""
        if self.broken:
            raise RigError(self.broken)
        if self._rig is None:
            from harness.rig.rig import Rig

            try:
                self._claim_bench()
            except RigError as exc:
                self._out_of_service(str(exc))
                raise
            self.workdir = self.workdir or make_scratch(f"rig-{self.worker}")  # swept by the next run if killed
            try:
                self._rig = Rig.open(self.spec, self.source, self.workdir, self.journal)
            except HarnessError as exc:
                self._out_of_service(f"could not bring up rig {self.spec.name!r} ({self.source}): {exc}")
                raise RigError(self.broken) from exc
            except BaseException:  # a bug or Ctrl-C while opening: nobody is using the bench either
                self._give_back()
                raise
            if self.claim is not None:
                self.claim.update(state="open")
        return self._rig

    def _out_of_service(self, problem: str) -> None:
        """The rig could not be brought up: say so once, and give the bench back at once, so another
        worker (or run) waiting for it tries it and finds the same problem instead of waiting for us."""
        self.broken = problem
        self.journal.record("rig", action="broken", rig=self.spec.name, source=self.source, problem=problem)
        self._give_back()

    def _give_back(self) -> None:
        claim, self.claim = self.claim, None
        if claim is not None:
            claim.release()
            self.journal.record("rig", action="released", rig=self.spec.name)

    def _members(self) -> Any:
        from harness.rig.pool import Member, RigChoice

        return self.choice if self.choice is not None else RigChoice([Member(self.spec, self.source)])

    def needs_claim(self) -> bool:
        """This rig is a bench (or a pool of them): a process must claim one before opening it."""
        from harness.rig.claim import resource_keys

        return any(resource_keys(m.spec) for m in self._members().members)

    def _claim_bench(self, *, wait: bool = True) -> bool:
        """A bench serves one process at a time: claim this rig, or a free one of the pool (a twin rig
        needs no claim: every process starts its own). ``wait=False``: only if one is free now.
        True when this process holds a claim (or needs none)."""
        from harness.rig.claim import DEFAULT_LOCK_DIR, claim_one, resource_keys, try_claim

        choice = self._members()
        if self.claim is not None or not self.needs_claim():
            return True
        what = f"pool {choice.pool!r}" if choice.pool else f"rig {self.spec.name!r}"
        lock_dir = self.lock_dir or DEFAULT_LOCK_DIR
        who = {"worker": self.worker, "run_id": self.run_id, "state": "opening"}
        if wait:
            claim = claim_one(
                choice.members, lambda m: resource_keys(m.spec), lambda m: m.spec.name, lock_dir=lock_dir, who=who,
                timeout=self.claim_timeout if self.claim_timeout is not None else choice.claim_timeout,
                start=_worker_index(self.worker), what=what,
                on_wait=lambda busy: self.journal.record("rig", action="waiting", pool=choice.pool, busy=busy),
            )  # fmt: skip
        else:
            start = _worker_index(self.worker)
            members = [choice.members[(start + i) % len(choice.members)] for i in range(len(choice.members))]
            tried = (try_claim(m, resource_keys(m.spec), lock_dir, {**who, "rig": m.spec.name}) for m in members)
            free = next((c for c in tried if c is not None), None)  # tries members until one is free
            if free is None:
                return False
            claim = free
        self.claim = claim
        self.spec, self.source = claim.candidate.spec, claim.candidate.source
        self.journal.record("rig", action="claimed", rig=self.spec.name, source=self.source, pool=choice.pool,
                            waited=round(claim.waited, 3), resources=claim.keys)  # fmt: skip
        return True

    def claim_bench_now(self) -> bool:
        """Claim a free bench without waiting (collection must not wait for a bench in use: xdist starts
        no test until every worker has collected). True when this process now holds one."""
        return self._claim_bench(wait=False)

    def bench_holders(self) -> list[Any]:
        """Who holds the benches this process could claim (harness.rig.claim.Holder, held ones only)."""
        from harness.rig.claim import DEFAULT_LOCK_DIR, holders, resource_keys

        lock_dir = self.lock_dir or DEFAULT_LOCK_DIR
        return [h for m in self._members().members for h in holders(resource_keys(m.spec), lock_dir)]

    def services(self) -> Any:
        """The rig's broker, impairment point and collector, started on first use, device wired to them."""
        if self.spec.services is None:
            return None
        if self._services is None:
            from harness.rig.services import RigServices

            rig = self.rig()
            services = RigServices.start(self.spec.services, self.folder, self.journal)
            try:
                rig.dut.ensure_ready()
                from harness.ota.slot import rig_slot_size

                services.point_device_at_broker(rig.dut, self.spec.device_id, self.spec.services.telemetry_interval,
                                                slot_size=rig_slot_size(self.spec))  # fmt: skip
            except BaseException:
                services.close()
                raise
            self._services = services
        return self._services

    def health_check(self, nodeid: str) -> str | None:
        """Check the device before a test; returns what was recovered, raises RigError when it is gone."""
        rig = self.rig()
        if not self.health_checks or rig.dut is None or "console" not in rig.capabilities:
            return None
        where = f"rig {self.spec.name!r}, found before {nodeid}"
        death = rig.death()
        if death is not None:
            self.broken = f"{death} ({where})"
            raise RigError(self.broken)
        try:
            # A lost power session is reopened by the driver itself (bounded retries); what reaches here
            # is a supply or console that stayed gone: one line saying which, and what to check.
            message = rig.dut.health_check()
        except HarnessError as exc:
            self.broken = f"{exc} ({where})"
            self.journal.record("health", test=nodeid, ok=False, message=str(exc))
            raise RigError(self.broken) from None  # the message carries the cause: no chain to print
        if message:
            self.journal.record("health", test=nodeid, ok=True, message=message)
        return message

    def close(self) -> None:
        services, self._services = self._services, None
        rig, self._rig = self._rig, None
        try:
            if services is not None:
                services.close()
        finally:
            self._close_rig(rig)

    def _close_rig(self, rig: Any) -> None:
        try:
            if rig is not None:
                rig.close()
        finally:
            claim, self.claim = self.claim, None
            if claim is not None:
                claim.release()
                self.journal.record("rig", action="released", rig=self.spec.name)
            if self.workdir is not None:
                if self._journal is not None:
                    for log in self.workdir.glob("*.log"):
                        shutil.copy2(log, self.folder / f"{self.worker}-{log.name}")
                shutil.rmtree(self.workdir, ignore_errors=True)
            if self._journal is not None:
                self._journal.record("run", action="end")
                self._journal.close()

    def write_results(self, outcome: int) -> Path | None:
        """results.json for the whole run (controller side); only when the run wrote a folder."""
        if not self.folder.is_dir():
            return None
        counts: dict[str, int] = {}
        for r in self.results:
            counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
        data = {
            "run_id": self.run_id,
            "rig": {"name": self.spec.name, "source": self.source, "capabilities": sorted(self.capabilities)},
            "started": self.started,
            "finished": time.time(),
            "exit_status": int(outcome),
            "counts": counts,
            "tests": self.results,
            "health": [{"test": h.nodeid, "message": h.message} for h in self.health_events],
        }
        path = self.folder / "results.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
        tmp.replace(path)
        return path


STATE = pytest.StashKey[HarnessSession]()
"""Where a pytest process keeps its run state: ``config.stash[STATE]``."""

RIG_FIXTURES = frozenset({"rig", "console", "power", "dut"})
"""The plugin's fixtures that need the device (and get a health check before the test)."""


def run_state(config: pytest.Config) -> HarnessSession:
    """This process's run state (set by the plugin's ``pytest_configure``)."""
    return config.stash[STATE]


def check_capabilities(requested: tuple[Any, ...], have: frozenset[str]) -> tuple[list[str], list[str]]:
    """(unknown capability names, missing ones) for a ``requires(...)`` marker."""
    names = [str(c) for c in requested]
    unknown = [c for c in names if c not in CAPABILITIES]
    missing = [c for c in names if c in CAPABILITIES and c not in have]
    return unknown, missing


def _worker_index(worker: str) -> int:
    """``gw3`` -> 3 (xdist workers start their claims at different members of a pool); ``main`` -> 0."""
    digits = worker.removeprefix("gw")
    return int(digits) if digits.isdigit() else 0
