"""The plugin journals each Python test's start and end (nodeid, outcome): the soak page's test lane."""

from __future__ import annotations

import pytest

from harness.report.rundata import read_run

TESTS = """
import pytest


def test_opens_the_journal(journal):
    journal.record("note", text="first")


def test_passes():
    pass


def test_fails():
    assert False


@pytest.mark.skip(reason="not today")
def test_skipped():
    pass


@pytest.fixture
def broken():
    raise RuntimeError("set-up broke")


def test_errors(broken):
    pass
"""


def test_each_test_has_a_start_and_an_end_record_with_its_outcome(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_lane=TESTS)
    result = pytester.runpytest("--run-id", "r1", "-p", "no:allure_pytest", "-p", "no:xdist")
    result.assert_outcomes(passed=2, failed=1, skipped=1, errors=1)
    records = [r for r in read_run(pytester.path / "reports" / "r1") if r.get("kind") == "test"]
    ends = {r["nodeid"].split("::")[-1]: r["outcome"] for r in records if r["action"] == "end"}
    assert ends == {"test_opens_the_journal": "passed", "test_passes": "passed", "test_fails": "failed",
                    "test_skipped": "skipped", "test_errors": "error"}  # fmt: skip
    for name in ends:
        start, end = [r for r in records if r["nodeid"].endswith(f"::{name}")]
        assert (start["action"], end["action"]) == ("start", "end") and start["t"] <= end["t"]
