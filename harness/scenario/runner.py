"""Run a scenario: steps in order, events alongside on the timeline, checks at the end.

The runner acts only through a :class:`ScenarioContext` (the rig's drivers and services) and a
clock, so the same file runs on a board, on a process twin, or in simulated time. Everything it
does is journaled: each step's result, each injection with its instant, each check's verdict.
"""

from __future__ import annotations

import contextlib
import math
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from harness.errors import HarnessError
from harness.run.clock import Clock, RealClock
from harness.scenario.checks import undecided
from harness.scenario.loader import LoadedScenario
from harness.scenario.metrics import compute_metrics
from harness.scenario.schema import Step
from harness.scenario.timeline import Injection, build_timeline
from harness.units import format_duration, format_seconds


@dataclass
class ScenarioContext:
    """What a scenario acts through. Missing pieces are None; the loader has already checked needs."""

    journal: Any
    dut: Any = None
    power: Any = None
    console: Any = None
    network: Any = None
    telemetry: Any = None
    broker: Any = None
    ota: Any = None
    rig_name: str = "rig"


class StepFailed(HarnessError):
    def __init__(self, path: str, label: str, message: str, *, observed: str = "", expected: str = "") -> None:
        self.path, self.label, self.message = path, label, message
        self.observed, self.expected = observed, expected
        super().__init__(f"{path} ({label}): {message}")


@dataclass
class CheckResult:
    text: str
    metric: str
    expected: str
    observed: str
    passed: bool  # True for a check that was not judged (``skipped`` says why)
    skipped: str = ""


@dataclass
class ScenarioResult:
    name: str
    seed: int
    duration: float | None
    injections: list[Injection] = field(default_factory=list)
    fired: list[str] = field(default_factory=list)
    failed_step: StepFailed | None = None
    checks: list[CheckResult] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    elapsed: float = 0.0
    interrupted: bool = False
    stopped_by: CheckResult | None = None  # the continuous check that failed and ended the run early
    stopped_at: float | None = None  # seconds into the run

    @property
    def passed(self) -> bool:
        return (self.failed_step is None and self.stopped_by is None and all(c.passed for c in self.checks)
                and not self.interrupted)  # fmt: skip


ProgressFn = Callable[[float, float | None, dict[str, int]], None]


class ScenarioRunner:
    def __init__(
        self,
        loaded: LoadedScenario,
        ctx: ScenarioContext,
        *,
        clock: Clock | None = None,
        duration: float | None = None,
        seed: int | None = None,
        progress: ProgressFn | None = None,
        progress_every: float = 10.0,
        check_every: float = 5.0,
        power_every: float = 5.0,
    ) -> None:
        self.loaded = loaded
        self.sc = loaded.scenario
        self.ctx = ctx
        self.clock = clock or RealClock()
        self.duration = self.sc.duration if duration is None else duration
        self.seed = self.sc.seed if seed is None else seed
        self.progress = progress
        self.progress_every = progress_every
        self.check_every = check_every
        self.power_every = power_every
        self.counters = {"steps": 0, "injections": 0, "boots": 0}
        self.phase = "starting"  # what the run does now, for progress: the running step, or the soak's wait
        self._stop = threading.Event()
        self._caused_boots = 0
        self._ota_updates = 0
        self._lock = threading.Lock()
        self._errors: list[str] = []
        self._boots_pending = 0  # actions under way that boot the device (not yet counted as caused)
        self._boots_lock = threading.Lock()

    # -- public ------------------------------------------------------------------------------
    def run(self) -> ScenarioResult:
        sc = self.sc
        injections = build_timeline(sc, duration=self.duration, seed=self.seed)
        result = ScenarioResult(sc.scenario, self.seed, self.duration, injections)
        journal = self.ctx.journal
        tap = journal.tap()  # this run's records, as they are written: no re-reading of the journal file
        started = journal.record(
            "scenario", action="start", scenario=sc.scenario, seed=self.seed, duration=self.duration,
            injections=[i.describe() for i in injections], instants=[i.at for i in injections],
            rig=self.ctx.rig_name,
        )  # fmt: skip
        self.t0 = self.clock.now()
        events = threading.Thread(target=self._events, args=(injections, result), name="scenario-events", daemon=True)
        watch = threading.Thread(target=self._watch, args=(tap, started["t"], result), name="scenario-checks",
                                 daemon=True)  # fmt: skip
        sampler = threading.Thread(target=self._sample_power, name="scenario-power", daemon=True)
        # Progress on the runner's clock, during long steps too (a step may wait minutes for telemetry).
        ticker = threading.Thread(target=self._tick, name="scenario-progress", daemon=True)
        try:
            if sc.network is not None:
                self._apply_network(sc.network)
            events.start()
            if any(c.continuous for c in sc.checks):
                watch.start()
            if self.ctx.power is not None and callable(getattr(self.ctx.power, "measure", None)):
                sampler.start()
            if self.progress is not None:
                ticker.start()
            self._run_steps(sc.steps, "steps")
            if self.duration is not None:
                self.phase = f"soaking until {format_duration(self.duration)}"
                self._wait_until(self.duration)
        except StepFailed as exc:
            result.failed_step = exc
            journal.record("step", scenario=sc.scenario, index=exc.path, name=exc.label, status="failed",
                           message=exc.message, observed=exc.observed, expected=exc.expected)
        except KeyboardInterrupt:
            result.interrupted = True
            journal.record("scenario", action="interrupted", scenario=sc.scenario)
            raise
        finally:
            self._stop.set()
            for thread in (events, watch, sampler, ticker):
                if thread.is_alive():
                    thread.join(timeout=30)
            result.elapsed = self.clock.now() - self.t0
            self._restore_network()
            if self.ctx.console is not None:
                self.ctx.console.flush_journal()  # the last console lines belong to this run's records
            # Console lines are journaled a moment after they arrive: keep only those of this run.
            self._finish(result, [r for r in journal.untap(tap) if r.get("t", 0.0) >= started["t"]])
        return result

    # -- steps -------------------------------------------------------------------------------
    def _run_steps(self, steps: list[Step], prefix: str) -> None:
        for i, step in enumerate(steps):
            if self._stop.is_set():
                return
            path = f"{prefix}[{i}]"
            if step.repeat is not None:
                for n in range(step.repeat.times):
                    self._run_steps(step.repeat.steps, f"{path}.repeat#{n + 1}.steps")
                continue
            started = self.clock.now()
            self.phase = f"{path} {step.label()}"
            try:
                observed = self._do_step(step, path)
            except StepFailed:
                raise
            except HarnessError as exc:
                raise StepFailed(path, step.label(), str(exc)) from exc
            self.counters["steps"] += 1
            self.ctx.journal.record(
                "step", scenario=self.sc.scenario, index=path, name=step.label(), status="passed",
                duration=round(self.clock.now() - started, 6), observed=observed,
            )  # fmt: skip
            self._report_progress()

    def _do_step(self, step: Step, path: str) -> str:
        kind, action, ctx = step.kind, step.action, self.ctx
        if kind == "power":
            return self._power(action.action, action.off, action.wait_ready)
        if kind == "console":
            return self._console(action, path, step.label())
        if kind == "wait":
            if action.seconds is not None:
                if not self._wait(action.seconds):
                    return f"cut short: the run was stopped within {format_duration(action.seconds)}"
                return f"waited {format_duration(action.seconds)}"
            return self._wait_until_condition(action, path, step.label())
        if kind == "network":
            if action.apply is not None:
                self._apply_network(action.apply)
            elif action.profile is not None:
                ctx.network.profile(action.profile)
            elif action.partition is not None:
                ctx.network.partition(action.partition or None)
            elif action.heal:
                ctx.network.heal()
            elif action.reset:
                ctx.network.reset()
            return "applied"
        if kind == "telemetry":
            have = ctx.telemetry.count()
            ctx.telemetry.wait_for(have + action.messages, timeout=action.timeout)
            return f"{action.messages} more messages"
        if kind == "broker":
            return self._broker(action.action, action.outage)
        if kind == "ota":
            image = ctx.ota.build(action.version, variant=action.variant, variant_param=action.variant_param,
                                  corrupt=action.corrupt)  # fmt: skip
            # A different outcome raises DeviceError (journaled as ota.result as_expected=false): a failed step.
            with self._causing_boots():
                outcome = ctx.ota.deploy(image, expect=action.expect, timeout=action.timeout)
                self._caused_boots += outcome.boots
            return f"{outcome.result}; runs {outcome.running}"
        if kind == "mark":
            ctx.journal.record("mark", scenario=self.sc.scenario, name=action)
            return action
        raise StepFailed(path, step.label(), f"unknown step kind {kind!r}")

    def _power(self, action: str, off: float | None, wait_ready: bool) -> str:
        dut = self.ctx.dut
        with self._lock, self._causing_boots():
            if action == "off":
                dut.power_off()
                return "off"
            if action == "on":
                was_on = dut.power.is_on()
                if wait_ready:
                    boot = dut.power_on()
                    self._caused_boots += 0 if boot is None else 1
                    return "already on and ready" if boot is None else f"ready in {boot.seconds * 1000:.0f}ms"
                dut.power.on()
                self._caused_boots += 0 if was_on else 1
                return "on"
            boot = dut.power_cycle(off_for=off) if wait_ready else None
            if boot is None:
                dut.power.cycle(off if off is not None else dut.off_time)
            self._caused_boots += 1
            return f"ready in {boot.seconds * 1000:.0f}ms" if boot else "cycled"

    def _console(self, action: Any, path: str, label: str) -> str:
        ctx = self.ctx
        if action.command is not None:
            out = ctx.dut.command(action.command, timeout=action.timeout, check=False)
            if action.expect is not None and not re.search(action.expect, out, re.M):
                raise StepFailed(path, label, f"output of {action.command!r} does not match",
                                 observed=out.strip(), expected=action.expect)
            return out.strip()[:200]
        if action.send is not None:
            profile = getattr(ctx.dut, "profile", None)
            if profile is not None and action.send.strip() == profile.reboot_command:
                ctx.dut.request_reboot(by=f"scenario step {path}")
                self._caused_boots += 1  # a reboot the scenario asked for is not unexpected
            else:
                ctx.console.sendline(action.send)
        if action.expect is not None:
            m = ctx.console.expect(re.compile(action.expect, re.M), timeout=action.timeout)
            return m.group(0)
        return "sent"

    def _wait_until_condition(self, action: Any, path: str, label: str) -> str:
        ctx = self.ctx
        if action.until == "console":
            m = ctx.console.expect(re.compile(action.pattern, re.M), timeout=action.timeout)
            return m.group(0)
        if action.until == "telemetry":
            have = ctx.telemetry.count()
            ctx.telemetry.wait_for(have + action.count, timeout=action.timeout)
            return f"{action.count} messages"
        state = action.until  # online / offline
        ctx.telemetry.wait_for_status(state, timeout=action.timeout)
        return state

    def _broker(self, action: str, outage: float | None) -> str:
        broker = self.ctx.broker
        if action == "stop":
            broker.stop()
        elif action == "start":
            broker.start_again()
        else:
            broker.stop()
            self._wait(outage or 0.0)
            broker.start_again()
        return action

    def _restore_network(self) -> None:
        """A scenario's network conditions end with it: the next test starts on a clear link."""
        net = self.ctx.network
        if net is not None:
            try:
                net.heal()
                net.clear()
            except HarnessError as exc:
                self._errors.append(f"restoring the network: {exc}")

    def _apply_network(self, cond: Any) -> None:
        net = self.ctx.network
        if cond.profile is not None:
            net.profile(cond.profile)
        if cond.params:
            net.apply(**cond.params)

    # -- events ------------------------------------------------------------------------------
    def _events(self, injections: list[Injection], result: ScenarioResult) -> None:
        for inj in injections:
            if not self._wait_until(inj.at):
                return
            try:
                self._inject(inj)
                result.fired.append(inj.describe())
                self.counters["injections"] += 1
            except HarnessError as exc:
                self._errors.append(f"{inj.describe()}: {exc}")
                self.ctx.journal.record("injection", action=inj.do, failed=str(exc), at=inj.at)

    def _inject(self, inj: Injection) -> None:
        ctx, p = self.ctx, inj.params
        ctx.journal.record("injection", action=inj.do, params=p, at=inj.at, scenario=self.sc.scenario,
                           event=inj.index)
        if inj.do == "power-cut":
            with self._lock, self._causing_boots():
                ctx.power.off()
                self._wait(p["off"])
                ctx.power.on()
                self._caused_boots += 1
        elif inj.do == "reboot":
            ctx.dut.request_reboot(by=f"scenario event {inj.index}")
            self._caused_boots += 1
        elif inj.do == "partition":
            ctx.network.partition(p["duration"])
        elif inj.do == "profile":
            ctx.network.profile(p["profile"])
        elif inj.do == "broker-restart":
            ctx.broker.stop()
            self._wait(p["duration"])
            ctx.broker.start_again()
        elif inj.do == "ota":
            self._ota_updates += 1
            version = f"{self.seed % 1000}.{inj.index}.{self._ota_updates}"
            image = ctx.ota.build(version, variant=p["variant"], variant_param=p.get("variant_param", 0))
            # A wrong outcome raises DeviceError: journaled as a failed injection, counted by ota.failed.
            with self._causing_boots():
                self._caused_boots += ctx.ota.deploy(image, expect=p["expect"], timeout=600).boots

    # -- power readings ------------------------------------------------------------------------
    def _sample_power(self) -> None:
        """Read the supply's voltage and current every ``power_every`` seconds (journaled by the driver as
        ``power measure`` records), so a scenario on a rig with a supply has a power draw to report.
        Between power actions only: the runner's lock serialises the supply's queries."""
        while self.clock.wait(self.power_every, self._stop):
            try:
                with self._lock:
                    self.ctx.power.measure()
            except HarnessError as exc:
                self._errors.append(f"power readings stopped: {exc}")
                return

    # -- continuous checks ---------------------------------------------------------------------
    @contextlib.contextmanager
    def _causing_boots(self) -> Iterator[None]:
        """While the harness itself boots the device, a boot is on the console before it is counted as
        caused: continuous checks wait (reboots.unexpected would be wrong for that moment)."""
        with self._boots_lock:
            self._boots_pending += 1
        try:
            yield
        finally:
            with self._boots_lock:
                self._boots_pending -= 1

    def _watch(self, tap: list[dict[str, Any]], since: float, result: ScenarioResult) -> None:
        """Judge the continuous checks every ``check_every`` seconds on the records so far; the first that
        fails ends the run at once (it can only stay failed: see CheckSpec.early_judgement)."""
        checks = [c for c in self.sc.checks if c.continuous]
        profile = getattr(self.ctx.dut, "profile", None)
        while self.clock.wait(self.check_every, self._stop):
            with self._boots_lock:
                if self._boots_pending:
                    continue
            patterns = profile.boot_patterns() if profile is not None else None
            metrics = compute_metrics([r for r in list(tap) if r.get("t", 0.0) >= since], boot_patterns=patterns)
            for check in checks:
                spec = check.spec
                observed = metrics.get(spec.metric.name)
                if observed is None or spec.evaluate(observed) or undecided(spec, metrics):
                    continue  # no data yet is not a failure while the run goes on
                at = self.clock.now() - self.t0
                result.stopped_by = CheckResult(spec.text, spec.metric.name, f"{spec.op} {spec.show(spec.expected)}",
                                                spec.show(observed) + _when(metrics.get(f"{spec.metric.name}.at")),
                                                False)  # fmt: skip
                result.stopped_at = at
                # A lifecycle record, not a "check" one: the checks are judged (again) at the end, once.
                self.ctx.journal.record("scenario", action="stopped", scenario=self.sc.scenario, at=round(at, 3),
                                        check=check.name or spec.text, metric=spec.metric.name, op=spec.op,
                                        expected=spec.expected, observed=_json_ready(observed))  # fmt: skip
                self._stop.set()
                return

    # -- time ----------------------------------------------------------------------------------
    def _wait(self, seconds: float) -> bool:
        return self.clock.wait(seconds, self._stop)

    def _wait_until(self, offset: float) -> bool:
        """Wait until ``offset`` seconds after the scenario's start."""
        left = self.t0 + offset - self.clock.now()
        return left <= 0 or self.clock.wait(left, self._stop)

    def _tick(self) -> None:
        while self.clock.wait(self.progress_every, self._stop):
            self._report_progress()

    def _report_progress(self) -> None:
        if self.progress is not None:
            self.counters["boots"] = self._caused_boots
            self.progress(self.clock.now() - self.t0, self.duration, dict(self.counters))

    # -- the end -------------------------------------------------------------------------------
    def _compression(self) -> str:
        """``160x`` when --scenario-duration compressed the file's schedule, else empty."""
        return _compression_text(self.sc.duration, self.duration)

    def _finish(self, result: ScenarioResult, records: list[dict[str, Any]]) -> None:
        journal = self.ctx.journal
        profile = getattr(self.ctx.dut, "profile", None)
        metrics = compute_metrics(
            records,
            boot_patterns=profile.boot_patterns() if profile is not None else None,
            steps_failed=1 if result.failed_step else 0,
        )
        result.metrics = {k: v for k, v in metrics.items() if k != "unmeasurable"}
        compressed = self._compression()
        for check in self.sc.checks:
            spec = check.spec
            observed = metrics.get(spec.metric.name)
            why = undecided(spec, metrics)
            if why and compressed:
                why += f" (the schedule is compressed {compressed}: boots last seconds, not hours)"
            passed = True if why else spec.evaluate(observed)
            shown = spec.show(observed) + _when(metrics.get(f"{spec.metric.name}.at")) + (
                f", not judged: {why}" if why else "")
            cr = CheckResult(spec.text, spec.metric.name, f"{spec.op} {spec.show(spec.expected)}", shown, passed,
                             why or "")  # fmt: skip
            result.checks.append(cr)
            journal.record("check", scenario=self.sc.scenario, name=check.name or spec.text, metric=spec.metric.name,
                           op=spec.op, expected=spec.expected, observed=_json_ready(observed),
                           passed=None if why else passed, skipped=why)  # fmt: skip
        journal.record("scenario", action="end", scenario=self.sc.scenario, passed=result.passed,
                       elapsed=round(result.elapsed, 3), fired=result.fired, injection_errors=self._errors)


def _when(at: Any) -> str:
    """`` at 41 h 12 min`` for a metric that happened at an instant (``heap.min``, ``boot.time.max``)."""
    return f" at {format_seconds(float(at))}" if isinstance(at, int | float) else ""


def _compression_text(file_duration: float | None, duration: float | None) -> str:
    if not file_duration or not duration or duration >= file_duration:
        return ""
    return f"{file_duration / duration:,.0f}x"


def _json_ready(value: Any) -> Any:
    """Journal records are strict JSON: an infinite horizon ("never") is written as the string."""
    return "never" if isinstance(value, float) and math.isinf(value) else value
