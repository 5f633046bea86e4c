"""Find and load a rig by name or path.

``--rig twin`` looks for ``rigs/twin.yaml`` under the project root, then for a rig shipped with
the harness; ``--rig path/to/lab3.yaml`` loads that file.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from harness.errors import ConfigError, Location
from harness.rig.kinds import kind_of
from harness.rig.pool import Member, RigChoice, RigPoolSpec
from harness.rig.spec import RigSpec
from harness.yamlfile import LocatedDocument, load_yaml, parse_yaml, validate


def builtin_rig_names() -> list[str]:
    folder = resources.files("harness.rig") / "builtin"
    return sorted(e.name.removesuffix(".yaml") for e in folder.iterdir() if e.name.endswith(".yaml"))


def project_rig_names(root: Path) -> list[str]:
    folder = root / "rigs"
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


@dataclass(frozen=True)
class RigListing:
    name: str
    where: str


def list_rigs(root: Path) -> list[RigListing]:
    """Every rig ``--rig NAME`` can name, once: a project file shadows a built-in rig of its name."""
    project = project_rig_names(root)
    out = [
        RigListing(name, f"rigs/{name}.yaml" + (" (shadows the built-in rig of that name)"
                                                if name in builtin_rig_names() else ""))
        for name in project
    ]  # fmt: skip
    out += [RigListing(name, "built-in") for name in builtin_rig_names() if name not in project]
    return sorted(out, key=lambda r: r.name)


def resolve_rig(ref: str, root: Path) -> tuple[RigSpec, str]:
    """Load the rig named or pointed to by ``ref``; returns the spec and where it came from.

    For a pool, its first member: every member offers the same capabilities and profile.
    """
    member = resolve_choice(ref, root).first
    return member.spec, member.source


def resolve_choice(ref: str, root: Path) -> RigChoice:
    """The rig or rig pool named or pointed to by ``ref``."""
    looks_like_path = ref.endswith((".yaml", ".yml")) or "/" in ref or "\\" in ref
    if looks_like_path:
        path = Path(ref)
        if not path.is_absolute():
            path = (Path.cwd() / path) if (Path.cwd() / path).exists() else root / path
        return load_choice_file(path, root)
    candidate = root / "rigs" / f"{ref}.yaml"
    if candidate.is_file():
        return load_choice_file(candidate, root)
    builtin = resources.files("harness.rig") / "builtin" / f"{ref}.yaml"
    if builtin.is_file():
        doc = parse_yaml(builtin.read_text(encoding="utf-8"), f"<harness>/rig/builtin/{ref}.yaml")
        return RigChoice([Member(validate(doc, RigSpec), f"built-in rig {ref!r}")])
    names = sorted(set(project_rig_names(root)) | set(builtin_rig_names()))
    raise ConfigError(
        f"--rig: no rig named {ref!r}; available: {', '.join(names) or 'none'} "
        f"(or give a path to a rig file)"
    )


def load_rig_file(path: Path, *, display: str | None = None) -> RigSpec:
    return _rig_from(load_yaml(path, display_name=display))


def _rig_from(doc: LocatedDocument) -> RigSpec:
    if not isinstance(doc.data, dict):
        raise ConfigError("expected a mapping of rig fields (name, twin|console, power, profile)",
                          Location(doc.file, 1, 1))
    if "pool" in doc.data:
        raise ConfigError("a rig pool where one rig is expected: name one of its rigs",
                          doc.locate(("pool",), key=True))  # fmt: skip
    return validate(doc, RigSpec)


def load_choice_file(path: Path, root: Path, *, display: str | None = None) -> RigChoice:
    """A rig file, or a pool file (``pool:``) with its members loaded and checked against each other."""
    shown = display or _show(path, root)
    doc = load_yaml(path, display_name=shown)
    if not (isinstance(doc.data, dict) and "pool" in doc.data):
        return RigChoice([Member(_rig_from(doc), shown)])
    spec = validate(doc, RigPoolSpec)
    members: list[Member] = []
    problems: list[ConfigError] = []
    seen: dict[str, int] = {}
    for i, ref in enumerate(spec.rigs):
        where = doc.locate(("rigs", i))
        here = Location(where.file, where.line, where.column, f"rigs[{i}]")
        try:
            member, key = _pool_member(ref, path, root, here)
        except ConfigError as exc:  # every member's problems, not the first member's only
            problems.append(exc)
            continue
        problem = _member_problem(member.spec, members[0].spec if members else None)
        if problem is None and key in seen:
            problem = f"{ref!r} is listed twice (also rigs[{seen[key]}])"
        if problem is not None:
            problems.append(ConfigError(problem, here))
            continue
        seen[key] = i
        members.append(member)
    if problems:
        raise ConfigError.of(problems)
    return RigChoice(members, spec.pool, shown, spec.claim_timeout)


def _pool_member(ref: str, pool_path: Path, root: Path, here: Location) -> tuple[Member, str]:
    """The member rig ``ref`` and its file's real path (two names of one file are one member)."""
    member_path = _member_path(ref, pool_path.parent, root)
    if member_path is None:
        names = ", ".join(project_rig_names(root)) or "none"
        raise ConfigError(f"no rig named {ref!r}; available in rigs/: {names} (or a path to a rig file)", here)
    member_doc = load_yaml(member_path, display_name=_show(member_path, root))
    if isinstance(member_doc.data, dict) and "pool" in member_doc.data:
        raise ConfigError(f"{ref!r} is itself a pool; a pool lists rigs", here)
    return Member(_rig_from(member_doc), _show(member_path, root)), str(member_path.resolve())


def _member_path(ref: str, folder: Path, root: Path) -> Path | None:
    if ref.endswith((".yaml", ".yml")) or "/" in ref or "\\" in ref:
        for base in (folder, root):
            if (base / ref).is_file():
                return base / ref
        return None
    candidate = root / "rigs" / f"{ref}.yaml"
    return candidate if candidate.is_file() else None


def _member_problem(member: RigSpec, first: RigSpec | None) -> str | None:
    if not kind_of(member).claimed:
        return (f"{member.name!r} is a {member.kind} rig; every worker already gets its own twin, a pool is for "
                "benches")  # fmt: skip
    if first is None:
        return None
    if member.capabilities() != first.capabilities():
        return (f"{member.name!r} offers {', '.join(sorted(member.capabilities())) or 'nothing'} but "
                f"{first.name!r} offers {', '.join(sorted(first.capabilities())) or 'nothing'}; every rig of "
                "a pool must offer the same")  # fmt: skip
    if member.profile.name != first.profile.name:
        return (f"{member.name!r} speaks profile {member.profile.name!r} but {first.name!r} speaks "
                f"{first.profile.name!r}; every rig of a pool must speak the same")  # fmt: skip
    return None


def _show(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)
