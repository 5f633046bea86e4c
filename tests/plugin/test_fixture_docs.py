"""docs/plugin.md lists every fixture the plugin registers, with the right scope, and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "plugin.md"
HEADER = " fixtures defined from harness.plugin.fixtures "  # every fixture of the plugin is in that module


def _documented() -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Fixtures", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| (\w+)", section, re.M)
    assert rows, f"{DOC}: no fixture table in the Fixtures section"
    return {name: "function" if scope == "test" else scope for name, scope in rows}


def _registered(pytester: pytest.Pytester) -> dict[str, str]:
    """What ``pytest --fixtures`` says the plugin registers (the view a user gets), name -> scope."""
    result = pytester.runpytest_subprocess("--fixtures", "-p", "no:cacheprovider")
    text = result.stdout.str()
    assert HEADER in text, text[-2000:]
    section = text.split(HEADER, 1)[1].split("\n---", 1)[0]
    return {name: scope or "function" for name, scope in re.findall(r"^(\w+)(?: \[(\w+) scope\])? -- ", section, re.M)}


def test_the_fixtures_section_lists_every_fixture_of_the_plugin(pytester: pytest.Pytester) -> None:
    registered, documented = _registered(pytester), _documented()
    assert registered, "found no fixture of harness.plugin: is the plugin loaded?"
    missing = sorted(set(registered) - set(documented))
    stale = sorted(set(documented) - set(registered))
    assert not missing, f"{DOC.name}: fixtures registered but not documented: {missing}"
    assert not stale, f"{DOC.name}: fixtures documented but not registered: {stale}"
    assert documented == registered, f"{DOC.name}: scopes differ: documented {documented}, registered {registered}"
