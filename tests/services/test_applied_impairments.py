"""Only an impairment that was applied explains a lost message: loss on a TCP path drops nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.drivers.netem import ImpairmentPoint
from harness.run.journal import Journal, read_journal
from harness.services.accounting import AccountingConfig, account
from tests.services.test_accounting import T0, seqs


def _changes(tmp_path: Path, kind: str, *changes: dict[str, Any]) -> list[dict[str, Any]]:
    """The injection records a real impairment point journals for ``changes`` on one ``kind`` service."""
    journal = Journal(tmp_path / "journal.jsonl")
    try:
        with ImpairmentPoint(journal, seed=1, stats_interval=None) as point:
            add = point.add_tcp if kind == "tcp" else point.add_udp
            add(("127.0.0.1", 9), name="mqtt")  # nothing need listen upstream: no traffic is sent
            for change in changes:
                point.apply(**change)
    finally:
        journal.close()
    return [r for r in read_journal(journal.path) if r["kind"] == "injection"]


def _gap_cause(injections: list[dict[str, Any]]) -> str:
    """The cause given to seqs 5-7 missing while the impairment was in force (from T0 + 5)."""
    for rec, t in zip(injections, (T0 + 4.5, T0 + 4.8), strict=False):
        rec["t"] = t
    acc = account([*seqs((1, 4), (8, 10)), *injections], AccountingConfig(network_grace=0.0))
    causes = {g.cause for g in acc.gaps()}
    assert len(causes) == 1, causes
    return causes.pop()


def test_loss_on_a_tcp_path_is_not_applied_and_explains_nothing(tmp_path: Path) -> None:
    injections = _changes(tmp_path, "tcp", {"loss": "30%"})
    assert injections[0]["not_applied"] == {"mqtt": ["loss"]}
    assert _gap_cause(injections) == "unexplained"


def test_loss_on_a_udp_path_explains_the_gap(tmp_path: Path) -> None:
    injections = _changes(tmp_path, "udp", {"loss": "30%"})
    assert injections[0]["not_applied"] == {}
    assert _gap_cause(injections) == "network"


def test_a_later_apply_keeps_the_loss_in_force(tmp_path: Path) -> None:
    """apply merges: loss then delay still loses datagrams, so the window stays open."""
    injections = _changes(tmp_path, "udp", {"loss": "30%"}, {"delay": "10ms"})
    assert _gap_cause(injections) == "network"


def test_delay_alone_loses_nothing(tmp_path: Path) -> None:
    assert _gap_cause(_changes(tmp_path, "tcp", {"delay": "50ms", "loss": "5%"})) == "unexplained"
    assert _gap_cause(_changes(tmp_path / "udp", "udp", {"delay": "50ms"})) == "unexplained"
