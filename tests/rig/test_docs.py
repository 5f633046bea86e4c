"""docs/rigs.md's capability table is the code's: parsed and compared with CAPABILITY_RULES."""

from __future__ import annotations

from pathlib import Path

from harness.rig.spec import CAPABILITIES, CAPABILITY_RULES, RigSpec

DOC = Path(__file__).parents[2] / "docs" / "rigs.md"


def _capability_table() -> list[tuple[str, str]]:
    lines = DOC.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| capability |"))
    rows: list[tuple[str, str]] = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows.append((cells[0].strip("`"), cells[1]))
    return rows


def test_the_capability_table_of_the_docs_is_the_codes() -> None:
    assert _capability_table() == [(name, rule) for name, rule, _ in CAPABILITY_RULES]


def test_every_capability_the_code_knows_has_a_rule() -> None:
    assert [name for name, _ in _capability_table()] == list(CAPABILITIES)


def test_the_rules_decide_what_a_rig_offers() -> None:
    """The sentences of the table, rig by rig (so a rule's text cannot drift from its test)."""
    profile = {"name": "p", "prompt": "$ ", "boot_done": "x"}
    bench = {"name": "b", "console": {"url": "loop://"}}
    assert RigSpec.model_validate(bench).capabilities() == {"console"}
    assert RigSpec.model_validate({**bench, "power": {"resource": "TCPIP::psu::5025::SOCKET"}}).capabilities() == {
        "console", "power"}
    with_services = RigSpec.model_validate({**bench, "services": {}})
    assert with_services.capabilities() == {"console", "telemetry", "network", "ota"}  # twin-reference profile
    no_network = RigSpec.model_validate({**bench, "services": {"network": False}})
    assert no_network.capabilities() == {"console", "telemetry", "ota"}
    quiet = RigSpec.model_validate({**bench, "profile": profile, "services": {}})
    assert quiet.capabilities() == {"console"}  # no broker_setup: no telemetry, so no network or ota
