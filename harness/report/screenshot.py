"""Screenshots of a run's soak page (and its compare page against a baseline) in headless Chromium, checked
the way the browser test checks them, for docs/img/.

    python -m harness.report.screenshot reports/<run> --baseline reports/<other-run> --out docs/img

builds ``soak.html`` (and ``compare.html``) from the run folders, opens each at 1280 px, writes
``soak.png`` / ``compare.png`` (the top of the page: what a reader sees first) and prints any problem a
reader would meet (console errors, horizontal scroll, images not loaded, verdict below the fold);
exit status 1 when there is one, 2 on bad input.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from harness.errors import ConfigError
from harness.report.browser import BrowserError, PageCheck, inspect_page

WIDTH = 1280
HEIGHT = 800
#: How much of each page the screenshot shows, in CSS pixels from the top.
SOAK_SHOT = 1500
COMPARE_SHOT = 900


def soak_page(run: Path, out: Path | None = None) -> Path:
    from harness.report.soak import build_soak

    return build_soak(run, out).html


def compare_page(run: Path, baseline: Path, out: Path) -> Path:
    from harness.report.baseline import resolve_baseline
    from harness.report.compare import compare
    from harness.report.compare_render import html
    from harness.report.rundata import resolve_run
    from harness.report.tolerances import load_tolerances

    run = resolve_run(run)
    result = compare(run, resolve_baseline(str(baseline), run), load_tolerances(None))
    out.mkdir(parents=True, exist_ok=True)
    page = out / "compare.html"
    page.write_text(html(result), encoding="utf-8")
    return page


def shoot(page: Path, png: Path, height: int) -> PageCheck:
    check = inspect_page(page, width=WIDTH, height=HEIGHT, screenshot_height=height)
    png.parent.mkdir(parents=True, exist_ok=True)
    if check.screenshot:
        png.write_bytes(check.screenshot)
    return check


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.report.screenshot", description=__doc__.split("\n")[0])
    parser.add_argument("run", help="run folder (reports/<run-id>)")
    parser.add_argument("--baseline", help="baseline run folder or name: also shoot the compare page")
    parser.add_argument("--out", default="docs/img", help="folder for soak.png and compare.png (default docs/img)")
    ns = parser.parse_args(argv)
    out = Path(ns.out)
    try:
        with tempfile.TemporaryDirectory(prefix="harness-shot-") as tmp:
            pages = [(soak_page(Path(ns.run), Path(tmp) / "soak"), out / "soak.png", SOAK_SHOT)]
            if ns.baseline:
                pages.append((compare_page(Path(ns.run), Path(ns.baseline), Path(tmp) / "compare"),
                              out / "compare.png", COMPARE_SHOT))  # fmt: skip
            found = 0
            for page, png, height in pages:
                check = shoot(page, png, height)
                problems = check.problems()
                found += len(problems)
                state = (check.verdict or {}).get("state", "?")
                print(f"{png}: {state}; " + ("; ".join(problems) if problems else "no problems at 1280 px"))
    except (ConfigError, BrowserError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
