"""The plugin's fixtures (the table in docs/plugin.md is this module's) and the health check that
runs before every test using the device."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from harness.errors import HarnessError
from harness.plugin.reporting import CONSOLE_MARK
from harness.session import RIG_FIXTURES, run_state


@pytest.fixture(autouse=True)
def _harness_rig_health(request: pytest.FixtureRequest) -> Iterator[None]:
    """Before a test that uses the device: check it answers, recover it if not, fail fast if dead."""
    state = run_state(request.config)
    if not RIG_FIXTURES & set(request.fixturenames):
        yield
        return
    if state.broken:
        pytest.fail(f"rig is out of service: {state.broken}", pytrace=False)
    rig = request.getfixturevalue("rig")
    try:
        message = state.health_check(request.node.nodeid)
    except HarnessError:
        message = None  # state.broken says why; failed outside the handler, as one line
    if state.broken:
        pytest.fail(f"rig is out of service: {state.broken}", pytrace=False)
    if message:
        request.node.user_properties.append(("rig_health", message))
    console = rig.console_if_any
    if console is not None:
        request.node.stash[CONSOLE_MARK] = (console, console.mark())
    yield


@pytest.fixture(scope="session")
def rig(request: pytest.FixtureRequest) -> Any:
    """The live rig of this process (one per xdist worker): a started twin or an opened bench."""
    state = run_state(request.config)
    with contextlib.suppress(HarnessError):  # failed below, outside the handler: one line, not a chain of two
        return state.rig()
    pytest.fail(f"rig is out of service: {state.broken}", pytrace=False)


@pytest.fixture
def console(rig: Any) -> Any:
    """The device's console (harness.drivers.console.Console) — expect, command, send."""
    return rig.console


@pytest.fixture
def power(rig: Any) -> Any:
    """The device's power supply (harness.drivers.power.PowerSupply) — on, off, cycle, measure."""
    return rig.power


@pytest.fixture
def dut(rig: Any) -> Any:
    """The device under test, at its prompt: boot, version, reboot, power_cycle, command."""
    rig.dut.ensure_ready()
    return rig.dut


def _services(request: pytest.FixtureRequest, what: str) -> Any:
    state = run_state(request.config)
    if state.broken:
        pytest.fail(f"rig is out of service: {state.broken}", pytrace=False)
    problem = ""
    try:
        services = state.services()
    except HarnessError as exc:
        problem = str(exc)
    if problem:
        pytest.fail(f"could not start the rig's services: {problem}", pytrace=False)
    if services is None:
        pytest.skip(f"rig {state.spec.name!r} has no services section: no {what}")
    return services


@pytest.fixture
def network(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The impairment point between the device and its services (harness.drivers.netem.ImpairmentPoint).

    Whatever a test applies is cleared when it ends, so conditions never leak into the next test.
    """
    services = _services(request, "network")
    if services.network is None:
        pytest.skip("the rig's services run without an impairment point (services.network: false)")
    yield services.network
    services.network.heal()
    services.network.clear()


@pytest.fixture
def telemetry(request: pytest.FixtureRequest) -> Any:
    """The device's telemetry since this test began: wait_for, frame, summary, assert_no_unexplained_loss."""
    from harness.rig.services import TelemetryView

    services = _services(request, "telemetry")
    return TelemetryView(services.collector, run_state(request.config).spec.telemetry_device)


@pytest.fixture
def broker(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The run's MQTT broker: stop(), start_again(), restart(), outage(duration). Restarted if a test leaves it down."""
    services = _services(request, "broker")
    yield services.broker
    if hasattr(services.broker, "running") and not services.broker.running:
        services.broker.start_again()


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The run's OTA artifact server (harness.services.artifacts.ArtifactServer): publish, replace, set_fault.

    The device reaches it through the impairment point at ``rig_services.artifacts_url``; faults a
    test switches on are cleared when it ends.
    """
    services = _services(request, "artifact server")
    yield services.artifacts
    services.artifacts.clear_faults()


@pytest.fixture
def ota(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Updates for the device (harness.rig.ota.OtaService): build(version, variant=, corrupt=), deploy(image, expect=).

    Images are signed with a key made for this run and provisioned on the device before the first update.
    A job a test started and never finished (``start()`` without ``finish()``, a failure in between) is
    cleared from the broker when the test ends, so it cannot install itself during the next test.
    """
    services = _services(request, "ota")
    if services.ota is None:
        pytest.skip("the device profile takes no update (neither ota_delivery: mqtt nor an ota_apply command)")
    yield services.ota
    services.ota.clear_open_jobs()


@pytest.fixture(scope="session")
def journal(request: pytest.FixtureRequest) -> Any:
    """This run's journal (harness.run.journal.Journal): record(kind, **fields)."""
    return run_state(request.config).journal
