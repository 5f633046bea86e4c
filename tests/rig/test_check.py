"""``harness rig check`` opens every part of a rig once and reports each; ``harness rig list`` names
each rig once; a pytest run on a bench that cannot be opened is an error, never 40 skipped tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.cli import main

ROOT = Path(__file__).resolve().parents[2]
QUIET = "profile:\n  name: quiet\n  prompt: '$ '\n  boot_done: '^READY'\n"


@pytest.fixture
def dead_bench(tmp_path: Path, closed_port: int) -> Path:
    missing = tmp_path / "ttyUSB-gone"  # a tty path that does not exist
    path = tmp_path / "lab3.yaml"
    path.write_text(f"name: lab3\nconsole:\n  url: {missing}\npower:\n"
                    f"  resource: TCPIP::127.0.0.1::{closed_port}::SOCKET\n  timeout: 2s\n{QUIET}")  # fmt: skip
    return path


def test_check_reports_every_part_of_the_twin(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rig", "check", str(ROOT / "rigs" / "twin.yaml"), "--rig-lock-dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" ", 2)[1] for line in lines] == ["twin", "console", "power", "broker"], lines
    assert all(": ok: " in line for line in lines), lines
    power = next(line for line in lines if line.startswith("twin: power TCPIP::127.0.0.1::"))
    assert "TWIN-PSU" in power and "channel 1 output" in power, power


def test_check_reports_each_dead_part_and_fails(
    dead_bench: Path, tmp_path: Path, closed_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rig", "check", str(dead_bench), "--rig-lock-dir", str(tmp_path / "locks")]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2, lines
    console, power = lines
    assert console.startswith(f"lab3: console {tmp_path / 'ttyUSB-gone'}: FAILED: ") and "No such file" in console
    assert power.startswith(f"lab3: power TCPIP::127.0.0.1::{closed_port}::SOCKET: FAILED: ")
    assert "refused" in power.lower(), power


def test_check_leaves_a_bench_another_run_holds_alone(
    dead_bench: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from harness.rig.claim import resource_keys, try_claim
    from harness.rig.loader import load_rig_file

    spec = load_rig_file(dead_bench)
    held = try_claim(spec, resource_keys(spec), tmp_path / "locks", {"worker": "gw0", "run_id": "other"})
    assert held is not None
    try:
        assert main(["rig", "check", str(dead_bench), "--rig-lock-dir", str(tmp_path / "locks")]) == 1
    finally:
        held.release()
    out = capsys.readouterr().out
    assert out.startswith("lab3: claim ") and "FAILED: " in out and "run other" in out, out
    assert len(out.splitlines()) == 1, "nothing is opened while another run holds the bench"


def test_check_of_an_unknown_rig_is_a_config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    os.chdir(tmp_path)
    assert main(["rig", "check", "lab9"]) == 1
    assert capsys.readouterr().out.startswith("--rig: no rig named 'lab9'")


def test_list_names_each_rig_once_with_where_it_comes_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "rigs").mkdir()
    (tmp_path / "rigs" / "twin.yaml").write_text("name: twin\ntwin: {}\n")
    (tmp_path / "rigs" / "lab3.yaml").write_text("name: lab3\nconsole: {url: loop://}\n")
    monkeypatch.chdir(tmp_path)
    assert main(["rig", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["lab3\trigs/lab3.yaml", "twin\trigs/twin.yaml (shadows the built-in rig of that name)"]
    monkeypatch.chdir(tmp_path / "rigs")  # no rigs/ here: only the built-in
    assert main(["rig", "list"]) == 0
    assert capsys.readouterr().out.splitlines() == ["twin\tbuilt-in"]


USES_POWER = """\
import pytest

@pytest.mark.requires("console", "power")
@pytest.mark.parametrize("n", range(3))
def test_power_cycles(dut, n):
    dut.power_cycle()
"""


def _bench_project(pytester: pytest.Pytester, tmp_path: Path) -> None:
    (pytester.path / "pytest.ini").write_text("[pytest]\n")
    (pytester.path / "rigs").mkdir()
    (pytester.path / "rigs" / "lab3.yaml").write_text(  # console only: every test lacks power
        f"name: lab3\nconsole:\n  url: {tmp_path / 'ttyUSB-gone'}\n{QUIET}")
    pytester.makepyfile(test_power=USES_POWER)


def _pytest(pytester: pytest.Pytester, tmp_path: Path, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "--rig", "lab3", f"--rig-lock-dir={tmp_path / 'locks'}", f"--reports-dir={tmp_path / 'reports'}",
        "-p", "no:cacheprovider", *args, timeout=120,
    )  # fmt: skip


def test_a_bench_that_cannot_be_opened_stops_the_run(pytester: pytest.Pytester, tmp_path: Path) -> None:
    _bench_project(pytester, tmp_path)
    result = _pytest(pytester, tmp_path)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    result.stderr.fnmatch_lines([
        f"ERROR: rig is out of service: could not bring up rig 'lab3' (rigs/lab3.yaml): console lab3: cannot open "
        f"{tmp_path / 'ttyUSB-gone'}:*(harness rig check lab3 opens each part and reports it)"])
    assert "skipped" not in result.stdout.str()


def test_under_xdist_the_tests_of_a_dead_bench_fail_instead_of_skipping(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    _bench_project(pytester, tmp_path)
    result = _pytest(pytester, tmp_path, "-n", "1")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    outcomes = result.parseoutcomes()
    assert outcomes.get("skipped", 0) == 0 and outcomes.get("errors", 0) + outcomes.get("failed", 0) == 3, outcomes
    result.stdout.fnmatch_lines(["*rig is out of service: could not bring up rig 'lab3'*"])


def test_collect_only_opens_nothing(pytester: pytest.Pytester, tmp_path: Path) -> None:
    _bench_project(pytester, tmp_path)
    result = _pytest(pytester, tmp_path, "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK


def test_validate_notes_a_console_tty_this_machine_lacks(
    dead_bench: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The file is fine (it may be for another host), so validate passes, but does not stay silent."""
    assert main(["rig", "validate", str(dead_bench)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{dead_bench}: ok (board rig 'lab3'; capabilities console, power); note: console ")
    assert "does not exist on this machine (harness rig check opens every part)" in out


def test_check_asks_an_external_broker_for_an_mqtt_session(
    tmp_path: Path, closed_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    import pty

    master, slave = pty.openpty()  # a console that opens: only the broker is dead
    tty = os.ttyname(slave)
    try:
        path = tmp_path / "lab3.yaml"
        path.write_text(f"name: lab3\nconsole:\n  url: {tty}\n"
                        f"services:\n  broker: mqtt://127.0.0.1:{closed_port}\n{QUIET}")  # fmt: skip
        assert main(["rig", "check", str(path), "--rig-lock-dir", str(tmp_path / "locks")]) == 1
    finally:
        os.close(master)
        os.close(slave)
    console, broker = capsys.readouterr().out.splitlines()
    assert console == f"lab3: console {tty}: ok: opened at 115200 baud"
    assert broker.startswith(f"lab3: broker mqtt://127.0.0.1:{closed_port}: FAILED: timed out after 5s waiting for "
                             f"external broker mqtt://127.0.0.1:{closed_port}"), broker
