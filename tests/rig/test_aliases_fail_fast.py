"""A recursive alias or an alias bomb in a rig or scenario file is one line, at once, wherever the file
is read: ``harness rig validate``, ``harness scenario validate``, ``--rig`` and pytest collection.

Each run is a bounded subprocess: on a loader that expands aliases these hang (or end in a
RecursionError traceback), so the bound is what makes the test fail instead of hanging the suite.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

BOUND = 60.0  # the subprocess is killed after this
FAST = 10.0  # generous for a shared machine; the work itself takes milliseconds

BOMB = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"{chr(97 + i)}: &{chr(97 + i)} [" + ",".join([f"*{chr(96 + i)}"] * 9) + "]" for i in range(1, 9)]
) + "\n"
RECURSIVE = "x: &a [*a]\n"
FILES = {
    "rig": {"recursive": "name: r\n" + RECURSIVE, "bomb": "name: r\n" + BOMB},
    "scenario": {"recursive": "scenario: s\n" + RECURSIVE, "bomb": "scenario: s\n" + BOMB},
}
MESSAGES = {
    "recursive": "x.yaml:2:8: alias '*a' refers to the node it is inside (anchor '&a' at line 2)",
    "bomb": "x.yaml:7:8: alias '*e' (anchor '&e' at line 6) expands the file past 100000 nodes",
}


def _run(args: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    try:
        done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=BOUND)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{' '.join(args[-3:])} did not finish within {BOUND:g}s (aliases expanded?)")
    return done, time.monotonic() - started


@pytest.mark.parametrize("kind", ["recursive", "bomb"])
@pytest.mark.parametrize("what", ["rig", "scenario"])
def test_validate_refuses_at_once_in_one_line(tmp_path: Path, what: str, kind: str) -> None:
    (tmp_path / "x.yaml").write_text(FILES[what][kind])
    done, took = _run([sys.executable, "-m", "harness", what, "validate", "x.yaml"], tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.startswith(MESSAGES[kind]), done.stdout
    assert done.stdout.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert took < FAST, f"took {took:.1f}s"


@pytest.mark.parametrize("kind", ["recursive", "bomb"])
def test_rig_option_refuses_at_once(pytester: pytest.Pytester, kind: str) -> None:
    (pytester.path / "x.yaml").write_text(FILES["rig"][kind])
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    started = time.monotonic()
    result = pytester.runpytest_subprocess("--rig", "x.yaml", "-p", "no:cacheprovider", timeout=BOUND)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {MESSAGES[kind]}*"])
    assert "Traceback" not in result.stderr.str()
    assert time.monotonic() - started < FAST


@pytest.mark.parametrize("kind", ["recursive", "bomb"])
def test_collection_makes_the_file_a_failing_item_at_once(pytester: pytest.Pytester, kind: str) -> None:
    (pytester.path / "scenarios").mkdir()
    (pytester.path / "scenarios" / "x.yaml").write_text(FILES["scenario"][kind])
    started = time.monotonic()
    result = pytester.runpytest_subprocess("scenarios", "-p", "no:cacheprovider", timeout=BOUND)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*invalid scenario file: scenarios/{MESSAGES[kind]}*"])
    assert "RecursionError" not in result.stdout.str()
    assert time.monotonic() - started < FAST
