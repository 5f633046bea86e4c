"""What the Dut journals for the reports: its profile's boot patterns, and a ``reset`` record before the
reboot it asks for, so the boot that follows is a requested software reboot, never unexpected."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from harness.report.analysis import analyze
from harness.report.rundata import RunData
from harness.rig.dut import Dut
from harness.rig.profile import get_profile
from harness.run.journal import Journal, read_run


class ScriptedConsole:
    """A console whose device answers the reboot command with the twin's boot lines, journaled as the
    real console journals them (``console`` records with the device's name as source)."""

    def __init__(self, journal: Journal, name: str) -> None:
        self.journal, self.name = journal, name
        self.pending: list[str] = []
        self.lines: list[str] = []

    def mark(self) -> int:
        return len(self.lines)

    def lines_since(self, mark: int) -> list[str]:
        return self.lines[mark:]

    def sendline(self, text: str = "") -> None:
        self.journal.record("console", source=self.name, line=f"twin> {text}")
        if text == "reboot":
            self.pending += ["rebooting", "BOOT slot=A fw=1.2.3 boot_count=2 reset_cause=software", "BOOT-DONE"]

    def expect(self, pattern: Any, timeout: float = 10.0) -> re.Match[str]:
        regex = pattern if isinstance(pattern, re.Pattern) else re.compile(re.escape(pattern))
        if regex.pattern == re.escape("twin> "):
            return re.match("twin> ", "twin> ")  # type: ignore[return-value]
        while self.pending:
            line = self.pending.pop(0)
            self.lines.append(line)
            self.journal.record("console", source=self.name, line=line)
            m = regex.search(line)
            if m:
                return m
        raise AssertionError(f"the scripted device never printed {regex.pattern!r}")


def test_dut_reboot_is_a_requested_software_reboot(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.jsonl", run_id="r")
    con = ScriptedConsole(journal, "twin-1")
    dut = Dut(con, None, get_profile("twin-reference"), journal=journal, name="twin-1")  # type: ignore[arg-type]
    boot = dut.reboot()
    journal.close()
    records = read_run(tmp_path)
    kinds = [r["kind"] for r in records]
    assert kinds.index("reset") < kinds.index("boot")
    a = analyze(RunData(tmp_path, records))
    [b] = a.reboots
    assert (b.cause, b.expected, b.reset_cause, b.version) == ("software reboot", True, "software", "1.2.3")
    assert b.seconds == round(boot.seconds, 6)
    assert a.figures["reboots.unexpected"] == 0
