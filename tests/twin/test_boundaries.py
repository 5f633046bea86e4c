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


def twin_imports(path: Path) -> set[str]:
    """Every module ``path`` imports, under TYPE_CHECKING too."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_the_runtime_reads_no_clock_and_touches_no_io() -> None:
    forbidden = {"asyncio", "threading", "time", "socket", "os", "select", "selectors", "subprocess"}
    for name in ("runtime.py", "executors.py"):
        assert twin_imports(PACKAGE / name) & forbidden == set(), name


def test_only_the_runtime_and_the_public_api_import_the_core_class() -> None:
    """Feature modules take the narrow ``Firmware`` protocol: the core's imports form no circle."""
    importers = {p.name for p in PACKAGE.glob("*.py") if "harness.twin.device" in twin_imports(p)}
    assert importers == {"__init__.py", "runtime.py"}
