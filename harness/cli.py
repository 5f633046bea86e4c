"""The ``harness`` command: run suites on a rig, serve a twin, check rig files.

    harness run                       # the device suite (and scenarios) against the twin, with a report
    harness run --rig rigs/lab3.yaml  # the same suite against a bench
    harness twin serve                # a twin on a pty + SCPI supply, for manual use
    harness rig validate rigs/*.yaml  # check rig files without touching hardware
    harness rig check rigs/lab3.yaml  # open every part of a rig once and report each
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import ConfigError

if TYPE_CHECKING:
    from harness.rig.spec import RigSpec


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:2] == ["twin", "serve"]:  # the twin parses its own options
        from harness.twin.serve import main as twin_main

        return twin_main(args[2:])
    parser = _parser()
    ns = parser.parse_args(args)
    if not getattr(ns, "func", None):
        parser.print_help()
        return 2
    try:
        return int(ns.func(ns))
    except ConfigError as exc:
        print(f"harness: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="harness", description="IoT device test harness")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run the device suite and scenarios on a rig, then summarise the run")
    run.add_argument(
        "paths", nargs="*", help="tests or scenario files (default: tests/device and scenarios/ci)"
    )
    run.add_argument("--rig", default="twin", help="rig name or rig file (default: twin)")
    run.add_argument("--reports-dir", default="reports", help="where the run folder goes (default: reports)")
    run.add_argument("--run-id", help="name of the run folder (default: time-based)")
    run.add_argument("-n", "--workers", help="parallel rigs via pytest-xdist (e.g. 2 or auto)")
    run.add_argument("--scenario-duration", help="run soak scenarios this long (e.g. 2m); compresses their schedule")
    run.add_argument("--scenario-seed", help="replace every scenario's seed (replay a failed run)")
    run.add_argument("pytest_args", nargs=argparse.REMAINDER, help="after --: passed to pytest as they are")
    run.set_defaults(func=_cmd_run)

    twin = sub.add_parser("twin", help="the digital twin")
    twin_sub = twin.add_subparsers(dest="twin_command", metavar="SUBCOMMAND")
    twin_sub.add_parser("serve", help="start a twin: pty console + SCPI supply (see --help)")

    rig = sub.add_parser("rig", help="rig files")
    rig_sub = rig.add_subparsers(dest="rig_command", metavar="SUBCOMMAND")
    validate = rig_sub.add_parser("validate", help="check rig files; prints one line per file")
    validate.add_argument("files", nargs="+")
    validate.set_defaults(func=_cmd_rig_validate)
    show = rig_sub.add_parser("list", help="list the rigs --rig can name, each once, with where it comes from")
    show.set_defaults(func=_cmd_rig_list)
    check = rig_sub.add_parser("check", help="open every part of rigs (console, supply, broker) once; one line each")
    check.add_argument("rigs", nargs="+", metavar="RIG", help="rig names (rigs/NAME.yaml, built-in) or files")
    check.add_argument("--rig-lock-dir", help="the bench lock folder runs use (default: <tmp>/iot-harness-locks)")
    check.set_defaults(func=_cmd_rig_check)

    scenario = sub.add_parser("scenario", help="scenario files")
    scenario_sub = scenario.add_subparsers(dest="scenario_command", metavar="SUBCOMMAND")
    sc_validate = scenario_sub.add_parser("validate", help="check scenario files without running them")
    sc_validate.add_argument("files", nargs="+")
    sc_validate.add_argument("--rig", help="also check that this rig can do every step (name or file)")
    sc_validate.add_argument("--timeline", action="store_true", help="print each file's injection instants")
    sc_validate.set_defaults(func=_cmd_scenario_validate)

    from harness.ota.commands import add_ota_commands
    from harness.report.commands import add_report_commands

    add_report_commands(sub)
    add_ota_commands(sub)
    return parser


def _cmd_run(ns: argparse.Namespace) -> int:
    import pytest

    from harness.run.runfolder import pick_run_id

    run_id = pick_run_id(ns.run_id)
    paths = ns.paths or [p for p in ("tests/device", "scenarios/ci") if _has_tests(Path(p))]
    if not paths:
        raise ConfigError("nothing to run: no tests/device or scenarios/ here; name test paths to run")
    folder = Path(ns.reports_dir) / run_id
    args = [*paths, "--rig", ns.rig, "--reports-dir", ns.reports_dir, "--run-id", run_id,
            f"--junitxml={folder / 'junit.xml'}", "--build-reports", "-p", "no:cacheprovider"]
    if ns.workers:
        args += ["-n", str(ns.workers)]
    if ns.scenario_duration:
        args += ["--scenario-duration", ns.scenario_duration]
    if ns.scenario_seed:
        args += ["--scenario-seed", ns.scenario_seed]
    extra = [a for a in ns.pytest_args if a != "--"]
    status = pytest.main(args + extra)
    summary = folder / "summary.md"
    if summary.is_file():
        print()
        print(summary.read_text(encoding="utf-8"))  # the report's path is in pytest's summary, once
    return int(status)


def _has_tests(path: Path) -> bool:
    if not path.is_dir():
        return False
    return any(path.rglob("test_*.py")) or any(path.rglob("*.yaml"))


def _cmd_rig_validate(ns: argparse.Namespace) -> int:
    from harness.rig.loader import load_choice_file

    bad = 0
    for name in ns.files:
        try:
            choice = load_choice_file(Path(name), Path.cwd(), display=name)
        except ConfigError as exc:
            print(exc)
            bad += 1
            continue
        spec = choice.first.spec
        caps = ", ".join(sorted(spec.capabilities()))
        if choice.pool is not None:
            rigs = ", ".join(m.spec.name for m in choice.members)
            print(f"{name}: ok (pool {choice.pool!r} of {len(choice.members)} benches: {rigs}; capabilities {caps})")
            continue
        print(f"{name}: ok ({spec.kind} rig {spec.name!r}; capabilities {caps}){_absent_tty(spec)}")
    return 1 if bad else 0


def _absent_tty(spec: RigSpec) -> str:
    """A note when a bench's console is a device path this machine lacks (the file may be for another host)."""
    url = spec.console.url if spec.console is not None and spec.console.url else ""
    if not url or "://" in url or Path(url).exists():
        return ""
    return f"; note: console {url} does not exist on this machine (harness rig check opens every part)"


def _cmd_scenario_validate(ns: argparse.Namespace) -> int:
    from harness.scenario.loader import load_scenario
    from harness.scenario.timeline import build_timeline

    have = name = None
    if ns.rig:
        from harness.rig.loader import resolve_rig

        spec, _ = resolve_rig(ns.rig, Path.cwd())
        have, name = spec.capabilities(), spec.name
    bad = 0
    for path in ns.files:
        try:
            loaded = load_scenario(Path(path), display_name=path)
            if have is not None and name is not None:
                problem = loaded.rig_problem(have, name)
                if problem is not None:
                    raise problem
        except ConfigError as exc:
            print(exc)
            bad += 1
            continue
        sc = loaded.scenario
        timeline = build_timeline(sc)
        print(f"{path}: ok (scenario {sc.scenario!r}: {len(sc.steps)} steps, {len(sc.events)} events "
              f"-> {len(timeline)} injections, {len(sc.checks)} checks; seed {sc.seed})")
        if ns.timeline:
            for inj in timeline:
                print(f"  {inj.describe()}")
    return 1 if bad else 0


def _cmd_rig_list(ns: argparse.Namespace) -> int:
    from harness.rig.loader import list_rigs

    for entry in list_rigs(Path.cwd()):
        print(f"{entry.name}\t{entry.where}")
    return 0


def _cmd_rig_check(ns: argparse.Namespace) -> int:
    from harness.rig.check import check_rig
    from harness.rig.loader import resolve_choice

    lock_dir = Path(ns.rig_lock_dir) if ns.rig_lock_dir else None
    failed = 0
    for ref in ns.rigs:
        try:
            choice = resolve_choice(ref, Path.cwd())
        except ConfigError as exc:
            print(exc)
            failed += 1
            continue
        for member in choice.members:
            for part in check_rig(member.spec, member.source, lock_dir=lock_dir):
                print(part.line())
                failed += not part.ok
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
