"""The optional kernel backend: detection with a clear reason, selection, and tc netem arguments."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from harness.drivers.netem.kernel import kernel_netem_available, netem_args, select_backend, tc_command
from harness.errors import ConfigError, RigError
from harness.netmodel.params import build_params


def _runner(returncode: int, stderr: str = "") -> Any:
    calls: list[list[str]] = []

    def run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, returncode, "", stderr)

    run.calls = calls  # type: ignore[attr-defined]
    return run


def test_detection_on_this_machine_gives_a_one_line_reason() -> None:
    available, reason = kernel_netem_available()
    assert isinstance(available, bool) and reason and "\n" not in reason


def test_missing_sch_netem_is_explained_and_userspace_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.drivers.netem.kernel as kernel

    monkeypatch.setattr(kernel, "_has_net_admin", lambda: True)
    monkeypatch.setattr(kernel.shutil, "which", lambda name: f"/usr/bin/{name}")
    runner = _runner(2, "Error: Specified qdisc kind is unknown.\n")
    available, reason = kernel_netem_available(runner)
    assert not available
    assert reason == ("kernel netem unavailable: 'tc qdisc add ... netem' failed: "
                      "Error: Specified qdisc kind is unknown. (is sch_netem built?)")
    assert runner.calls[0][1:3] == ["--net", "/usr/bin/tc"]  # probed in a private namespace only
    backend, message = select_backend("auto", runner)
    assert backend == "userspace" and "Specified qdisc kind is unknown" in message
    with pytest.raises(RigError, match=r"^kernel netem unavailable"):
        select_backend("kernel", runner)


def test_available_kernel_netem_can_be_selected(monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.drivers.netem.kernel as kernel

    monkeypatch.setattr(kernel, "_has_net_admin", lambda: True)
    monkeypatch.setattr(kernel.shutil, "which", lambda name: f"/usr/bin/{name}")
    assert select_backend("kernel", _runner(0))[0] == "kernel"
    assert select_backend("auto", _runner(0))[0] == "userspace"


def test_no_privilege_or_no_tc(monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.drivers.netem.kernel as kernel

    monkeypatch.setattr(kernel, "_has_net_admin", lambda: False)
    assert kernel_netem_available(_runner(0)) == (
        False, "kernel netem unavailable: changing qdiscs needs root or CAP_NET_ADMIN")
    monkeypatch.setattr(kernel.shutil, "which", lambda name: None)
    assert kernel_netem_available(_runner(0)) == (
        False, "kernel netem unavailable: 'tc' (iproute2) is not installed")


def test_unknown_backend() -> None:
    with pytest.raises(ConfigError, match=r"^backend: expected one of auto, userspace, kernel, got 'ebpf'$"):
        select_backend("ebpf")


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"delay": "100ms"}, "delay 100000us"),
        ({"delay": "100ms", "jitter": "10ms", "delay_correlation": "25%", "distribution": "normal"},
         "delay 100000us 10000us 25% distribution normal"),
        ({"loss": "1%", "loss_correlation": "25%"}, "loss random 1% 25%"),
        ({"gemodel": "1% 10% 70% 0.1%"}, "loss gemodel 1% 10% 70% 0.1%"),
        ({"duplicate": "1%", "corrupt": "0.1%"}, "duplicate 1% corrupt 0.1%"),
        ({"delay": "10ms", "reorder": "25%", "reorder_correlation": "50%", "gap": 5},
         "delay 10000us reorder 25% 50% gap 5"),
        ({"rate": "384kbit"}, "rate 384000bit"),
    ],
)
def test_netem_arguments(params: dict[str, Any], expected: str) -> None:
    assert " ".join(netem_args(build_params(**params))) == expected


def test_tc_command() -> None:
    cmd = tc_command("eth1", build_params(delay="5ms"))
    assert list(cmd) == ["tc", "qdisc", "replace", "dev", "eth1", "root", "netem", "delay", "5000us"]


def test_open_point_journals_the_backend_choice(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.drivers.netem.kernel as kernel
    from harness.drivers.netem import NetworkImpairment, open_point
    from harness.run.journal import Journal, read_journal

    monkeypatch.setattr(kernel, "_has_net_admin", lambda: True)
    monkeypatch.setattr(kernel.shutil, "which", lambda name: f"/usr/bin/{name}")
    missing = _runner(2, "Error: Specified qdisc kind is unknown.\n")
    with Journal(tmp_path / "journal.jsonl") as journal:
        point = open_point(journal, seed=3, runner=missing, stats_interval=None)
        try:
            assert isinstance(point, NetworkImpairment) and point.backend == "userspace"
        finally:
            point.stop()
        with pytest.raises(RigError, match=r"^kernel netem unavailable: .*Specified qdisc kind is unknown"):
            open_point(journal, backend="kernel", runner=missing)
        with pytest.raises(RigError, match=r"no kernel backend object yet; use backend='userspace'"):
            open_point(journal, backend="kernel", runner=_runner(0))
    records = [r for r in read_journal(tmp_path / "journal.jsonl") if r["kind"] == "netem.backend"]
    assert [(r["requested"], r["chosen"]) for r in records] == [("auto", "userspace"), ("kernel", "kernel")]
    assert "Specified qdisc kind is unknown" in records[0]["reason"]
