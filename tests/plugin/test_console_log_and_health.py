"""Console logs of failed tests, and the per-test rig health check, through pytester."""

from __future__ import annotations

import pytest

LOOP_RIG = """\
name: loopback
console:
  url: "loop://"
profile:
  name: loop
  prompt: "loop> "
  boot_done: "^READY"
"""


@pytest.fixture(autouse=True)
def _loop_rig(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", loop=LOOP_RIG)
    pytester.makeini("[pytest]\nrig = loop.yaml\n")


def test_failed_test_report_carries_its_console_lines(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_talks_then_fails(console):
            console.send("hello from the test\\r\\n")
            console.expect("hello from the test\\r\\n")
            assert False, "boom"

        def test_passes(console):
            console.send("quiet\\r\\n")
            console.expect("quiet\\r\\n")
        """
    )
    result = pytester.runpytest("--no-rig-health")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*- Captured console loopback -*", "*  hello from the test"])
    assert "quiet" not in result.stdout.str(), "a passing test's console output leaked into the report"


def test_unhealthy_device_fails_fast_and_says_why(pytester: pytest.Pytester) -> None:
    # pyserial's loop:// echoes what is sent and never prints a prompt: a wedged device without power
    # control. The first test finds it; the rest fail at once with the same reason, not by timing out.
    pytester.makepyfile(
        """
        def test_one(console):
            pass

        def test_two(dut):
            pass

        def test_without_the_device():
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*rig is out of service: loopback: not answering on its console and the rig has no power*",
        ]
    )
    assert result.stdout.str().count("rig is out of service") >= 2
