"""The device's services for a run: broker, impairment point, telemetry collector — and the wiring
that points the device at them.

The device reaches the broker only through the impairment point (when the rig asks for one), so
partitions and lossy links act on real MQTT traffic; the collector subscribes to the broker
directly, so it sees what arrived, not what the link did.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.errors import HarnessError, RigError
from harness.rig.spec import ServicesSpec


class RigServices:
    """Broker + impairment point + collector for one rig; close() stops all of them."""

    def __init__(self) -> None:
        self.broker: Any = None
        self.network: Any = None
        self.collector: Any = None
        self.artifacts: Any = None
        self.artifacts_url = ""
        self.ota: Any = None
        self.ota_jobs: Any = None
        self.device_host = ""
        self.device_port = 0
        self._closers: list[Callable[[], None]] = []

    @classmethod
    def start(cls, spec: ServicesSpec, run_dir: Path, journal: Any) -> RigServices:
        from harness.services.broker import Broker, ExternalBroker
        from harness.services.collector import TelemetryCollector

        self = cls()
        try:
            if spec.broker.startswith(("mqtt://", "mqtts://")):
                tls = spec.tls
                self.broker = ExternalBroker(
                    spec.broker,
                    ca_cert=tls.ca_cert if tls else None,
                    client_cert=tls.client_cert if tls else None,
                    client_key=tls.client_key if tls else None,
                    insecure=tls.insecure if tls else False,
                    username=spec.username,
                    password=spec.password,
                )
                self.broker.check()
            else:
                self.broker = Broker.start(run_dir, spec.broker, journal)
            self._closers.append(self.broker.close)
            upstream = (self.broker.host, self.broker.port)
            if spec.network:
                from harness.drivers.netem import ImpairmentPoint

                self.network = ImpairmentPoint(journal, seed=spec.seed).start()
                self._closers.append(self.network.stop)
                host, port = self.network.add_tcp(upstream, listen=(spec.listen_host, 0), name="mqtt")
            else:
                host, port = upstream
            self.device_host = spec.advertise_host or host
            self.device_port = port
            self.collector = TelemetryCollector(self.broker, journal).start()
            self._closers.append(self.collector.close)
            self._start_artifacts(spec, run_dir, journal)
            self._announce(run_dir, journal)
        except BaseException:
            self.close()
            raise
        return self

    def _start_artifacts(self, spec: ServicesSpec, run_dir: Path, journal: Any) -> None:
        """The OTA artifact server; the device downloads through the impairment point, like its MQTT.

        It serves from a temporary folder of its own, removed when it stops: the run folder keeps each
        image by reference (name, size, SHA-256 in the journal's ``artifact.published`` records), not its
        bytes (docs/ota.md)."""
        from harness.services.artifacts import ArtifactServer

        self.artifacts = ArtifactServer(None, journal=journal).start()
        self._closers.append(self.artifacts.stop)
        host, port = self.artifacts.host, self.artifacts.port
        if self.network is not None:
            host, port = self.network.add_tcp((host, port), listen=(spec.listen_host, 0), name="ota")
        self.artifacts_url = f"http://{spec.advertise_host or host}:{port}"

    def _announce(self, run_dir: Path, journal: Any) -> None:
        """``<run>/services.json``: where an outside tool finds the broker (harness.services.discovery)."""
        from harness.services import discovery

        worker = getattr(journal, "worker", "") or "main"
        path = discovery.write(run_dir, worker, discovery.describe(self, worker))
        self._closers.insert(0, lambda: discovery.mark_stopped(path))

    def point_device_at_broker(self, dut: Any, device_id: str, interval: float | None, *,
                               slot_size: int | None = None) -> None:  # fmt: skip
        """Run the profile's broker-setup (and OTA key) commands, then make the firmware use them."""
        profile = dut.profile
        values = {"host": self.device_host, "port": self.device_port, "device_id": device_id}
        for template in profile.broker_setup:
            dut.command(template.format(**values))
        if interval is not None and profile.telemetry_interval_key:
            dut.set_config(profile.telemetry_interval_key, f"{interval:g}")
        if profile.takes_ota:
            from harness.rig.ota import OtaService

            self.artifacts.slot_size = slot_size  # the server refuses to publish what the device cannot hold

            self.ota = OtaService(dut, self.artifacts, self.artifacts_url, self.collector.journal, device_id,
                                  jobs=self._job_channel(profile) if profile.ota_delivery == "mqtt" else None,
                                  slot_size=slot_size)  # fmt: skip
            self.ota.provision(reboot=profile.broker_apply != "reboot")
        if profile.broker_apply == "reboot":
            dut.reboot()  # one reboot makes the firmware take every setting above

    def _job_channel(self, profile: Any) -> Any:
        """The deployer's MQTT client (jobs out, status in), straight to the broker; one per run."""
        if self.ota_jobs is None:
            from harness.services.ota_jobs import OtaJobChannel

            self.ota_jobs = OtaJobChannel(self.broker.endpoint, self.collector.journal,
                                          job_topic=profile.ota_job_topic,
                                          status_topic=profile.ota_status_topic).start()  # fmt: skip
            self._closers.append(self.ota_jobs.close)
        return self.ota_jobs

    def close(self) -> None:
        errors = []
        while self._closers:
            closer = self._closers.pop()
            try:
                closer()
            except (HarnessError, OSError) as exc:
                errors.append(str(exc))
        if errors:
            raise RigError(f"services did not stop cleanly: {'; '.join(errors)}")


class TelemetryView:
    """The run's telemetry seen from one test: counts, waits and accounting start at the test's start.

    One collector serves the whole run (so the journal holds each message once); each test gets a
    view that ignores what arrived before it began. Counts and count waits count *new* messages
    (the first arrival of a seq): a QoS 1 redelivery of a seq received earlier is not new telemetry.
    """

    def __init__(self, collector: Any, device: str | None = None) -> None:
        self.collector = collector
        self.device = device
        self.t0 = time.time()
        self._skip, self._skip_new = collector.marks(device)

    def messages(self, *, duplicates: bool = True) -> list[Any]:
        """Every arrival since the test began (``duplicates=False``: the new messages only)."""
        if duplicates:
            return self.collector.messages(self.device)[self._skip :]
        return self.collector.messages(self.device, duplicates=False)[self._skip_new :]

    def count(self) -> int:
        """New messages since the test began (what ``wait_for(n)`` counts)."""
        return len(self.messages(duplicates=False))

    def wait_for(self, what: int | Callable[[Any], bool], timeout: float = 30.0) -> Any:
        """``what`` more new messages since the test began, or the first arrival since then matching a predicate."""
        if isinstance(what, int) and not isinstance(what, bool):
            got = self.collector.wait_for(self._skip_new + what, timeout=timeout, device=self.device)
            return got[self._skip_new :]
        seen = {id(m) for m in self.collector.messages(self.device)[: self._skip]}
        return self.collector.wait_for(lambda m: id(m) not in seen and what(m), timeout=timeout, device=self.device)

    def wait_for_status(self, state: str, timeout: float = 30.0) -> dict[str, Any]:
        device = self.device or self._only_device()
        return self.collector.wait_for_status(device, state, timeout=timeout)

    def status(self) -> dict[str, Any] | None:
        return self.collector.status(self.device or self._only_device())

    def records(self) -> list[dict[str, Any]]:
        return [r for r in self.collector.records() if r.get("t", 0.0) >= self.t0]

    def summary(self) -> Any:
        """Accounting of this test's window: a boot already running when it began is accounted from
        where the collector stood then (the seq after the last one received), not from seq 1."""
        import dataclasses

        from harness.services.accounting import account

        return account(self.records(), dataclasses.replace(self.collector.config, since=self.t0))

    def frame(self) -> Any:
        from harness.services.frame import telemetry_frame

        return telemetry_frame([r for r in self.records() if r.get("kind") == "telemetry"])

    def assert_no_unexplained_loss(self) -> Any:
        summary = self.summary()
        summary.assert_no_unexplained_loss()
        return summary

    def assert_latency(self, **limits: float) -> Any:
        summary = self.summary()
        summary.assert_latency(**limits)
        return summary

    def _only_device(self) -> str:
        devices = sorted({m.device for m in self.collector.messages()})
        if len(devices) == 1:
            return devices[0]
        raise RigError(f"telemetry: name the device; seen {', '.join(devices) or 'none'}")


