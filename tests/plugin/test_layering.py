"""The plugin is the top layer: nothing below it imports it, and rig code imports neither the plugin
nor the scenario items (docs: imports point down only). Checked on the source, lazy imports included."""

from __future__ import annotations

import ast
from pathlib import Path

import harness

ROOT = Path(harness.__file__).parent
ABOVE = {
    "rig": ("harness.plugin", "harness.cli", "harness.scenario"),
    "scenario": ("harness.plugin", "harness.cli"),
    "session.py": ("harness.plugin", "harness.cli"),
}


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def test_nothing_below_the_plugin_imports_a_layer_above_it() -> None:
    offenders = {}
    for part, above in ABOVE.items():
        files = [ROOT / part] if part.endswith(".py") else sorted((ROOT / part).rglob("*.py"))
        for path in files:
            bad = [name for name in _imports(path) if name.startswith(above)]
            if bad:
                offenders[str(path.relative_to(ROOT))] = bad
    assert offenders == {}


def test_only_the_plugin_imports_the_plugin() -> None:
    outside = [p for p in sorted(ROOT.rglob("*.py")) if ROOT / "plugin" not in p.parents]
    offenders = {str(p.relative_to(ROOT)): n for p in outside if (n := [m for m in _imports(p) if m.startswith("harness.plugin")])}
    assert offenders == {}
