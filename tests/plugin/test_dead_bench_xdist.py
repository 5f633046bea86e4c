"""A bench that cannot be opened, under pytest-xdist: every worker tries it, every worker fails its tests
with the same one-line problem (none skipped, none left waiting for a claim), and the run ends with that
line once.

The bench's console is a tty path that does not exist and its supply a loopback port that refuses
connections, as a board unplugged from a lab host and a supply switched off would be.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.run.journal import read_run

QUIET = "profile:\n  name: quiet\n  prompt: '$ '\n  boot_done: '^READY'\n"

TESTS = """\
import pytest

from harness.run.journal import read_run

@pytest.mark.requires("console", "power")
@pytest.mark.parametrize("n", range(4))
def test_power_cycles(dut, n):
    dut.power_cycle()

@pytest.mark.requires("network")  # the bench has no services: skipped for that on a working bench
@pytest.mark.parametrize("n", range(4))
def test_partition(network, n):
    network.partition()

def test_needs_no_rig():
    pass
"""


@pytest.fixture
def dead_bench(pytester: pytest.Pytester, tmp_path: Path, closed_port: int) -> Path:
    (pytester.path / "pytest.ini").write_text("[pytest]\n")
    (pytester.path / "rigs").mkdir()
    path = pytester.path / "rigs" / "lab3.yaml"
    path.write_text(f"name: lab3\nconsole:\n  url: {tmp_path / 'ttyUSB-gone'}\npower:\n"
                    f"  resource: TCPIP::127.0.0.1::{closed_port}::SOCKET\n  timeout: 2s\n{QUIET}")  # fmt: skip
    pytester.makepyfile(test_bench=TESTS)
    return path


def _journals(folder: Path) -> list[dict]:
    return read_run(folder)


@pytest.mark.parametrize(("dist", "needing"), [("load", 8), ("each", 16)])  # each: both workers run every test
def test_every_worker_fails_its_tests_with_the_dead_benchs_problem(
    pytester: pytest.Pytester, tmp_path: Path, dead_bench: Path, dist: str, needing: int
) -> None:
    result = pytester.runpytest_subprocess(
        # a claim_timeout far below the 120 s budget: a worker left waiting for the bench shows as a
        # failure here, not as a hung test
        "--rig", "lab3", f"--rig-lock-dir={tmp_path / 'locks'}", f"--reports-dir={tmp_path / 'reports'}",
        "--run-id", "r", "--rig-claim-timeout", "20s", "-p", "no:cacheprovider", "-n", "2", "--dist", dist,
        timeout=120,
    )  # fmt: skip
    out = result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED, out
    outcomes = result.parseoutcomes()
    assert outcomes.get("skipped", 0) == 0, outcomes
    assert outcomes.get("passed") == needing // 8, outcomes
    assert outcomes.get("failed", 0) + outcomes.get("errors", 0) == needing, outcomes

    # every test that needs the bench fails with one and the same line, the bench's own problem
    failures = re.findall(r"^\[(gw\d)\] linux -- .*\n(.*)$", out, re.M)  # each failure's worker, its first line
    assert len(failures) == needing, out
    problems = {line for _, line in failures}
    assert len(problems) == 1, problems
    (problem,) = problems
    assert problem.startswith("rig is out of service: could not bring up rig 'lab3' (rigs/lab3.yaml): "), problem
    assert "Connection refused" in problem, problem
    if dist == "each":
        assert {worker for worker, _ in failures} == {"gw0", "gw1"}, failures
    assert "no rig free" not in out and "Traceback" not in out

    # both workers tried the bench themselves: a failed open gives its claim back at once
    rig = [r for r in _journals(tmp_path / "reports" / "r") if r["kind"] == "rig"]
    assert not [r for r in rig if r["action"] == "waiting"], [r for r in rig if r["action"] == "waiting"]
    for worker in ("gw0", "gw1"):
        actions = [r["action"] for r in rig if r["worker"] == worker and r["action"] not in ("open", "close")]
        assert actions == ["claimed", "broken", "released"], (worker, rig)
        broken = next(r for r in rig if r["worker"] == worker and r["action"] == "broken")
        assert f"rig is out of service: {broken['problem']}" == problem, broken

    # the run ends with the problem once, and what to run to see each part
    summary = [line for line in result.stdout.lines if line.startswith("harness: ") and "failed" in line]
    assert summary == [f"harness: {needing} tests failed: {problem} (harness rig check lab3 opens each part and "
                       "reports it)"], out


def _hold(dead_bench: Path, tmp_path: Path, state: str):
    from harness.rig.claim import resource_keys, try_claim
    from harness.rig.loader import load_rig_file

    spec = load_rig_file(dead_bench)
    held = try_claim(spec, resource_keys(spec), tmp_path / "locks",
                     {"worker": "gw0", "run_id": "other", "rig": "lab3", "state": state})  # fmt: skip
    assert held is not None
    return held


def _serial(pytester: pytest.Pytester, tmp_path: Path) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "--rig", "lab3", f"--rig-lock-dir={tmp_path / 'locks'}", f"--reports-dir={tmp_path / 'reports'}",
        "--run-id", "r", "--rig-claim-timeout", "500ms", "-p", "no:cacheprovider", timeout=120,
    )  # fmt: skip


def test_collection_waits_for_a_holder_still_opening_the_bench_then_tries_it(
    pytester: pytest.Pytester, tmp_path: Path, dead_bench: Path
) -> None:
    """The holder (as another worker would) finds the bench dead and gives it back while this run collects."""
    import threading

    held = _hold(dead_bench, tmp_path, "opening")
    gave_back = threading.Timer(1.0, held.release)  # the holder's failed open, a second into our collection
    gave_back.start()
    try:
        result = _serial(pytester, tmp_path)
    finally:
        gave_back.cancel()
        held.release()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    result.stderr.fnmatch_lines(["ERROR: rig is out of service: could not bring up rig 'lab3' (rigs/lab3.yaml): "
                                 "power lab3:psu: cannot open *Connection refused*"])  # fmt: skip


def test_a_holder_with_the_bench_open_is_left_alone(
    pytester: pytest.Pytester, tmp_path: Path, dead_bench: Path
) -> None:
    held = _hold(dead_bench, tmp_path, "open")
    try:
        result = _serial(pytester, tmp_path)
    finally:
        held.release()
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # nothing opened at collection: the tests wait, then fail
    result.stdout.fnmatch_lines(["*rig is out of service: rig 'lab3': no rig free after waiting 0.5s: lab3 held by "
                                 "worker gw0 of run other*"])  # fmt: skip
