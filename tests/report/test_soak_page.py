"""The soak page from crafted journals: its verdict banner, its tables and its plots say the same thing.

Runs: no samples, one boot, a leak, a drain, a run killed half-way, a run interrupted, only software
reboots, many boots and firmware versions. Each page is parsed back and compared with the Analysis.
"""

from __future__ import annotations

import html as htmllib
import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import itertools

import matplotlib.pyplot as plt
import pytest

from harness.report import lanes as ln
from harness.report import plots, runfacts
from harness.report.analysis import Analysis, analyze
from harness.report.build import build
from harness.report.rundata import load_run
from harness.report.units import duration, metric_value, time_axis
from tests.report.craft import Run
from tests.report.twinlog import SoakSpec, write_soak


def _text(fragment: str) -> str:
    return htmllib.unescape(re.sub(r"<[^>]+>", "", fragment)).strip()


class Page:
    """The parts of a built soak page the tests compare."""

    def __init__(self, folder: Path) -> None:
        self.built = build(folder)
        self.html = self.built.soak.html.read_text(encoding="utf-8")
        self.a: Analysis = analyze(load_run(folder))
        block = re.search(r'<div id="verdict" class="(\w+)" data-state="(\w+)">(.*?)</div>', self.html, re.S)
        assert block, "the page has a verdict block"
        self.state = block.group(2)
        self.verdict_html = block.group(3)
        self.headline = _text(re.search(r'<span class="headline">(.*?)</span>', self.verdict_html).group(1))
        self.failures = [_text(x) for x in re.findall(r'<li class="failure"[^>]*>(.*?)</li>', self.verdict_html)]
        self.trends = [_text(x) for x in re.findall(r'<li class="trend[^"]*"[^>]*>(.*?)</li>', self.verdict_html)]

    def section(self, title: str) -> str:
        start = self.html.index(f"<h2>{title}</h2>")
        end = self.html.find("<h2>", start + 4)
        return self.html[start : end if end > 0 else None]

    def rows(self, title: str, table: int = 0) -> list[list[str]]:
        tables = re.findall(r"<tbody>(.*?)</tbody>", self.section(title), re.S)
        return [[_text(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", tr)] for tr in re.findall(r"<tr>(.*?)</tr>",
                                                                                                   tables[table])]  # fmt: skip

    def boot_total(self) -> int:
        total = [r for r in self.rows("Boots and reboots") if r[0] == "total"]
        return int(total[0][2].replace(",", ""))

    def trend_readings(self) -> list[str]:
        return [r[-1] for r in self.rows("Leak and drain trends")]


def _results(folder: Path) -> dict:
    return json.loads((folder / "results.json").read_text(encoding="utf-8"))


def _agree(p: Page) -> None:
    """What every page must hold: banner, tables, results.json and the plot lanes agree."""
    a, m = p.a, _results(p.built.folder)["metrics"]
    boots = int(re.search(r"([\d,]+) boots?, (\d+) unexpected", p.headline).group(1).replace(",", ""))
    unexpected = int(re.search(r"boots?, (\d+) unexpected", p.headline).group(1))
    assert boots == len(a.reboots) == m["reboots.total"]
    assert unexpected == m["reboots.unexpected"]
    if a.reboots:
        assert p.boot_total() == boots
        boot_lane = next(lane for lane in ln.lanes(a) if lane.name == "boots")
        assert len(boot_lane.items) == boots
    assert p.trends == p.trend_readings()  # the banner's trend lines are the table's readings
    failed = [c for c in a.checks if c.get("passed") is False]
    banner_checks = [f for f in p.failures if not f.startswith(("unexpected reboots", "failed tests"))]
    banner_checks = [f for f in banner_checks if ": step " not in f]
    assert len(banner_checks) == len(failed) == m["checks.failed"]
    for c, line in zip(failed, banner_checks, strict=True):
        assert str(c["metric"]) in line and metric_value(c["metric"], c["observed"]) in line
    for t, line in zip((a.heap, a.battery), p.trends, strict=True):
        if t.verdict == "unknown":
            assert "trend not computable" in line
    if "no leak" in p.html or "no drain" in p.html:
        pytest.fail("the page claims 'no leak/drain'; it must state the trend instead")
    assert (p.state == "PASS") == (not p.failures and all(t.verdict not in ("leak", "drain") for t in (a.heap, a.battery))
                                   and a.run.complete)  # fmt: skip


def test_a_run_without_samples_says_the_trend_cannot_be_computed(tmp_path: Path) -> None:
    r = Run(tmp_path / "nosamples")
    r.boot()
    p = Page(r.end())
    _agree(p)
    assert p.state == "PASS"
    assert p.trends == ["heap: trend not computable: no samples", "battery: trend not computable: no samples"]
    assert "No telemetry received" in p.section("Telemetry accounting")
    assert "soak-timeseries.png" in {x.name for x in p.built.soak.pngs}  # the event lanes, without data panels
    assert "No telemetry received: only the event lanes are drawn" in p.section("Time series")


def test_too_few_samples_is_said_in_the_banner_not_flat(tmp_path: Path) -> None:
    r = Run(tmp_path / "few")
    r.boot()
    r.publish(2)
    p = Page(r.end())
    _agree(p)
    assert p.trends[0] == "heap: trend not computable: too few samples"
    assert p.rows("Leak and drain trends")[0][1] == "not computable"


def test_one_boot_flat_run_passes_with_its_slope_stated(tmp_path: Path) -> None:
    r = Run(tmp_path / "oneboot")
    r.boot()
    r.publish(400)
    p = Page(r.end())
    _agree(p)
    assert p.state == "PASS" and p.failures == []
    assert "1 boot, 0 unexpected" in p.headline
    assert re.fullmatch(r"heap: no trend: slope \u2212?[\d,.]+ ± [\d,.]+ B/h", p.trends[0])
    assert p.rows("Boots and reboots") == [["power on", "expected", "1"], ["total", "", "1"]]


def test_skipped_tests_are_not_counted_as_passed(tmp_path: Path) -> None:
    """Seen on the README's main job: 46 passed and 1 skipped was headlined "47 of 47 tests passed"."""
    r = Run(tmp_path / "skips")
    r.boot()
    r.publish(20)
    p = Page(r.end(tests={"t.py::test_a": "passed", "t.py::test_b": "passed", "t.py::test_c": "skipped"}))
    assert p.state == "PASS"
    assert "2 of 3 tests passed, 1 skipped" in p.headline


def test_a_leak_fails_with_time_to_exhaustion_in_days(tmp_path: Path) -> None:
    write_soak(tmp_path / "leak", SoakSpec(watchdog_at_h=None))
    p = Page(tmp_path / "leak")
    _agree(p)
    assert p.state == "FAIL"
    heap = p.trends[0]
    assert heap.startswith("heap leak: \u22122") and "B/h (99.9% CI" in heap and heap.endswith("days")
    assert heap == f"heap leak: {heap.split(': ', 1)[1]}"
    assert duration(p.a.heap.exhaustion_s) in heap
    assert '<li class="trend bad" data-verdict="leak">' in p.verdict_html


def test_a_drain_alone_fails_the_run(tmp_path: Path) -> None:
    write_soak(tmp_path / "drain", SoakSpec(leak_per_h=0.0, watchdog_at_h=None))
    p = Page(tmp_path / "drain")
    _agree(p)
    assert p.a.heap.verdict == "flat" and p.a.battery.verdict == "drain"
    assert p.state == "FAIL"
    assert p.trends[1].startswith("battery drain: \u22125.0") and "reaches 3.3 V in" in p.trends[1]
    assert p.trends[0].startswith("heap: no")


def test_failed_checks_are_listed_with_measured_value_against_limit(tmp_path: Path) -> None:
    r = Run(tmp_path / "checks")
    r.boot()
    r.publish(50)
    r.check("heap.slope > -200B/h", "heap.slope", ">", -200.0, -11388.7, False)
    r.check("boot.time.p95 < 5s", "boot.time.p95", "<", 5.0, None, False)
    r.check("telemetry.latency.p99 < 10s", "telemetry.latency.p99", "<", 10.0, 0.042, True)
    p = Page(r.end())
    _agree(p)
    assert p.failures == [
        "soak: heap.slope: \u221211,389 B/h (limit > \u2212200 B/h)",
        "soak: boot.time.p95: no data (limit < 5 s)",
    ]
    assert "1 of 3 checks passed" in p.headline
    measured = [r[3] for r in p.rows("Checks")][:3]
    assert measured == ["\u221211,389 B/h", "no data", "42 ms"]


def test_a_run_killed_half_way_is_incomplete_not_pass(tmp_path: Path) -> None:
    r = Run(tmp_path / "killed")
    r.boot()
    r.publish(100)
    p = Page(r.end(finished=False))
    _agree(p)
    assert p.state == "INCOMPLETE"
    assert "the run did not finish" in p.headline
    assert not p.built.soak.passed


def test_a_killed_run_with_a_leak_fails_and_is_tagged_incomplete(tmp_path: Path) -> None:
    write_soak(tmp_path / "killedleak", SoakSpec(hours=6.0), truncate=True)
    p = Page(tmp_path / "killedleak")
    assert p.state == "FAIL"
    assert '<span class="tag">INCOMPLETE</span>' in p.verdict_html


def test_an_interrupted_run_says_interrupted(tmp_path: Path) -> None:
    r = Run(tmp_path / "stopped")
    r.boot()
    r.publish(100)
    p = Page(r.end(finished=False, interrupted=True))
    assert p.state == "INTERRUPTED"
    assert "INTERRUPTED run (stopped by" in p.headline


def test_only_software_reboots_are_counted_by_their_cause(tmp_path: Path) -> None:
    r = Run(tmp_path / "software")
    r.boot()
    for _ in range(5):
        r.publish(20)
        r.software_reboot()
    r.publish(20)
    p = Page(r.end())
    _agree(p)
    assert p.state == "PASS"
    causes = {row[0]: (row[1], row[2]) for row in p.rows("Boots and reboots")}
    assert causes["software reboot"] == ("expected", "5")
    assert "power cut" not in causes
    assert "6 boots, 0 unexpected" in p.headline


def test_many_boots_and_versions_are_summarised_and_the_full_lists_collapsed(tmp_path: Path) -> None:
    r = Run(tmp_path / "many", duration=None)
    r.boot()
    for i in range(60):
        r.publish(3)
        r.ota(f"1.0.{i + 1}")
    for _ in range(10):
        r.publish(3)
        r.ota("9.9.9", outcome="rolled_back")
    for _ in range(55):
        r.publish(2)
        r.software_reboot()
    p = Page(r.end())
    _agree(p)
    assert len(p.a.reboots) == 126
    meta = re.search(r"<div class=meta>(.*?)</div>", p.html).group(1)
    assert "1.0.0 … 1.0.60 (61 versions)" in _text(meta)
    boots = p.section("Boots and reboots")
    assert "<details><summary>All 126 boots</summary>" in boots  # collapsed, not 126 rows in view
    moves = p.rows("Firmware versions", table=1)
    assert ["1.0.60", "9.9.9", "rolled_back", "10"] in moves  # ten identical attempts: one row
    assert len(moves) == 61


def test_a_seven_minute_run_is_drawn_in_minutes_and_a_day_in_hours() -> None:
    assert time_axis(7 * 60).unit == "min"
    assert time_axis(90).unit == "s"
    assert time_axis(24 * 3600).unit == "h"
    assert time_axis(9 * 86400).unit == "days"


def test_lane_labels_never_overlap_even_with_a_hundred_events(tmp_path: Path) -> None:
    r = Run(tmp_path / "crowded", duration=None)
    r.boot()
    for _ in range(10):  # ten bursts of twelve reboots: groups too close to label in full
        r.publish(30)
        for _ in range(12):
            r.software_reboot()
    a = analyze(load_run(r.end()))
    lane = next(x for x in ln.lanes(a) if x.name == "boots")
    fig = plt.figure(figsize=(plots.WIDTH_IN, 1.0))
    ax = fig.add_axes((0.105, 0.2, 0.88, 0.6))
    xmax = plots._xmax(a, plots.axis_for(a))
    ax.set_xlim(0, xmax)
    plots._draw_lane(ax, fig, lane, plots._x(a, plots.axis_for(a)), xmax)
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    boxes = [t.get_window_extent(renderer) for t in ax.texts]
    plt.close(fig)
    assert boxes, "some label is drawn"
    assert len(boxes) < len(lane.items)  # thinned
    assert any(t.get_text() == "\u00d712" for t in ax.texts)  # a burst drawn once, with its count
    for first, second in itertools.pairwise(boxes):
        assert first.x1 <= second.x0, "labels overlap"
    assert sum(len(g) for g in ln.clusters([float(i.start) for i in lane.items], 30.0)) == len(lane.items)


def test_transitions_and_per_version_uptime_come_from_the_analysis(tmp_path: Path) -> None:
    r = Run(tmp_path / "versions", duration=None)
    r.boot()
    r.publish(10)
    r.ota("1.1.0")
    r.publish(30)
    a = analyze(load_run(r.end()))
    images = runfacts.boot_images(a)
    assert [(b.version, b.boot_id) for b in images] == [("1.0.0", "b1"), ("1.1.0", "b2")]
    assert [t.label for t in runfacts.transitions(a)] == ["1.0.0 → 1.1.0 committed"]
    times = {v.version: v.uptime for v in runfacts.version_times(a)}
    assert times["1.1.0"] == pytest.approx(300.0, abs=5)


def test_python_tests_are_drawn_in_the_test_lane_with_their_outcome(tmp_path: Path) -> None:
    r = Run(tmp_path / "suite", scenario=None, duration=None)
    r.boot()
    for name, outcome in (("test_boots", "passed"), ("test_reboot", "failed")):
        nodeid = f"tests/device/test_boot.py::{name}"
        r.j.record("test", t=r.t + 0.5, action="start", nodeid=nodeid)
        r.publish(6)
        r.j.record("test", t=r.t + 0.5, action="end", nodeid=nodeid, outcome=outcome)
    folder = r.end()
    lane = next(x for x in ln.lanes(analyze(load_run(folder))) if x.name == "test / scenario")
    assert [(i.label, i.key) for i in lane.items] == [("test_boots", "test"), ("test_reboot (failed)", "test-failed")]
    assert all(i.end is not None and i.end - i.start == pytest.approx(60.0) for i in lane.items)
    p = Page(folder)
    listed = p.rows("Time series")
    assert listed[1][1:] == ["test / scenario", "test_reboot (failed)", "1 min"]


def test_a_check_not_judged_is_named_in_the_banner_with_its_reason(tmp_path: Path) -> None:
    """A PASS banner saying '1 of 2 checks passed' and nothing else reads as a hidden failure."""
    r = Run(tmp_path / "unjudged")
    r.boot()
    r.publish(50)
    why = "too little time within boots to tell (the schedule is compressed 160x)"
    r.j.record("check", t=r.t, scenario="soak", name="heap.slope > -200B/h", metric="heap.slope", op=">",
               expected=-200.0, observed=7230.2, passed=None, skipped=why)  # fmt: skip
    r.check("telemetry.latency.p99 < 10s", "telemetry.latency.p99", "<", 10.0, 0.042, True)
    p = Page(r.end())
    _agree(p)
    assert p.state == "PASS"
    assert "1 of 2 checks passed, 1 not judged" in p.headline
    assert f"soak: heap.slope: not judged — {why}" in [_text(x) for x in re.findall(
        r'<li class="unjudged">(.*?)</li>', p.verdict_html)]  # fmt: skip
    assert p.rows("Checks")[0][1:] == ["heap.slope > -200B/h", "> \u2212200 B/h", "+7,230 B/h", "not judged"]


def test_two_cuts_a_moment_apart_are_two_and_a_supply_cycle_is_not_a_cut(tmp_path: Path) -> None:
    """The nightly's schedule can cut twice within a second: the key figure, the power lane and the
    boots agree on two cuts; the supply cycled by a test before them is counted apart."""
    r = Run(tmp_path / "cuts")
    r.boot()
    r.publish(5)
    r.j.record("power", t=r.t, action="off", source="twin:psu")  # dut.power_cycle() from a test
    r.j.record("power", t=r.t + 0.1, action="on", source="twin:psu")
    for gap in (0.9, 0.16):  # two cuts 0.16 s apart, each followed a few ms later by the supply's record
        r.t += gap
        r.j.record("injection", t=r.t, action="power-cut", params={"off": 0.1}, scenario="soak")
        r.j.record("power", t=r.t + 0.004, action="off", source="twin:psu")
        r.j.record("power", t=r.t + 0.1, action="on", source="twin:psu")
    r.publish(20)
    p = Page(r.end())
    lane = next(x for x in ln.lanes(p.a) if x.name == "power")
    assert [i.label for i in lane.items] == ["supply off", "power cut", "power cut"]
    facts = dict((_text(k), _text(v)) for v, k in re.findall(r'<div class="fact"><b>(.*?)</b>(.*?)</div>', p.html))
    assert facts["power cuts, 1 other supply off"] == "2"


def test_the_latency_panel_has_tick_labels_in_plain_milliseconds(tmp_path: Path) -> None:
    """On the symlog latency axis only '10²' was labelled: 42 ms and 150 ms could not be read off."""
    r = Run(tmp_path / "latency")
    r.boot()
    r.publish(60)
    a = analyze(load_run(r.end()))
    (draw,) = [d for title, d in plots._panels(a, plots.axis_for(a)) if title.startswith("latency")]
    fig, ax = plt.subplots()
    draw(ax)
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    plt.close(fig)
    assert labels == ["0", "50", "100"]
