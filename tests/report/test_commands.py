"""The ``harness report`` subcommands as a user runs them: output, files, exit status, one-line errors."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.report.commands import add_report_commands
from harness.run.journal import compress_journal
from tests.report.twinlog import Truth


def test_subcommands_mount_on_any_argparse_parser() -> None:
    parser = argparse.ArgumentParser(prog="harness")
    add_report_commands(parser.add_subparsers(dest="command"))
    ns = parser.parse_args(["report", "compare", "r", "--baseline", "b", "--tolerances", "t.yaml"])
    assert (ns.run, ns.baseline, ns.tolerances) == ("r", "b", "t.yaml")
    for name in ("build", "soak", "promote", "export"):
        assert callable(parser.parse_args(["report", name, "r"]).func)


def test_build_prints_where_everything_went(
    soak_run: tuple[Path, Truth], capsys: pytest.CaptureFixture[str]
) -> None:
    folder, _ = soak_run
    assert main(["report", "build", str(folder)]) == 0
    out = capsys.readouterr().out
    assert f"soak report: {folder / 'soak.html'}" in out
    assert "complete run; ATTENTION" in out


def test_soak_and_export_commands(
    soak_run: tuple[Path, Truth], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, _ = soak_run
    assert main(["report", "soak", str(folder), "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "soak.html").is_file()
    assert "verdict: ATTENTION" in capsys.readouterr().out
    assert main(["report", "export", str(folder), "--out", str(tmp_path / "data")]) == 0
    assert (tmp_path / "data" / "telemetry.parquet").is_file()
    assert "exported 18 files" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["build", "soak", "export", "promote"])
def test_missing_run_folder_is_one_line_and_exit_2(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", command, str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not found; expected a folder such as reports/<run-id>" in err


def test_corrupt_results_json_is_one_line(
    soak_run: tuple[Path, Truth], capsys: pytest.CaptureFixture[str]
) -> None:
    folder, _ = soak_run
    (folder / "results.json").write_text("[1, 2", encoding="utf-8")
    assert main(["report", "build", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "results.json: not valid JSON" in err


def test_missing_tolerance_file(soak_run: tuple[Path, Truth], capsys: pytest.CaptureFixture[str]) -> None:
    folder, _ = soak_run
    assert (
        main(["report", "compare", str(folder), "--baseline", str(folder), "--tolerances", "nope.yaml"]) == 2
    )
    assert "tolerance file 'nope.yaml' not found" in capsys.readouterr().err


def test_a_run_id_is_found_under_reports(
    soak_run: tuple[Path, Truth], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, _ = soak_run
    monkeypatch.chdir(folder.parent.parent)  # the folder holding reports/
    assert main(["report", "export", folder.name]) == 0
    assert (folder / "export" / "metrics.csv").is_file()
    assert main(["report", "compare", folder.name, "--baseline", folder.name]) == 0
    capsys.readouterr()


def _summary(folder: Path, capsys: pytest.CaptureFixture[str]) -> tuple[str, dict]:
    assert main(["report", "build", str(folder)]) == 0
    out = capsys.readouterr().out
    return out, json.loads((folder / "results.json").read_text(encoding="utf-8"))


def test_every_report_command_reads_a_gzipped_journal_as_the_plain_one(
    soak_run: tuple[Path, Truth], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, _ = soak_run
    plain_out, plain = _summary(folder, capsys)
    compress_journal(folder / "journal.jsonl")  # what a run does with its journal when it ends
    assert not (folder / "journal.jsonl").exists()
    gz_out, gzipped = _summary(folder, capsys)
    assert gzipped["metrics"] == plain["metrics"] and gz_out.splitlines()[1:] == plain_out.splitlines()[1:]
    assert gzipped["report"]["journals"] == ["journal.jsonl.gz"]
    assert main(["report", "soak", str(folder), "--out", str(tmp_path / "soak")]) == 0
    assert main(["report", "export", str(folder), "--out", str(tmp_path / "data")]) == 0
    assert main(["report", "promote", str(folder), "--name", "gz"]) == 0
    assert (folder.parent / "baselines" / "gz" / "journal.jsonl.gz").is_file()
    assert main(["report", "compare", str(folder), "--baseline", "gz"]) == 0


def test_a_torn_gzipped_journal_still_builds_an_incomplete_report(
    killed_run: tuple[Path, Truth], capsys: pytest.CaptureFixture[str]
) -> None:
    folder, _ = killed_run
    whole = compress_journal(folder / "journal.jsonl")
    data = whole.read_bytes()
    whole.write_bytes(data[: len(data) * 3 // 4])  # the kill came while the stream was being written
    out, results = _summary(folder, capsys)
    assert "INCOMPLETE" in out.upper() and results["complete"] is False
    assert results["metrics"]["telemetry.received"] > 0
