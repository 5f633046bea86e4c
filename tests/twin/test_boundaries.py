"""harness.twin is the device: it imports nothing from the harness side, and exports a small API."""

from __future__ import annotations

import ast
from pathlib import Path

import harness.twin

PACKAGE = Path(harness.twin.__file__).parent


def harness_imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return [n for n in names if n == "harness" or (n.startswith("harness.") and not n.startswith("harness.twin"))]


def test_twin_imports_nothing_from_the_harness_side() -> None:
    offenders = {p.name: harness_imports(p) for p in sorted(PACKAGE.glob("*.py")) if harness_imports(p)}
    assert offenders == {}


def test_public_api_is_importable() -> None:
    for name in harness.twin.__all__:
        assert getattr(harness.twin, name) is not None, name
