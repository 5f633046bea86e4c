"""YAML files validated against pydantic models, with errors that point into the file.

Rig and scenario files are read here. Every node keeps its line and column, so a validation
error becomes one line: ``rigs/lab3.yaml:12:5: power.dialect: expected one of generic,
rigol-dp800 (got 'rigol')`` — never a traceback. Unknown keys get a "did you mean".
"""

from __future__ import annotations

import collections.abc
import difflib
import os
import re
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from harness.errors import ConfigError, Location

M = TypeVar("M", bound=BaseModel)

Path_ = tuple[str | int, ...]


@dataclass
class LocatedDocument:
    """Plain Python data from a YAML file plus the position of every node."""

    file: str
    data: Any
    positions: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    key_positions: dict[Path_, tuple[int, int]] = field(default_factory=dict)

    def locate(self, path: Path_, *, key: bool = False) -> Location:
        """The location of ``path``, or of its nearest ancestor that exists in the file."""
        table = self.key_positions if key else self.positions
        probe = tuple(path)
        while probe:
            if probe in table:
                line, col = table[probe]
                return Location(self.file, line, col, dotted(path))
            if not key and probe in self.key_positions:
                line, col = self.key_positions[probe]
                return Location(self.file, line, col, dotted(path))
            probe = probe[:-1]
        line, col = self.positions.get((), (1, 1))
        return Location(self.file, line, col, dotted(path))


def dotted(path: Iterable[str | int]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class _Loader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false. ``on``, ``off``, ``yes``, ``no`` stay text, as a
    scenario author means them (``power: on``, ``off: 200ms``)."""


_Loader.yaml_implicit_resolvers = {
    first: [r for r in resolvers if r[0] != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)

MAX_NODES = 100_000
"""How many nodes a file may expand to through its aliases (``*name``): far above any rig or
scenario file, far below what makes loading slow. A "billion laughs" file stops here."""


class AliasError(Exception):
    """An alias that refers to the node it is inside, or that expands the file past MAX_NODES."""

    def __init__(self, message: str, mark: yaml.Mark) -> None:
        super().__init__(message)
        self.message = message
        self.mark = mark


class _GuardedLoader(_Loader):
    """Composes like PyYAML, and sizes every node as it will be built (an alias counts its anchor's
    whole subtree each time), so a recursive alias or an alias bomb is refused while composing,
    before anything is expanded. Python data is built by :func:`_construct`, not by this loader."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._open_anchors: set[str] = set()
        self._anchor_marks: dict[str, yaml.Mark] = {}
        self._sizes: dict[int, int] = {}
        self.expanded = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            anchor = str(event.anchor)
            if anchor in self._open_anchors:
                line = self._anchor_marks[anchor].line + 1
                raise AliasError(
                    f"alias '*{anchor}' refers to the node it is inside (anchor '&{anchor}' at line {line}): "
                    "a recursive alias has no end; write the value out", event.start_mark,
                )  # fmt: skip
            node = super().compose_node(parent, index)  # PyYAML reports an undefined alias
            self._count(self._sizes.get(id(node), 1), anchor, event.start_mark)
            return node
        event = self.peek_event()
        anchor = event.anchor
        if anchor is not None:
            self._open_anchors.add(anchor)
            self._anchor_marks.setdefault(anchor, event.start_mark)
        try:
            node = super().compose_node(parent, index)
        finally:
            if anchor is not None:
                self._open_anchors.discard(anchor)
        children: list[yaml.Node] = []
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        self._sizes[id(node)] = 1 + sum(self._sizes.get(id(c), 1) for c in children)
        self._count(1, None, event.start_mark)
        return node

    def _count(self, nodes: int, anchor: str | None, mark: yaml.Mark) -> None:
        self.expanded += nodes
        if self.expanded > MAX_NODES and anchor is not None:
            line = self._anchor_marks[anchor].line + 1
            raise AliasError(
                f"alias '*{anchor}' (anchor '&{anchor}' at line {line}) expands the file past {MAX_NODES} nodes: "
                "aliases may repeat a value, not multiply a file; write the values out", mark,
            )  # fmt: skip


def _compose(text: str) -> yaml.Node | None:
    loader = _GuardedLoader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def load_yaml(path: str | os.PathLike[str], *, display_name: str | None = None) -> LocatedDocument:
    """Read a YAML file into plain data plus node positions; YAML errors become ConfigError."""
    name = display_name or _display(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", Location(name)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read file: {exc}", Location(name)) from None
    return parse_yaml(text, name)


def parse_yaml(text: str, name: str) -> LocatedDocument:
    try:
        node = _compose(text)
    except AliasError as exc:
        raise ConfigError(exc.message, Location(name, exc.mark.line + 1, exc.mark.column + 1)) from None
    except RecursionError:
        raise ConfigError("invalid YAML: nested too deeply", Location(name)) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join((exc.problem or exc.context or "invalid YAML").split())
        loc = Location(name, mark.line + 1, mark.column + 1) if mark else Location(name)
        raise ConfigError(f"invalid YAML: {problem}", loc) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        col = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        raise ConfigError(
            f"invalid YAML: character {exc.character!r} is not allowed in YAML text", Location(name, line, col)
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {' '.join(str(exc).split())}", Location(name)) from None
    doc = LocatedDocument(name, None)
    if node is None:
        doc.data = None
        doc.positions[()] = (1, 1)
        return doc
    try:
        doc.data = _construct(node, (), doc, _Loader(""))
    except yaml.MarkedYAMLError as exc:  # e.g. a tag no safe constructor knows ("=" is YAML's !!value)
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join((exc.problem or exc.context or "invalid YAML").split())
        loc = Location(name, mark.line + 1, mark.column + 1) if mark else Location(name)
        raise ConfigError(f"invalid YAML: {problem}", loc) from None
    return doc


def _construct(node: yaml.Node, path: Path_, doc: LocatedDocument, scalars: _Loader) -> Any:
    """Plain data from ``node``, recording positions; ``scalars`` (one per file) builds the scalar values."""
    doc.positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag == "tag:yaml.org,2002:merge":
                raise ConfigError(
                    "YAML merge keys ('<<') are not supported; write the fields out",
                    Location(doc.file, key_node.start_mark.line + 1, key_node.start_mark.column + 1),
                )
            key = scalars.construct_object(key_node) if isinstance(
                key_node, yaml.ScalarNode
            ) else None
            if not isinstance(key, str | int | float | bool) or key is None:
                raise ConfigError(
                    "expected a plain key (text or number)",
                    Location(doc.file, key_node.start_mark.line + 1, key_node.start_mark.column + 1,
                             dotted(path)),
                )
            key = str(key)
            child = (*path, key)
            if key in out:
                raise ConfigError(
                    f"duplicate key {key!r}",
                    Location(doc.file, key_node.start_mark.line + 1, key_node.start_mark.column + 1,
                             dotted(child)),
                )
            doc.key_positions[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            out[key] = _construct(value_node, child, doc, scalars)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, (*path, i), doc, scalars) for i, item in enumerate(node.value)]
    return scalars.construct_object(node)


def validate(doc: LocatedDocument, model: type[M], *, context: dict[str, Any] | None = None) -> M:
    """Validate located data against ``model``; every problem becomes one line of a ConfigError."""
    try:
        return model.model_validate(doc.data, context=context)
    except ValidationError as exc:
        raise translate_validation_error(exc, doc, model) from None


def load_model(path: str | os.PathLike[str], model: type[M], *, display_name: str | None = None) -> M:
    return validate(load_yaml(path, display_name=display_name), model)


def translate_validation_error(
    exc: ValidationError, doc: LocatedDocument, model: type[BaseModel]
) -> ConfigError:
    """All of pydantic's errors as one ConfigError, a line per problem in reading order.

    A value that fails every member of a union yields one error per member; only the first (the
    member the field is meant to be) is kept, so each field is named once.
    """
    found = [_problem(error, doc, model) for error in exc.errors(include_url=False)]
    # A misspelt required key is one problem, not two: "unknown 'actoin'; did you mean 'action'?"
    # already says that 'action' is missing.
    meant = {path for kind, path, _ in found if kind == "hint"}
    problems: list[ConfigError] = []
    seen: set[str] = set()
    for kind, path, problem in found:
        field_name = problem.location.field if problem.location is not None else ""
        if (kind == "missing" and path in meant) or field_name in seen:
            continue
        seen.add(field_name)
        problems.append(problem)
    problems.sort(key=_reading_order)  # stable: problems at one place keep pydantic's order
    return ConfigError.of(problems)


def _reading_order(problem: ConfigError) -> tuple[int, int]:
    loc = problem.location
    return (loc.line or 0, loc.column or 0) if loc is not None else (0, 0)


def _problem(error: Any, doc: LocatedDocument, model: type[BaseModel]) -> tuple[str, Path_, ConfigError]:
    """(kind, path, error): kind ``hint`` with the path of the field a misspelt key likely meant,
    ``missing`` with the path of a missing field, else ``other``."""
    path = _clean_loc(error["loc"])
    etype = error["type"]
    if etype == "extra_forbidden":
        loc = doc.locate(path, key=True)
        allowed = _allowed_keys(model, path[:-1], doc.data)
        bad = str(path[-1])
        hint = difflib.get_close_matches(bad, allowed, n=1, cutoff=0.6)
        msg = f"unknown field {bad!r}"
        if hint:
            msg += f"; did you mean {hint[0]!r}?"
            return "hint", (*path[:-1], hint[0]), ConfigError(msg, loc)
        if allowed:
            msg += f"; expected one of {', '.join(sorted(allowed))}"
        return "other", path, ConfigError(msg, loc)
    if etype == "missing":
        loc = doc.locate(path[:-1]) if path else doc.locate(())
        loc = Location(loc.file, loc.line, loc.column, dotted(path))
        return "missing", path, ConfigError(f"missing required field {str(path[-1])!r}", loc)
    message = _describe(error)
    named = re.match(r"^([A-Za-z_][\w.\[\]]*): (.*)$", message)
    if named and etype == "value_error" and isinstance(error.get("input"), dict):
        # A whole-object check names the field it is about: "field.path: message".
        path = (*path, *parse_dotted(named.group(1)))
        message = named.group(2)
    path = _within_document(doc.data, path)
    return "other", path, ConfigError(message, doc.locate(path))


def _within_document(data: Any, path: Path_) -> Path_:
    """Cut a validation path where the file has a plain value (a shorthand the model expanded)."""
    node = data
    for i, part in enumerate(path):
        in_dict = isinstance(node, dict) and isinstance(part, str) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_dict or in_list:
            node = node[part]
        elif isinstance(node, dict | list):
            return path  # a field the file lacks: name it as the model does
        else:
            return path[:i]  # the file has a scalar here; the rest was made up by a shorthand
    return path


def parse_dotted(text: str) -> Path_:
    """``events[2].at`` -> ("events", 2, "at")."""
    out: list[str | int] = []
    for name, index in re.findall(r"([A-Za-z_]\w*)|\[(\d+)\]", text):
        out.append(name if name else int(index))
    return tuple(out)


def _clean_loc(loc: Iterable[Any]) -> Path_:
    # Pydantic inserts union member / function-validator tags into locations; keep only real keys.
    out: list[str | int] = []
    for part in loc:
        is_tag = isinstance(part, str) and (
            part.startswith("function-") or part.endswith("]") or part in {"str", "int", "float"}
        )
        if not is_tag:
            out.append(part)
    return tuple(out)


_EXPECTED = {
    "string_type": "expected text",
    "int_type": "expected a whole number",
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "list_type": "expected a list",
    "dict_type": "expected a mapping of fields",
    "model_type": "expected a mapping of fields",
    "model_attributes_type": "expected a mapping of fields",
}


_OPS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}


def _describe(error: Any) -> str:
    etype = error["type"]
    got = error.get("input")
    got_text = _show(got)
    if etype in _EXPECTED:
        return f"{_EXPECTED[etype]}, got {got_text}"
    if etype == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        return f"expected one of {expected.replace(' or ', ', ')}, got {got_text}"
    if etype == "enum":
        expected = error.get("ctx", {}).get("expected", "")
        return f"expected one of {expected.replace(' or ', ', ')}, got {got_text}"
    if etype in {"value_error", "assertion_error"}:
        msg = str(error.get("msg", "")).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        return msg
    ctx = error.get("ctx") or {}
    if etype in _OPS:
        op = _OPS[etype]
        bound = next(iter(ctx.values()), "?")
        return f"expected a value {op} {bound}, got {got_text}"
    if etype == "string_pattern_mismatch":
        return f"expected text matching {ctx.get('pattern')!r}, got {got_text}"
    if etype in {"too_short", "too_long"}:
        return f"{error.get('msg', 'wrong length')}, got {got_text}"
    return f"{error.get('msg', 'invalid value')}, got {got_text}"


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _allowed_keys(model: type[BaseModel], path: Path_, data: Any = None) -> list[str]:
    """Field names (and aliases) accepted at ``path`` inside ``model``, at any depth: through nested
    models, list items, ``X | None`` and ``Annotated[X, ...]``. Where a union offers several models,
    the one whose fields best cover the mapping the file has there."""
    current: list[Any] = [model]
    for part in path:
        if isinstance(part, int):
            current = [item for ann in current for item in _list_items(ann)]
            continue
        following: list[Any] = []
        for candidate in (m for ann in current for m in _models(ann)):
            info = next((f for n, f in candidate.model_fields.items() if part in {n, f.alias}), None)
            if info is not None:
                following.append(info.annotation)
        current = following
    models = [m for ann in current for m in _models(ann)]
    if not models:
        return []
    here = _data_at(data, path)
    keys = set(here) if isinstance(here, dict) else set()
    best = max(models, key=lambda m: len(keys & set(_field_names(m))))
    return _field_names(best)


def _field_names(model: type[BaseModel]) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items()]


def _unwrap(annotation: Any) -> list[Any]:
    """The types an annotation admits: ``Annotated[X, ...]`` -> [X]; ``X | Y | None`` -> [X, Y]."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [t for arg in typing.get_args(annotation) for t in _unwrap(arg)]
    return [annotation]


def _models(annotation: Any) -> list[type[BaseModel]]:
    return [t for t in _unwrap(annotation) if isinstance(t, type) and issubclass(t, BaseModel)]


def _list_items(annotation: Any) -> list[Any]:
    out: list[Any] = []
    for t in _unwrap(annotation):
        if typing.get_origin(t) in (list, tuple, set, frozenset, collections.abc.Sequence) and typing.get_args(t):
            out.append(typing.get_args(t)[0])
    return out


def _data_at(data: Any, path: Path_) -> Any:
    node = data
    for part in path:
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if not (in_dict or in_list):
            return None
        node = node[part]
    return node


def _display(path: str | os.PathLike[str]) -> str:
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)
