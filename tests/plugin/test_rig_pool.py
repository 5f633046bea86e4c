"""Rig pools and bench claims as a user sees them: pytest-xdist workers each get their own board, a
busy bench makes a worker wait (or fail with who holds it), and bad pool files give one line.

The benches' consoles are real pseudo-terminals made by the test (a tty is what a board's USB serial
adapter is), so the claims lock real device paths; nothing answers on them, so rig health is off.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.rig.claim import resource_keys, try_claim
from harness.rig.spec import RigSpec
from harness.run.journal import read_run

PROFILE = """\
profile:
  name: quiet
  prompt: "$ "
  boot_done: "^READY"
"""

USES_RIG = """\
import pytest

@pytest.mark.parametrize("n", range({n}))
def test_uses_the_rig(rig, n):
    assert rig.console_url
"""


@pytest.fixture
def ttys() -> Iterator[list[str]]:
    """Three pseudo-terminals, open for the test's length (the slave side is what a rig names)."""
    pairs = [os.openpty() for _ in range(3)]
    try:
        yield [os.ttyname(slave) for _, slave in pairs]
    finally:
        for master, slave in pairs:
            os.close(master)
            os.close(slave)


def _bench(pytester: pytest.Pytester, name: str, tty: str) -> None:
    (pytester.path / "pytest.ini").write_text("[pytest]\n")  # the project root: where rigs/ is
    (pytester.path / "rigs").mkdir(exist_ok=True)
    (pytester.path / "rigs" / f"{name}.yaml").write_text(f"name: {name}\nconsole:\n  url: {tty}\n{PROFILE}")


def _journals(folder: Path) -> list[dict]:
    return read_run(folder)


def _run(pytester: pytest.Pytester, tmp_path: Path, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        # "--opt=value": pytest takes an existing path given as a separate argument for a test path
        f"--rig-lock-dir={tmp_path / 'locks'}", f"--reports-dir={tmp_path / 'reports'}", "--run-id", "r",
        "--no-rig-health", "-p", "no:cacheprovider", *args,
    )  # fmt: skip


def test_each_worker_claims_its_own_bench_of_the_pool(pytester, tmp_path, ttys) -> None:
    _bench(pytester, "bench-a", ttys[0])
    _bench(pytester, "bench-b", ttys[1])
    (pytester.path / "rigs" / "lab.yaml").write_text("pool: lab\nrigs: [bench-a, bench-b]\n")
    pytester.makepyfile(test_pool=USES_RIG.format(n=6))
    result = _run(pytester, tmp_path, "--rig", "lab", "-n", "2")
    result.assert_outcomes(passed=6)
    records = _journals(tmp_path / "reports" / "r")
    claimed = {r["worker"]: r["rig"] for r in records if r["kind"] == "rig" and r["action"] == "claimed"}
    assert sorted(claimed) == ["gw0", "gw1"] and sorted(claimed.values()) == ["bench-a", "bench-b"], claimed
    opened = {r["worker"]: r["console"] for r in records if r["kind"] == "rig" and r["action"] == "open"}
    assert sorted(opened.values()) == sorted(ttys[:2])
    released = [r for r in records if r["kind"] == "rig" and r["action"] == "released"]
    assert len(released) == 2
    starts = [r for r in records if r["kind"] == "run" and r["action"] == "start"]
    assert {r["rig"] for r in starts} == {"lab"}


def test_two_workers_on_one_bench_take_turns(pytester, tmp_path, ttys) -> None:
    _bench(pytester, "bench-a", ttys[0])
    pytester.makepyfile(test_one=USES_RIG.format(n=4))
    result = _run(pytester, tmp_path, "--rig", "bench-a", "-n", "2")
    result.assert_outcomes(passed=4)
    records = _journals(tmp_path / "reports" / "r")
    spans = {}
    for r in records:
        if r["kind"] == "rig" and r["action"] in ("claimed", "released"):
            spans.setdefault(r["worker"], {})[r["action"]] = r["t"]
    if len(spans) == 2:  # both workers used the board: one after the other, never together
        (a, b) = sorted(spans.values(), key=lambda s: s["claimed"])
        assert a["released"] <= b["claimed"], spans
        waited = [r for r in records if r["kind"] == "rig" and r["action"] == "claimed" and r["waited"] > 0]
        if waited:  # the second one asked while the first held it (not after): its wait was journaled
            assert any(r["kind"] == "rig" and r["action"] == "waiting" for r in records)


def test_a_bench_held_elsewhere_fails_the_tests_with_who_holds_it(pytester, tmp_path, ttys) -> None:
    _bench(pytester, "bench-a", ttys[0])
    spec = RigSpec.model_validate({"name": "bench-a", "console": {"url": ttys[0]}})
    held = try_claim(spec, resource_keys(spec), tmp_path / "locks", {"worker": "gw7", "run_id": "nightly-42", "rig": "bench-a"})
    assert held is not None
    try:
        pytester.makepyfile(test_one=USES_RIG.format(n=2))
        result = _run(pytester, tmp_path, "--rig", "bench-a", "--rig-claim-timeout", "300ms")
    finally:
        held.release()
    result.assert_outcomes(errors=2)  # the rig fixture fails: every test that needs the bench errors at once
    result.stdout.fnmatch_lines([
        "*rig is out of service: rig 'bench-a': no rig free after waiting 0.3s: bench-a held by worker gw7 of "
        f"run nightly-42 (pid {os.getpid()} on *, since *) (lock folder *; raise --rig-claim-timeout, or run no "
        "more workers than rigs)",
    ])
    assert "Traceback" not in result.stdout.str() and "another exception occurred" not in result.stdout.str()


@pytest.mark.parametrize(
    ("pool", "expected"),
    [
        ("pool: lab\nrigs: [bench-a, bench-z]\n",
         "rigs/lab.yaml:2:17: rigs[1]: no rig named 'bench-z'; available in rigs/: bench-a, bench-b, bench-c, lab, twin-ish (or a path to a rig file)"),
        ("pool: lab\nrigs: [bench-a, twin-ish]\n",
         "rigs/lab.yaml:2:17: rigs[1]: 'twin-ish' is a twin rig; every worker already gets its own twin, a pool is for benches"),
        ("pool: lab\nrigs: [bench-a, bench-c]\n",
         "rigs/lab.yaml:2:17: rigs[1]: 'bench-c' offers console, power but 'bench-a' offers console; every rig of a pool must offer the same"),
        ("pool: lab\nrigs: [bench-a, bench-a]\n",
         "rigs/lab.yaml:2:17: rigs[1]: 'bench-a' is listed twice (also rigs[0])"),
        ("pool: lab\nrigs: []\n", "rigs/lab.yaml:2:7: rigs: expected at least one rig, got an empty list"),
        ("pool: lab\nrigs: [bench-a]\nclaim_timeout: soon\n",
         "rigs/lab.yaml:3:16: claim_timeout: expected a duration such as '300ms'*got 'soon'"),
        ("pool: lab\nrig: [bench-a]\n", "rigs/lab.yaml:2:1: rig: unknown field 'rig'; did you mean 'rigs'?"),
    ],
)
def test_a_bad_pool_file_gives_one_line(pytester, ttys, pool, expected) -> None:
    _bench(pytester, "bench-a", ttys[0])
    _bench(pytester, "bench-b", ttys[1])
    (pytester.path / "rigs" / "bench-c.yaml").write_text(
        f"name: bench-c\nconsole:\n  url: {ttys[2]}\npower:\n  resource: TCPIP::127.0.0.1::5025::SOCKET\n{PROFILE}")
    (pytester.path / "rigs" / "twin-ish.yaml").write_text("name: twin-ish\ntwin: {}\n" + PROFILE)
    (pytester.path / "rigs" / "lab.yaml").write_text(pool)
    result = pytester.runpytest("--rig", "lab", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {expected}"])
    assert "Traceback" not in result.stderr.str()


def test_rig_validate_names_the_pool_and_its_benches(pytester, ttys, capsys) -> None:
    from harness.cli import main

    _bench(pytester, "bench-a", ttys[0])
    _bench(pytester, "bench-b", ttys[1])
    (pytester.path / "rigs" / "lab.yaml").write_text("pool: lab\nrigs: [bench-a, rigs/bench-b.yaml]\n")
    os.chdir(pytester.path)
    assert main(["rig", "validate", "rigs/lab.yaml", "rigs/bench-a.yaml"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["rigs/lab.yaml: ok (pool 'lab' of 2 benches: bench-a, bench-b; capabilities console)",
                   "rigs/bench-a.yaml: ok (board rig 'bench-a'; capabilities console)"]
