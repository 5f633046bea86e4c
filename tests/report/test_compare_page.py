"""The compare page, verdict first: the state word and the findings listed at the top are the comparison's."""

from __future__ import annotations

import html as htmllib
import json
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


def _metrics_run(folder: Path, metrics: dict[str, float]) -> Path:
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps({"exit_status": 0, "tests": [], "metrics": metrics}))
    return folder


def _metric_rows(page: str) -> dict[str, list[str]]:
    body = re.search(r"<h2>Metrics</h2>.*?<tbody>(.*?)</tbody>", page, re.S).group(1)
    rows = [[htmllib.unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<td[^>]*>(.*?)</td>", tr)]
            for tr in re.findall(r"<tr>(.*?)</tr>", body)]  # fmt: skip
    return {r[0]: r[1:] for r in rows}


def test_metric_rows_read_at_a_glance_no_signed_zero_and_a_one_line_rule(tmp_path: Path) -> None:
    base = _metrics_run(tmp_path / "base", {"telemetry.latency.p99": 0.1553, "boot.time.p50": 0.063,
                                            "reboots.unexpected": 0, "battery.slope": -0.01495,
                                            "battery.slope.low": -0.05593, "battery.slope.high": 0.02602})  # fmt: skip
    now = _metrics_run(tmp_path / "now", {"telemetry.latency.p99": 0.1551, "boot.time.p50": 0.062,
                                          "reboots.unexpected": 0, "battery.slope": -0.01138,
                                          "battery.slope.low": -0.03266, "battery.slope.high": 0.0099})  # fmt: skip
    page = html(compare(now, base, load_tolerances(None)))
    rows = _metric_rows(page)
    assert rows["telemetry.latency.p99"][2:] == ["0 ms", "higher by > 250 ms or 50%", "within"]
    assert rows["boot.time.p50"][2] == "\u22121 ms"  # a baseline under the allowance: no relative change
    assert rows["reboots.unexpected"][2:4] == ["0", "any increase"]
    assert rows["battery.slope"] == ["\u221214.95 mV/h (\u221255.93 … +26.02)", "\u221211.38 mV/h (\u221232.66 … +9.90)",
                                     "+3.57 mV/h (+24%)", "lower by > 1.00 mV/h", "within noise"]  # fmt: skip
    assert '<td class="pass nowrap"' in page
