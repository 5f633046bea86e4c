"""The plugin's command-line options and ini keys (one group, each option with an ini twin), and
the settings a run reads from them: an option given on the command line wins over its ini key."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "IoT device harness")
    group.addoption(
        "--rig",
        dest="harness_rig",
        metavar="NAME|PATH",
        help="rig to run against: rigs/NAME.yaml, a built-in rig, or a path to a rig file "
        "(ini: rig; default: twin)",
    )
    group.addoption(
        "--rig-lock-dir",
        dest="harness_rig_lock_dir",
        metavar="DIR",
        help="where bench claims lock, shared by every run on the machine "
        "(ini: rig_lock_dir; default: <tmp>/iot-harness-locks)",
    )
    group.addoption(
        "--rig-claim-timeout",
        dest="harness_rig_claim_timeout",
        metavar="DURATION",
        type=duration_option,
        help="how long a worker waits for a free bench (ini: rig_claim_timeout; default: the pool's "
        "claim_timeout, 30m)",
    )
    group.addoption(
        "--reports-dir",
        dest="harness_reports_dir",
        metavar="DIR",
        help="where runs write their folder (ini: reports_dir; default: reports)",
    )
    group.addoption(
        "--run-id", dest="harness_run_id", metavar="ID",
        help="name of this run's folder (default: time-based)",
    )
    group.addoption(
        "--scenario-duration",
        dest="harness_scenario_duration",
        metavar="DURATION",
        type=duration_option,
        help="run soak scenarios for this long instead of their own duration (e.g. 2m, 1h30m)",
    )
    group.addoption(
        "--scenario-seed",
        dest="harness_scenario_seed",
        metavar="N",
        type=int,
        help="replace every scenario's seed (replay a failed run with the seed its report names)",
    )
    group.addoption(
        "--no-rig-health",
        dest="harness_no_health",
        action="store_true",
        help="skip the per-test rig health check (ini: rig_health = false)",
    )
    group.addoption(
        "--build-reports",
        dest="harness_build_reports",
        action="store_true",
        default=None,
        help="at the end of the run, build the soak report, summary and data export in the run folder "
        "(ini: build_reports; 'harness run' always does)",
    )
    parser.addini("build_reports", "build the run's reports when it ends", type="bool", default=False)
    parser.addini("rig", "rig to run against (name or path)", default="twin")
    parser.addini("scenario_progress_every", "how often a running scenario prints a progress line when the "
                  "output is not a terminal (CI logs; e.g. 5m)", default="1m")  # fmt: skip
    parser.addini("scenario_dirs", "folders whose *.yaml files are scenarios", type="args", default=["scenarios"])
    parser.addini("reports_dir", "where runs write their folder", default="reports")
    parser.addini("rig_lock_dir", "where bench claims lock (default: <tmp>/iot-harness-locks)", default="")
    parser.addini("rig_claim_timeout", "how long a worker waits for a free bench (e.g. 30m)", default="")
    parser.addini("rig_health", "check (and recover) the device before each test that uses it",
                  type="bool", default=True)


def duration_option(text: str) -> float:
    """A duration option's value (``30m``, ``1h30m``) in seconds; argparse reports a bad one."""
    from harness.errors import UnitError
    from harness.units import parse_duration

    try:
        return parse_duration(text)
    except UnitError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def rig_ref(config: pytest.Config) -> str:
    """The rig the run names: ``--rig``, else ini ``rig``, else ``twin``."""
    return str(config.getoption("harness_rig") or config.getini("rig") or "twin")


def claim_timeout(config: pytest.Config) -> float | None:
    """``--rig-claim-timeout``, else ini ``rig_claim_timeout``, in seconds (None: the pool's own)."""
    value = config.getoption("harness_rig_claim_timeout")
    if value is None and config.getini("rig_claim_timeout"):
        try:
            value = duration_option(str(config.getini("rig_claim_timeout")))
        except argparse.ArgumentTypeError as exc:
            raise pytest.UsageError(f"ini rig_claim_timeout: {exc}") from None
    return value


def lock_dir(config: pytest.Config) -> Path | None:
    """``--rig-lock-dir``, else ini ``rig_lock_dir`` (None: harness.rig.claim.DEFAULT_LOCK_DIR)."""
    value = config.getoption("harness_rig_lock_dir") or config.getini("rig_lock_dir")
    return Path(value) if value else None


def reports_dir(config: pytest.Config) -> Path:
    """``--reports-dir``, else ini ``reports_dir``, else ``reports``; relative to the rootdir."""
    value = Path(config.getoption("harness_reports_dir") or config.getini("reports_dir") or "reports")
    return value if value.is_absolute() else config.rootpath / value


def health_checks(config: pytest.Config) -> bool:
    """Per-test rig health checks, unless ``--no-rig-health`` or ini ``rig_health = false``."""
    return not config.getoption("harness_no_health") and bool(config.getini("rig_health"))


def build_reports(config: pytest.Config) -> bool:
    """``--build-reports``, else ini ``build_reports``."""
    wanted = config.getoption("harness_build_reports")
    return bool(config.getini("build_reports")) if wanted is None else bool(wanted)
