"""``harness report build``: every report of a run folder, rebuilt from its journal and results.json.

One analysis feeds results.json (completed with metrics), the soak report, the data export and the
Markdown summary, so they agree with each other. Works on a run that was killed halfway.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.report.analysis import analyze
from harness.report.export import export
from harness.report.results import write_results
from harness.report.rundata import load_run
from harness.report.soak import SoakReport, build_soak
from harness.report.summary import summarize

SUMMARY_MD = "summary.md"


@dataclass
class Built:
    folder: Path
    complete: bool
    results: Path
    soak: SoakReport
    summary: Path
    exported: list[Path]
    state: str = "complete run"  # RunData.status_line(): complete, INTERRUPTED (how, when) or INCOMPLETE

    def lines(self) -> list[str]:
        """What was written, for the terminal: one line each."""
        state = self.state
        verdict = "PASS" if self.soak.passed else "ATTENTION: " + "; ".join(self.soak.problems)
        return [
            f"{self.folder}: {state}; {verdict}",
            f"results: {self.results}",
            f"soak report: {self.soak.html} (+{len(self.soak.pngs)} PNG)",
            f"summary: {self.summary}",
            f"export: {len(self.exported)} files in {self.exported[0].parent if self.exported else '-'}",
        ]


def build(folder: Path) -> Built:
    """Rebuild results.json, soak.html (+PNGs), summary.md and export/ in ``folder``."""
    a = analyze(load_run(folder))
    results = write_results(a)
    a.run.results = load_run(folder).results  # the completed results.json, for the summary and tables
    soak = build_soak(folder, analysis=a)
    summary = a.run.folder / SUMMARY_MD
    summary.write_text(summarize(a.run.folder), encoding="utf-8")
    return Built(a.run.folder, a.run.complete, results, soak, summary, export(a), a.run.status_line())
