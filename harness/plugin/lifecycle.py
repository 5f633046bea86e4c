"""The run state's life in a pytest process: made at configure time from the options and the rig
file, shared with xdist workers (one run folder), closed when the session ends or is interrupted."""

from __future__ import annotations

from typing import Any

import pytest

from harness.errors import ConfigError
from harness.plugin import options
from harness.session import STATE, HarnessSession


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "requires(*capabilities): skip unless the rig has every named capability "
        "(console, power, network, telemetry, ota)",
    )
    from harness.rig.loader import resolve_choice
    from harness.run.runfolder import pick_run_id

    try:
        choice = resolve_choice(options.rig_ref(config), config.rootpath)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    claim_timeout = options.claim_timeout(config)
    workerinput = getattr(config, "workerinput", None)
    run_id = workerinput["harness_run_id"] if workerinput else pick_run_id(config.getoption("harness_run_id"))
    worker = workerinput["workerid"] if workerinput else "main"
    from harness import interrupt
    from harness.run.runfolder import sweep_scratch

    interrupt.install()  # SIGTERM (CI cancel, timeout(1)) ends the run like Ctrl-C
    if workerinput is None:
        sweep_scratch()  # temp folders of harness runs that were killed
    state = HarnessSession(choice.first.spec, choice.first.source, options.reports_dir(config), run_id, worker,
                           options.health_checks(config), choice=choice, lock_dir=options.lock_dir(config),
                           claim_timeout=claim_timeout)  # fmt: skip
    config.stash[STATE] = state
    config.pluginmanager.register(_Interrupts(state), "harness-interrupts")
    if workerinput is None:
        from harness.plugin.reporting import ResultsRecorder

        config.pluginmanager.register(ResultsRecorder(state), "harness-results")


class _Interrupts:
    """SIGTERM and Ctrl-C end the run like Ctrl-C and leave a ``run interrupted`` record (harness.interrupt)."""

    def __init__(self, state: HarnessSession) -> None:
        self.state = state

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        from harness import interrupt

        interrupt.record(self.state.journal, reason=str(excinfo.value))
        self.state.journal.flush()


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist: every worker writes into the controller's run folder."""
    node.workerinput["harness_run_id"] = node.config.stash[STATE].run_id


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop this process's rig and services and close its journal before reports are built."""
    state = session.config.stash.get(STATE, None)
    if state is not None:
        state.close()


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is not None:
        state.close()  # a run interrupted before sessionfinish
