"""The ``harness report`` subcommands, for the CLI to mount with :func:`add_report_commands`.

    harness report build RUN                                  # results.json, soak.html, summary.md, export/
    harness report soak RUN                                   # soak.html + PNGs only
    harness report compare RUN --baseline NAME|DIR [--tolerances FILE]   # exit 1 on regression
    harness report promote RUN [--name NAME]                  # reports/baselines/NAME
    harness report export RUN                                 # CSV + Parquet under RUN/export/

Bad input (a missing or corrupt run folder, a bad tolerance file) raises ConfigError, which the CLI
prints as one line; :func:`main` does the same when this module runs on its own.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness.errors import ConfigError


def add_report_commands(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``report`` with its subcommands to an argparse ``add_subparsers()`` object; returns its parser."""
    report: argparse.ArgumentParser = subparsers.add_parser(
        "report", help="build, compare and promote reports from run folders"
    )
    sub = report.add_subparsers(dest="report_command", metavar="SUBCOMMAND")
    report.set_defaults(func=lambda ns: _usage(report))

    build = sub.add_parser("build", help="rebuild every report of a run (also a run that was killed)")
    build.add_argument("run", help="run folder (reports/<run-id>) or run id")
    build.set_defaults(func=cmd_build)

    soak = sub.add_parser("soak", help="the soak report: one self-contained HTML file plus PNGs")
    soak.add_argument("run", help="run folder (reports/<run-id>) or run id")
    soak.add_argument("--out", help="folder to write into (default: the run folder)")
    soak.set_defaults(func=cmd_soak)

    cmp = sub.add_parser("compare", help="regressions against a baseline; exit status 1 when there are any")
    cmp.add_argument("run", help="run folder (reports/<run-id>) or run id")
    cmp.add_argument("--baseline", required=True, help="baseline name (reports/baselines/NAME) or run folder")
    cmp.add_argument("--tolerances", help="YAML file of per-metric tolerances (see docs/reports.md)")
    cmp.add_argument("--out", help="folder for compare.html and compare.md (default: the run folder)")
    cmp.set_defaults(func=cmd_compare)

    promote = sub.add_parser("promote", help="make a run the new baseline under reports/baselines/")
    promote.add_argument("run", help="run folder (reports/<run-id>) or run id")
    promote.add_argument("--name", help="baseline name (default: the run's rig name)")
    promote.add_argument("--force", action="store_true", help="promote even a run that did not finish")
    promote.set_defaults(func=cmd_promote)

    exp = sub.add_parser("export", help="the run's data as CSV and Parquet under RUN/export/")
    exp.add_argument("run", help="run folder (reports/<run-id>) or run id")
    exp.add_argument("--out", help="folder to write into (default: RUN/export)")
    exp.set_defaults(func=cmd_export)
    return report


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def cmd_build(ns: argparse.Namespace) -> int:
    from harness.report.build import build

    built = build(Path(ns.run))
    print("\n".join(built.lines()))
    return 0


def cmd_soak(ns: argparse.Namespace) -> int:
    from harness.report.soak import build_soak

    report = build_soak(Path(ns.run), Path(ns.out) if ns.out else None)
    print(f"soak report: {report.html}")
    print("verdict: PASS" if report.passed else "verdict: ATTENTION: " + "; ".join(report.problems))
    return 0


def cmd_compare(ns: argparse.Namespace) -> int:
    from harness.report.baseline import resolve_baseline
    from harness.report.compare import compare
    from harness.report.compare_render import html, markdown
    from harness.report.rundata import resolve_run
    from harness.report.tolerances import load_tolerances

    run = resolve_run(ns.run)
    if not run.is_dir():
        raise ConfigError(f"run folder {ns.run!r} not found; expected a folder such as reports/<run-id>")
    tolerances = load_tolerances(ns.tolerances)
    result = compare(run, resolve_baseline(ns.baseline, run), tolerances)
    out = Path(ns.out) if ns.out else run
    out.mkdir(parents=True, exist_ok=True)
    md = markdown(result)
    (out / "compare.md").write_text(md, encoding="utf-8")
    (out / "compare.html").write_text(html(result), encoding="utf-8")
    print(md)
    print(f"compare report: {out / 'compare.html'} (Markdown: {out / 'compare.md'})")
    return result.exit_status


def cmd_promote(ns: argparse.Namespace) -> int:
    from harness.report.baseline import promote

    target = promote(Path(ns.run), ns.name, force=ns.force)
    print(f"baseline {target.name!r} is now run {Path(ns.run).name} ({target})")
    return 0


def cmd_export(ns: argparse.Namespace) -> int:
    from harness.report.analysis import analyze
    from harness.report.export import export, parquet_available
    from harness.report.rundata import load_run

    written = export(analyze(load_run(Path(ns.run))), Path(ns.out) if ns.out else None)
    print(f"exported {len(written)} files to {written[0].parent}")
    if not parquet_available():
        print("note: pyarrow is not installed, so CSV only (pip install pyarrow for Parquet)")
    return 0
