"""Find and load a rig by name or path.

``--rig twin`` looks for ``rigs/twin.yaml`` under the project root, then for a rig shipped with
the harness; ``--rig path/to/lab3.yaml`` loads that file.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from harness.errors import ConfigError, Location
from harness.rig.spec import RigSpec
from harness.yamlfile import load_yaml, parse_yaml, validate


def builtin_rig_names() -> list[str]:
    folder = resources.files("harness.rig") / "builtin"
    return sorted(e.name.removesuffix(".yaml") for e in folder.iterdir() if e.name.endswith(".yaml"))


def project_rig_names(root: Path) -> list[str]:
    folder = root / "rigs"
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def resolve_rig(ref: str, root: Path) -> tuple[RigSpec, str]:
    """Load the rig named or pointed to by ``ref``; returns the spec and where it came from."""
    looks_like_path = ref.endswith((".yaml", ".yml")) or "/" in ref or "\\" in ref
    if looks_like_path:
        path = Path(ref)
        if not path.is_absolute():
            path = (Path.cwd() / path) if (Path.cwd() / path).exists() else root / path
        return load_rig_file(path), _show(path, root)
    candidate = root / "rigs" / f"{ref}.yaml"
    if candidate.is_file():
        return load_rig_file(candidate, display=_show(candidate, root)), _show(candidate, root)
    builtin = resources.files("harness.rig") / "builtin" / f"{ref}.yaml"
    if builtin.is_file():
        doc = parse_yaml(builtin.read_text(encoding="utf-8"), f"<harness>/rig/builtin/{ref}.yaml")
        return validate(doc, RigSpec), f"built-in rig {ref!r}"
    names = sorted(set(project_rig_names(root)) | set(builtin_rig_names()))
    raise ConfigError(
        f"--rig: no rig named {ref!r}; available: {', '.join(names) or 'none'} "
        f"(or give a path to a rig file)"
    )


def load_rig_file(path: Path, *, display: str | None = None) -> RigSpec:
    doc = load_yaml(path, display_name=display)
    if not isinstance(doc.data, dict):
        raise ConfigError("expected a mapping of rig fields (name, twin|console, power, profile)",
                          Location(doc.file, 1, 1))
    return validate(doc, RigSpec)


def _show(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)
