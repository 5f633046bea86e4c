"""A bench whose supply loses mains in the middle of a run, as a user sees it through pytest.

The bench is the twin's rig reached as a board is: its pty as the console, its SCPI server as the
supply. One test of the run stops the rig (the supply goes dark and stays dark); the driver tries to
reopen the session, gives up after its bounded retries, and the next test and the next scenario each
fail with ONE line naming the rig, the supply's resource string and what to check — no traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.twin.served import ServedTwin, start_served, stop_served

BEFORE = """\
import os
import signal
import socket
import time


def test_first(dut):
    assert dut.is_responsive()


def test_the_supply_loses_mains(dut):
    os.kill(int(os.environ["TWIN_PID"]), signal.SIGTERM)
    port = int(os.environ["TWIN_SCPI_PORT"])
    deadline = time.monotonic() + 15
    while True:  # until nothing listens on the supply's port any more
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except ConnectionRefusedError:
            return
        assert time.monotonic() < deadline, f"the supply still listens on {port} after 15 s"
        time.sleep(0.05)
"""

AFTER = """\
def test_after(dut):
    pass
"""

SCENARIO = """\
scenario: after-the-cut
requires: [console, power]
steps:
  - console: {command: version, expect: fw}
"""


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[ServedTwin]:
    twin = start_served(tmp_path, ["--power", "on"])
    try:
        yield twin
    finally:
        stop_served(twin)


def test_a_supply_gone_for_good_fails_the_rest_of_the_run_with_one_line(
    pytester: pytest.Pytester, tmp_path: Path, bench: ServedTwin, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The scenario is the first to find the supply gone (its item's own health check); the test after
    # it fails at once with the same line (the plugin's fixture).
    first_to_find = "scenarios/after.yaml::after-the-cut"
    (pytester.path / "pytest.ini").write_text("[pytest]\n")
    (pytester.path / "rigs").mkdir()
    (pytester.path / "rigs" / "bench.yaml").write_text(
        f"name: bench\nconsole:\n  url: {bench.console}\n"
        f"power:\n  resource: {bench.scpi}\n  dialect: generic\n  channel: 1\nprofile: twin-reference\n"
    )
    pytester.makepyfile(test_b=BEFORE, test_c=AFTER)
    (pytester.path / "scenarios").mkdir()
    (pytester.path / "scenarios" / "after.yaml").write_text(SCENARIO)
    monkeypatch.setenv("TWIN_PID", str(bench.process.pid))
    monkeypatch.setenv("TWIN_SCPI_PORT", bench.scpi.split("::")[2])
    result = pytester.runpytest_subprocess(
        "test_b.py", "scenarios/after.yaml", "test_c.py", "--rig", "bench", f"--rig-lock-dir={tmp_path / 'locks'}",
        f"--reports-dir={tmp_path / 'reports'}", "--run-id", "r", "-p", "no:cacheprovider", "-p", "no:xdist",
    )  # fmt: skip
    result.assert_outcomes(passed=2, errors=1, failed=1)  # test_c errors in its set-up; the scenario fails
    line = (
        f"rig is out of service: power bench:psu ({bench.scpi}): lost the VISA session ('*': *) and 3 reopen "
        "attempts over *s failed (last: *Connection refused); check that the supply is powered and its LAN/USB "
        f"link is up, then run `harness rig check` on the rig (rig 'bench', found before {first_to_find})"
    )
    # each of the two reports is that one line, straight under its header: no traceback, no chain
    result.stdout.fnmatch_lines(["*_ ERROR at setup of test_after _*", line], consecutive=True)
    result.stdout.fnmatch_lines(["*_ scenario: after-the-cut _*", line], consecutive=True)
    out = result.stdout.str()
    assert "Traceback" not in out and "During handling" not in out and "direct cause" not in out, out
