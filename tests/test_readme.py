"""Every command in the README's ``sh`` code blocks, run or parsed, so the README cannot drift from the code.

Each command line of README.md (comments stripped, ``&&`` chains split) must match exactly one entry
of :data:`CHECKS`; a new command with no check fails :func:`test_every_readme_command_has_a_check`.
Commands run through ``bash -c`` in a temporary copy of the project, with the venv's ``bin/`` first on
``PATH`` (as after ``. .venv/bin/activate``), so the text that runs is the README's own. What a check
may add is visible in :data:`CHECKS`: flags **appended** to the command (``--collect-only -q`` where
the real run takes minutes; ``-- -k <one test>`` for ``harness run``), and ``<run>`` filled in with
the run folder the README's ``harness run`` made. The two set-up commands (venv, pip install) are
checked for shape: the ``dev`` extra exists, and ``.ci/run`` runs the README's test command verbatim.

The baseline loop is real: ``harness run`` (one device test on the twin) -> ``harness report promote``
-> a regressed copy of that run (its journal rewritten: boots ten times slower) compared with
``harness report compare``: exit 1 naming the regression; the run against its own baseline: exit 0.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.report.browser import find_chromium, inspect_page

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
VENV_BIN = Path(sys.executable).parent  # the venv this suite runs in: what `.venv/bin/` names
RUN_TIMEOUT = 300.0  # one device test on a twin, on a loaded 2-core machine
COLLECT_TIMEOUT = 180.0
FIRST_RUN = "readme-first"  # the run id the README's `harness run` is given here
ONE_TEST = "test_boots_to_prompt_and_reports_its_version"
COLLECT = " --collect-only -q"
MAX_RUN_FOLDER = 20_000_000  # bytes: the README main job's run folder (issue 15)


@dataclass(frozen=True)
class Command:
    line: int  # README.md line number
    text: str  # the command as the README has it (no comment)

    def __str__(self) -> str:
        return f"README.md:{self.line}: {self.text}"


def readme_commands(text: str | None = None) -> list[Command]:
    """Every command of every ```sh block: one per line, comments dropped, ``a && b`` as two."""
    lines = (README.read_text(encoding="utf-8") if text is None else text).splitlines()
    commands: list[Command] = []
    inside = False
    for number, line in enumerate(lines, start=1):
        fence = line.strip()
        if fence.startswith("```"):
            inside = not inside and fence == "```sh"
            continue
        if not inside:
            continue
        code = _strip_comment(line).strip()
        if not code:
            continue
        commands.extend(Command(number, part.strip()) for part in code.split(" && "))
    return commands


def _strip_comment(line: str) -> str:
    """The line up to a `` #`` comment outside quotes, as the shell reads it."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


# ---------------------------------------------------------------------------------------------- the project copy


@dataclass
class Project:
    path: Path
    env: dict[str, str]

    def sh(self, command: str, *, timeout: float) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(["bash", "-c", command], cwd=self.path, env=self.env, capture_output=True,
                                  text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False)  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout or ""
            text = out.decode(errors="replace") if isinstance(out, bytes) else out
            pytest.fail(f"`{command}` still running after {timeout:g}s; last output: {text[-2000:]!r}")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """A copy of the project (no venv, no git, no runs) with the README's example bench rigs written in:
    ``rigs/lab3.yaml`` and the pool ``rigs/lab.yaml`` of ``lab3-a``/``lab3-b``, each console a real pty."""
    root = tmp_path_factory.mktemp("readme") / "project"
    skip = shutil.ignore_patterns(".venv", ".git", ".hypothesis", ".ruff_cache", ".pytest_cache", "__pycache__",
                                  "*.egg-info", "reports")  # fmt: skip
    shutil.copytree(ROOT, root, ignore=skip)
    (root / "reports").mkdir()
    ptys = [os.openpty() for _ in range(3)]
    try:
        for name, (_, follower) in zip(("lab3", "lab3-a", "lab3-b"), ptys, strict=True):
            (root / "rigs" / f"{name}.yaml").write_text(
                f"name: {name}\nconsole:\n  url: {os.ttyname(follower)}\nprofile: twin-reference\n", encoding="utf-8"
            )
        (root / "rigs" / "lab.yaml").write_text("pool: lab\nrigs: [lab3-a, lab3-b]\n", encoding="utf-8")
        env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        for name in ("PYTEST_XDIST_WORKER", "PYTEST_ADDOPTS", "HARNESS_RUN_ID"):  # the outer run's, not theirs
            env.pop(name, None)
        yield Project(root, env)
    finally:
        for leader, follower in ptys:
            os.close(leader)
            os.close(follower)


@pytest.fixture(scope="module")
def first_run(project: Project) -> Path:
    """The README's ``harness run``, with one device test selected: a real run folder on the twin."""
    (command,) = [c for c in readme_commands() if c.text == ".venv/bin/harness run"]
    done = project.sh(f"{_venv(command.text)} --run-id {FIRST_RUN} -- -k {ONE_TEST}", timeout=RUN_TIMEOUT)
    assert done.returncode == 0, f"{command}: exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}"
    folder = project.path / "reports" / FIRST_RUN
    assert f"harness: report {folder / 'soak.html'}" in done.stdout, done.stdout[-2000:]  # its path, once
    assert done.stdout.count("soak.html") == 1, done.stdout[-2000:]
    return folder


def _venv(text: str) -> str:
    """``.venv/bin/X`` of the README is the venv this suite runs in (the copy has no ``.venv`` of its own)."""
    return text.replace(".venv/bin/", f"{VENV_BIN}/", 1) if text.startswith(".venv/bin/") else text


def _fill(text: str) -> str:
    return text.replace("<run>", FIRST_RUN)


# ---------------------------------------------------------------------------------------------- the checks


def check_venv(command: Command, project: Project) -> None:
    assert command.text == "python3 -m venv .venv", command


def check_pip_install(command: Command, project: Project) -> None:
    assert command.text == ".venv/bin/pip install -e '.[dev]'", command
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    assert "dev" in extras, "README installs the 'dev' extra, pyproject.toml has none"


def check_main_job(command: Command, project: Project, first_run: Path) -> None:
    """The real run (one test selected): it wrote the report files the README lists, journal compressed."""
    names = {p.name for p in first_run.iterdir()}
    for expected in ("soak.html", "summary.md", "results.json", "junit.xml", "journal.jsonl.gz", "export"):
        assert expected in names, f"{command}: no {expected} in {first_run} ({sorted(names)})"
    results = json.loads((first_run / "results.json").read_text(encoding="utf-8"))
    assert results["counts"] == {"passed": 1}, results["counts"]
    size = sum(p.stat().st_size for p in first_run.rglob("*") if p.is_file())
    assert size <= MAX_RUN_FOLDER, f"{command}: the run folder is {size / 1e6:.1f} MB (at most 20 MB)"
    if find_chromium() is not None:  # CI installs it; the page must read in a browser as written
        check = inspect_page(first_run / "soak.html", width=1280, height=800)
        assert check.problems() == [], f"{command}: soak.html in a browser: {check.problems()}"
        assert check.verdict is not None and check.verdict["state"] == "PASS", check.verdict


def check_ci_runs_it(command: Command, project: Project) -> None:
    """The README's test command is what CI runs, verbatim; here it must at least collect."""
    (line,) = [c.line for c in readme_commands() if c.text == command.text]
    full = README.read_text(encoding="utf-8").splitlines()[line - 1].strip()
    assert full in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines(), (
        f".ci/run does not run the README's test command verbatim: {full}"
    )
    collect(command, project)


def collect(command: Command, project: Project) -> None:
    """pytest with ``--collect-only -q`` appended: the paths, options and rigs the README names exist."""
    done = project.sh(_venv(command.text) + COLLECT, timeout=COLLECT_TIMEOUT)
    assert done.returncode == 0, f"{command}{COLLECT}: exit {done.returncode}\n{done.stdout[-3000:]}{done.stderr[-2000:]}"
    assert re.search(r"\d+ tests? collected", done.stdout), done.stdout[-2000:]


def run_ok(command: Command, project: Project) -> None:
    done = project.sh(command.text, timeout=COLLECT_TIMEOUT)
    assert done.returncode == 0, f"{command}: exit {done.returncode}\n{done.stdout[-3000:]}{done.stderr[-2000:]}"
    assert done.stdout.strip(), f"{command}: printed nothing"


def check_promote(command: Command, project: Project, first_run: Path) -> None:
    done = project.sh(_fill(command.text), timeout=COLLECT_TIMEOUT)
    assert done.returncode == 0, f"{command}: exit {done.returncode}\n{done.stdout}{done.stderr}"
    baseline = project.path / "reports" / "baselines" / "twin"
    info = json.loads((baseline / "baseline.json").read_text(encoding="utf-8"))
    assert info["run_id"] == FIRST_RUN and (baseline / "journal.jsonl.gz").is_file(), sorted(baseline.iterdir())


def check_compare(command: Command, project: Project, first_run: Path) -> None:
    """The whole loop: no baseline yet -> one line saying how to make one; promote; a regressed run -> exit 1."""
    shutil.rmtree(project.path / "reports" / "baselines", ignore_errors=True)
    missing = project.sh(_fill(command.text), timeout=COLLECT_TIMEOUT)
    assert missing.returncode == 2 and "harness report promote" in missing.stderr, missing.stderr
    (promote,) = [c for c in readme_commands() if c.text.startswith("harness report promote ")]
    check_promote(promote, project, first_run)
    same = project.sh(_fill(command.text), timeout=COLLECT_TIMEOUT)
    assert same.returncode == 0, f"{command} against its own baseline: exit {same.returncode}\n{same.stdout}"
    regressed = _regressed_copy(first_run, "readme-slow-boots")
    slow = project.sh(command.text.replace("<run>", regressed.name), timeout=COLLECT_TIMEOUT)
    assert slow.returncode == 1, f"{command} on a run with 10x slower boots: exit {slow.returncode}\n{slow.stdout}"
    assert "boot.time.p50" in slow.stdout and "REGRESSION" in slow.stdout, slow.stdout


def _regressed_copy(run: Path, name: str) -> Path:
    """A copy of ``run`` whose journal says every boot took ten times as long (the rest as recorded)."""
    target = run.parent / name
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir()
    shutil.copy2(run / "results.json", target / "results.json")
    with gzip.open(run / "journal.jsonl.gz", "rt", encoding="utf-8") as src, \
            gzip.open(target / "journal.jsonl.gz", "wt", encoding="utf-8") as dst:  # fmt: skip
        boots = 0
        for line in src:
            record = json.loads(line)
            if record.get("kind") == "boot" and isinstance(record.get("seconds"), int | float):
                record["seconds"] *= 10
                boots += 1
            dst.write(json.dumps(record) + "\n")
    assert boots, f"the run {run} journaled no boot to slow down"
    results = json.loads((target / "results.json").read_text(encoding="utf-8"))
    results.pop("metrics", None)  # recomputed from the journal, as compare does for any run
    (target / "results.json").write_text(json.dumps(results), encoding="utf-8")
    return target


def check_twin_serve(command: Command, project: Project) -> None:
    """Starts, prints its ready line (pty and SCPI port), stops on SIGTERM with exit 0."""
    proc = subprocess.Popen(["bash", "-c", f"exec {command.text}"], cwd=project.path, env=project.env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)  # fmt: skip
    try:
        assert proc.stdout is not None
        line = _read_line(proc, timeout=60.0)
        ready = json.loads(line)
        assert ready["event"] == "ready" and ready["console"].startswith("/dev/") and ready["scpi_port"] > 0, ready
        proc.send_signal(signal.SIGTERM)
        try:
            status = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{command}: still running 20s after SIGTERM (ready line was {line.strip()})")
        assert status == 0, f"{command}: exit {status} after SIGTERM"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    import selectors

    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            pytest.fail(f"harness twin serve printed no ready line within {timeout:g}s (exit {proc.poll()})")
    return proc.stdout.readline()


Check = Callable[..., None]
#: README command -> how it is checked. Anything appended to a command is written here, in the open.
CHECKS: list[tuple[str, Check]] = [
    (r"python3 -m venv \.venv", check_venv),
    (r"\.venv/bin/pip install .*", check_pip_install),
    (r"\.venv/bin/harness run", check_main_job),  # + --run-id readme-first -- -k <ONE_TEST>
    (r"\.venv/bin/python -m pytest .*", check_ci_runs_it),  # + --collect-only -q
    (r"pytest .*", collect),  # + --collect-only -q
    (r"harness scenario validate .*", run_ok),
    (r"harness rig validate .*", run_ok),
    (r"harness report promote reports/<run> .*", check_promote),  # <run>: the run made above
    (r"harness report compare reports/<run> .*", check_compare),  # <run>: the run made above, and a regressed copy
    (r"harness twin serve", check_twin_serve),  # then SIGTERM
]
NEEDS_RUN = {check_main_job, check_promote, check_compare}


def _check_for(command: Command) -> list[Check]:
    return [check for pattern, check in CHECKS if re.fullmatch(pattern, command.text)]


def test_the_readme_parser_reads_blocks_comments_and_chains() -> None:
    text = "x\n```sh\na && b   # two\n\nc 'd # e'  # f\n```\n```console\nnot-me\n```\n"
    assert [(c.line, c.text) for c in readme_commands(text)] == [(3, "a"), (3, "b"), (5, "c 'd # e'")]


def test_every_readme_command_has_a_check() -> None:
    commands = readme_commands()
    assert len(commands) >= 15, commands  # the README's blocks were found at all
    unchecked = [str(c) for c in commands if len(_check_for(c)) != 1]
    assert not unchecked, "README commands with no (or more than one) check in tests/test_readme.py:\n" + "\n".join(
        unchecked
    )


@pytest.mark.parametrize("command", readme_commands(), ids=lambda c: f"L{c.line}:{c.text[:60]}")
def test_readme_command(command: Command, project: Project, request: pytest.FixtureRequest) -> None:
    (check,) = _check_for(command) or [None]
    if check is None:
        pytest.fail(f"{command}: no check (see test_every_readme_command_has_a_check)")
    if check in NEEDS_RUN:
        check(command, project, request.getfixturevalue("first_run"))
    else:
        check(command, project)
