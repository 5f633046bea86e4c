"""SCPI message syntax, sans-IO: split program messages, match headers, parse parameters.

Supports what instrument drivers send in practice: several message units per line separated by
``;``, an optional leading ``:``, short and long mnemonic forms in any case, optional nodes
(``[SOURce:]VOLTage[:LEVel]``), ``*`` common commands, and comma-separated parameters where a
Keysight channel list ``(@1,2)`` counts as one parameter. After a compound header, a following
unit without a leading ``:`` is tried relative to the previous header's path first, as SCPI says,
then from the root (lenient, so ``OUTP OFF;MEAS:CURR?`` works as people expect).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field


class ScpiError(Exception):
    """A SCPI error for the instrument's error queue: ``code`` and the standard message."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f'{code},"{message}"')
        self.code = code
        self.message = message


def command_error() -> ScpiError:
    return ScpiError(-100, "Command error")


def data_type_error() -> ScpiError:
    return ScpiError(-104, "Data type error")


def parameter_not_allowed() -> ScpiError:
    return ScpiError(-108, "Parameter not allowed")


def missing_parameter() -> ScpiError:
    return ScpiError(-109, "Missing parameter")


def undefined_header() -> ScpiError:
    return ScpiError(-113, "Undefined header")


def out_of_range() -> ScpiError:
    return ScpiError(-222, "Data out of range")


def illegal_value() -> ScpiError:
    return ScpiError(-224, "Illegal parameter value")


def queue_overflow() -> ScpiError:
    return ScpiError(-350, "Queue overflow")


# --------------------------------------------------------------------------- message units


@dataclass(frozen=True)
class Unit:
    """One message unit: header tokens (upper case), query flag, raw parameters."""

    tokens: tuple[str, ...]
    query: bool
    params: tuple[str, ...]
    absolute: bool

    @property
    def common(self) -> bool:
        return bool(self.tokens) and self.tokens[0].startswith("*")


def _split_top_level(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    quote = ""
    current: list[str] = []
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth = max(0, depth - 1)
        elif char == sep and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def split_units(line: str) -> list[str]:
    """Split one program message (a line) into its message units; empty units are dropped."""
    return [unit.strip() for unit in _split_top_level(line, ";") if unit.strip()]


def parse_unit(text: str) -> Unit:
    """Parse ``[:]HEAD:ER[?] [param[,param...]]``; raise ScpiError(-100) on a malformed header."""
    header, _, rest = text.strip().partition(" ")
    absolute = header.startswith(":")
    header = header.lstrip(":")
    query = header.endswith("?")
    header = header.removesuffix("?")
    tokens = tuple(header.upper().split(":"))
    if not header or any(not re.fullmatch(r"\*?[A-Z][A-Z0-9]*", t) for t in tokens):
        raise command_error()
    params = tuple(p.strip() for p in _split_top_level(rest, ",")) if rest.strip() else ()
    if any(not p for p in params):
        raise missing_parameter()
    return Unit(tokens, query, params, absolute)


# --------------------------------------------------------------------------- header patterns


@dataclass(frozen=True)
class _Node:
    short: str
    long: str
    optional: bool


def _compile(pattern: str) -> tuple[_Node, ...]:
    """``"[SOURce:]VOLTage[:LEVel]"`` -> nodes; the short form is the upper-case part."""
    nodes = []
    for match in re.finditer(r"\[:?([*A-Za-z0-9]+):?\]|:?([*A-Za-z0-9]+)", pattern):
        word = match.group(1) or match.group(2)
        short = "".join(c for c in word if not c.islower())
        nodes.append(_Node(short.upper(), word.upper(), match.group(1) is not None))
    return tuple(nodes)


def _matches(nodes: tuple[_Node, ...], tokens: tuple[str, ...]) -> bool:
    if not nodes:
        return not tokens
    head, rest = nodes[0], nodes[1:]
    if tokens and tokens[0] in (head.short, head.long) and _matches(rest, tokens[1:]):
        return True
    return head.optional and _matches(rest, tokens)


Handler = Callable[[tuple[str, ...]], str | None]


@dataclass
class CommandTable:
    """Header patterns with a set handler and/or a query handler each."""

    entries: list[tuple[tuple[_Node, ...], Handler | None, Handler | None]] = field(default_factory=list)

    def add(self, pattern: str, *, on_set: Handler | None = None, on_query: Handler | None = None) -> None:
        self.entries.append((_compile(pattern), on_set, on_query))

    def lookup(self, tokens: tuple[str, ...], query: bool) -> Handler | None:
        for nodes, on_set, on_query in self.entries:
            if _matches(nodes, tokens):
                handler = on_query if query else on_set
                if handler is not None:
                    return handler
        return None


@dataclass
class Session:
    """Per-connection parser state: the header path compound units are relative to."""

    path: tuple[str, ...] = ()


def resolve(table: CommandTable, unit: Unit, session: Session) -> Handler:
    """Find the handler for ``unit`` (relative to the session path first); update the path."""
    if unit.common:
        handler = table.lookup(unit.tokens, unit.query)
        if handler is None:
            raise undefined_header()
        return handler
    candidates = [unit.tokens]
    if not unit.absolute and session.path:
        candidates.insert(0, session.path + unit.tokens)
    for tokens in candidates:
        handler = table.lookup(tokens, unit.query)
        if handler is not None:
            session.path = tokens[:-1]
            return handler
    session.path = ()
    raise undefined_header()


# --------------------------------------------------------------------------- parameter parsing

_NUMBER = re.compile(r"([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([A-Za-z]*)")
_SCALE = {"": 1.0, "V": 1.0, "A": 1.0, "MV": 1e-3, "MA": 1e-3, "UA": 1e-6}


def parse_number(text: str, *, minimum: float, maximum: float, default: float) -> float:
    """A decimal with optional unit suffix, or MIN/MAX/DEF; ScpiError -104/-222 otherwise."""
    word = text.strip().upper()
    if word in ("MIN", "MINIMUM"):
        return minimum
    if word in ("MAX", "MAXIMUM"):
        return maximum
    if word in ("DEF", "DEFAULT"):
        return default
    match = _NUMBER.fullmatch(word)
    if match is None or match.group(2) not in _SCALE:
        raise data_type_error()
    value = float(match.group(1)) * _SCALE[match.group(2)]
    if not minimum <= value <= maximum:
        raise out_of_range()
    return value


def parse_bool(text: str) -> bool:
    word = text.strip().upper()
    if word in ("ON", "1"):
        return True
    if word in ("OFF", "0"):
        return False
    raise illegal_value()


def parse_channel_list(text: str, channels: int) -> list[int] | None:
    """``(@1)``, ``(@1,3)``, ``(@1:3)`` -> channel numbers; None if ``text`` is not a channel list."""
    match = re.fullmatch(r"\(@([0-9,:\s]+)\)", text.strip())
    if match is None:
        return None
    result: list[int] = []
    for part in match.group(1).split(","):
        first, _, last = part.strip().partition(":")
        if not first.isdigit() or (last and not last.isdigit()):
            raise illegal_value()
        result.extend(range(int(first), int(last or first) + 1))
    if not result or any(not 1 <= n <= channels for n in result):
        raise illegal_value()
    return result


def parse_channel_name(text: str, channels: int) -> int | None:
    """``CH1`` -> 1 (Rigol style); None if ``text`` is not a channel name."""
    match = re.fullmatch(r"CH(\d+)", text.strip().upper())
    if match is None:
        return None
    number = int(match.group(1))
    if not 1 <= number <= channels:
        raise illegal_value()
    return number
