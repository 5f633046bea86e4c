"""Imports point down only (docs: ARCHITECTURE's layer list): every harness module's imports, read from
its syntax tree (lazy imports inside functions and ``TYPE_CHECKING`` blocks included), against a table
of what each layer must not import. A known violation not fixed yet is an entry of ``EXCEPTIONS`` with
its reason; an entry that no longer matches anything fails too, so the table only shrinks."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "harness"

# Top to bottom, as ARCHITECTURE lists them, with three the list leaves out: ``cli`` (the ``harness``
# command, beside the plugin and imported by nothing but ``__main__``), ``session`` (a pytest process's
# run state: the plugin's hooks and fixtures and the scenario items read it; it imports the rig), and
# ``ota`` (image signing, manifests, slots: below the artifact server that serves its images).
# ``util`` is the harness's small top-level helpers (units, field types, YAML loading, processes).
LAYERS = (
    "plugin", "cli", "scenario", "session", "fleet", "rig", "lab", "sim", "drivers", "services", "ota",
    "report", "netmodel", "util", "run", "twin",
)  # fmt: skip

# Top-level modules by layer (a package's modules are its own layer: harness/<layer>/...).
TOP_LEVEL = {
    "__main__": "cli", "cli": "cli", "session": "session",
    "still_running": "plugin", "interrupt": "plugin",  # the plugin's helpers (heartbeat, signals)
    "units": "util", "fieldtypes": "util", "yamlfile": "util", "procs": "util",
    "errors": "run",  # ARCHITECTURE: run holds the errors (harness/errors.py moves there later)
}  # fmt: skip

_ABOVE = {layer: frozenset(LAYERS[: LAYERS.index(layer)]) for layer in LAYERS}

# layer -> the layers it must not import: everything above it, and more where ARCHITECTURE says so.
FORBIDDEN: dict[str, frozenset[str]] = {
    **_ABOVE,
    "sim": _ABOVE["sim"] | {"drivers"},  # "uses the twin core, netmodel and service cores, never drivers"
    "util": frozenset(LAYERS) - {"util", "run"},  # helpers every layer uses: only run infrastructure below
    "run": frozenset(LAYERS) - {"run"},  # "run infrastructure every layer may use": it uses nobody
    "twin": frozenset(LAYERS) - {"twin"},  # "imports nothing from the harness side"
}

# (importing module, imported layer) -> why it is still allowed. Fix one, delete its line.
EXCEPTIONS: dict[tuple[str, str], str] = {
    ("harness.report.accounting", "services"): (
        "reports count telemetry with the collector's accounting (harness.services.accounting, a service "
        "core per ARCHITECTURE), yet report sits below services: the accounting core (accounting, "
        "accounts, events, telemetry_schema) needs a home both can import (issue 17 item 7)"
    ),
    ("harness.ota.commands", "rig"): "the `harness ota` CLI (reads a rig's slot size): belongs beside harness/cli.py",
    ("harness.ota.commands", "services"): "the `harness ota serve` CLI starts an ArtifactServer: belongs beside cli.py",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str:
    """The layer of ``harness.x[.y]``; the package root ``harness`` is the top (it may re-export anything)."""
    parts = module.split(".")
    if len(parts) < 2:
        return "plugin"
    if (ROOT / parts[1]).is_dir():
        return parts[1]
    return TOP_LEVEL.get(parts[1], f"unplaced top-level module harness.{parts[1]}")


def imports_of(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """The harness modules ``source`` (the text of ``module``) imports, relative imports resolved."""
    found: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from harness import errors`` names a module; ``from harness.x import name`` a module's name
            found.update(f"{base}.{a.name}" if base == "harness" else base for a in node.names)
    return {name for name in found if name == "harness" or name.startswith("harness.")}


def violations() -> set[tuple[str, str, str]]:
    """(importing module, imported module, imported layer) for every import the table forbids."""
    found = set()
    for path in sorted(ROOT.rglob("*.py")):
        module = module_name(path)
        layer = layer_of(module)
        assert layer in FORBIDDEN, f"{path}: {layer} (add it to TOP_LEVEL or LAYERS)"
        for imported in imports_of(path.read_text(encoding="utf-8"), module, is_package=path.stem == "__init__"):
            target = layer_of(imported)
            if target != layer and target in FORBIDDEN[layer]:
                found.add((module, imported, target))
    return found


def test_every_import_points_down_except_the_listed_exceptions() -> None:
    found = violations()
    new = sorted(v for v in found if (v[0], v[2]) not in EXCEPTIONS)
    assert not new, "imports against the layering (ARCHITECTURE.md):\n" + "\n".join(
        f"  {m} imports {i} ({layer_of(m)} must not import {t})" for m, i, t in new
    )


def test_every_exception_is_still_needed() -> None:
    used = {(m, t) for m, _, t in violations()}
    stale = sorted(set(EXCEPTIONS) - used)
    assert not stale, f"fixed: delete from EXCEPTIONS: {stale}"


def test_every_layer_that_exists_is_in_the_table() -> None:
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()}
    assert packages <= set(LAYERS), f"place these packages in LAYERS: {sorted(packages - set(LAYERS))}"


@pytest.mark.parametrize(
    ("source", "module", "expected"),
    [
        ("import harness.report.journal as j", "harness.services.x", {"harness.report.journal"}),
        ("from harness.report import journal", "harness.services.x", {"harness.report"}),
        ("from harness import errors, units", "harness.services.x", {"harness.errors", "harness.units"}),
        ("from . import broker", "harness.services.x", {"harness.services"}),
        ("from ..report.journal import Journal", "harness.services.x", {"harness.report.journal"}),
        ("def f():\n    from harness.plugin import STATE\n", "harness.rig.x", {"harness.plugin"}),
        ("if TYPE_CHECKING:\n    from harness.rig.rig import Rig\n", "harness.drivers.x", {"harness.rig.rig"}),
        ("import json\nfrom pathlib import Path", "harness.run.x", set()),
    ],
)
def test_imports_are_read_in_every_form(source: str, module: str, expected: set[str]) -> None:
    assert imports_of(source, module) == expected


def test_a_service_importing_the_rig_layer_is_caught(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "harness"
    (fake / "services").mkdir(parents=True)
    (fake / "rig").mkdir()
    for init in (fake / "__init__.py", fake / "services" / "__init__.py", fake / "rig" / "__init__.py"):
        init.write_text("")
    (fake / "services" / "collector.py").write_text("def f():\n    from harness.rig.dut import Dut\n")
    (fake / "rig" / "dut.py").write_text("from harness.services import collector\n")  # down: allowed
    monkeypatch.setattr(sys.modules[__name__], "ROOT", fake)
    assert violations() == {("harness.services.collector", "harness.rig.dut", "rig")}
