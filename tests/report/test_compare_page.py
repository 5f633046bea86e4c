"""The compare page, verdict first: the state word and the findings listed at the top are the comparison's."""

from __future__ import annotations

import re
from pathlib import Path

from harness.report.compare import compare
from harness.report.compare_render import html, state
from harness.report.tolerances import load_tolerances
from tests.report.twinlog import SoakSpec, write_soak

FAILED = {"tests/device/test_boot.py::test_boots": "failed", "tests/device/test_power.py::test_cut": "passed"}


def _verdict(page: str) -> tuple[str, list[str]]:
    block = re.search(r'<div id="verdict" class="\w+" data-state="(\w+)">(.*?)</div>', page, re.S)
    assert block, "the page opens with a verdict block"
    assert page.index('id="verdict"') < page.index("<h2>")
    return block.group(1), re.findall(r'<li class="failure" data-kind="([\w-]+)">', block.group(2))


def test_a_regression_lists_every_finding_at_the_top(tmp_path: Path) -> None:
    write_soak(tmp_path / "base", SoakSpec(leak_per_h=0.0, watchdog_at_h=None))
    write_soak(tmp_path / "now", SoakSpec(tests=FAILED))
    cmp = compare(tmp_path / "now", tmp_path / "base", load_tolerances(None))
    st, kinds = _verdict(html(cmp))
    assert st == state(cmp) == "REGRESSION"
    assert kinds.count("new-failure") == len(cmp.new_failures) == 1
    assert kinds.count("metric") == len(cmp.regressions) >= 1
    assert len(kinds) == len(cmp.findings)


def test_no_finding_is_pass_and_an_unfinished_side_is_incomplete(tmp_path: Path) -> None:
    write_soak(tmp_path / "base", SoakSpec())
    write_soak(tmp_path / "same", SoakSpec())
    assert _verdict(html(compare(tmp_path / "same", tmp_path / "base", load_tolerances(None)))) == ("PASS", [])
    write_soak(tmp_path / "killed", SoakSpec(), truncate=True)
    st, _ = _verdict(html(compare(tmp_path / "killed", tmp_path / "base", load_tolerances(None))))
    assert st == "INCOMPLETE"
