"""The soak and compare pages in a real browser (headless Chromium): no console errors, no horizontal scroll
at 1280 px, every image loaded, the verdict visible without scrolling. Skipped only when Chromium is absent
(Debian: ``apt-get install chromium``)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from harness.report.browser import find_chromium, inspect_page
from harness.report.build import build
from harness.report.screenshot import compare_page
from tests.report.craft import Run
from tests.report.twinlog import SoakSpec, write_soak

pytestmark = pytest.mark.skipif(
    find_chromium() is None, reason="Chromium is not installed (Debian: apt-get install chromium)"
)


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The browser's profile folder goes here, so the test can see it removed."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    return tmp


def _no_browser_left(profile_root: Path) -> None:
    assert list(profile_root.iterdir()) == [], "the browser's profile folder is removed"
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().decode(errors="replace")
        except OSError:
            continue
        assert str(profile_root) not in text, f"a browser process is still running: {cmdline.parent.name}"


def _crowded_run(folder: Path) -> Path:
    """126 boots, 61 firmware versions, an unexpected reboot after a console line 600 characters long."""
    r = Run(folder, duration=None)
    r.boot()
    for i in range(60):
        r.publish(3)
        r.ota(f"1.0.{i + 1}")
    for _ in range(55):
        r.publish(2)
        r.software_reboot()
    r.publish(2)
    r.j.record("console", t=r.t, source="twin", line="panic: " + "0xdeadbeef," * 55)
    r.boot("watchdog")
    r.publish(5)
    return r.end()


def test_the_soak_page_reads_in_a_browser_at_1280_px(tmp_path: Path, private_tmp: Path) -> None:
    folder = tmp_path / "soak"
    write_soak(folder, SoakSpec())
    page = build(folder).soak.html
    check = inspect_page(page, width=1280, height=800)
    assert check.problems() == []
    assert check.verdict is not None and check.verdict["state"] == "FAIL"
    assert len(check.images) == 3 and not check.broken_images
    _no_browser_left(private_tmp)


def test_a_crowded_run_page_does_not_scroll_sideways(tmp_path: Path, private_tmp: Path) -> None:
    page = build(_crowded_run(tmp_path / "crowded")).soak.html
    check = inspect_page(page, width=1280, height=800)
    assert check.problems() == []
    assert check.scroll_width <= 1280
    _no_browser_left(private_tmp)


def test_the_compare_page_reads_in_a_browser(tmp_path: Path, private_tmp: Path) -> None:
    base, now = tmp_path / "base", tmp_path / "now"
    write_soak(base, SoakSpec(leak_per_h=0.0, watchdog_at_h=None))
    tests = {"tests/device/test_boot.py::test_boots": "failed", "tests/device/test_power.py::test_cut": "passed"}
    write_soak(now, SoakSpec(tests=tests))
    page = compare_page(now, base, tmp_path / "out")
    check = inspect_page(page, width=1280, height=800)
    assert check.problems() == []
    assert check.verdict is not None and check.verdict["state"] == "REGRESSION"
    assert "new failure" in check.verdict["text"]
    _no_browser_left(private_tmp)


def test_the_inspector_sees_what_a_reader_would_trip_over(tmp_path: Path, private_tmp: Path) -> None:
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><html><body><div style='width:2000px'>wide</div>"
        "<img alt='broken' src='data:image/png;base64,AAAA'><div style='height:1200px'></div>"
        "<div id='verdict' data-state='PASS'>late</div><script>console.error('boom')</script></body></html>",
        encoding="utf-8",
    )
    problems = inspect_page(bad, width=1280, height=800).problems()
    assert any(p.startswith("console error: boom") for p in problems)
    assert any(p.startswith("scrolls horizontally: scrollWidth 20") for p in problems)
    assert "image not loaded: 'broken'" in problems
    assert any(p.startswith("verdict not visible without scrolling") for p in problems)
    _no_browser_left(private_tmp)
