"""``tc netem`` option strings, read into the keyword parameters the point takes.

``parse_netem("delay 100ms 10ms 25% distribution normal loss 1% 25% rate 1mbit")`` returns
``{"delay": "100ms", "jitter": "10ms", "delay_correlation": "25%", "distribution": "normal",
"loss": "1%", "loss_correlation": "25%", "rate": "1mbit"}``, ready for
:meth:`ImpairmentPoint.apply` (which validates the values). Keywords the userspace point does not
model (``limit``, ``slot``, ``ecn``, ``loss state``) are refused by name rather than ignored.
"""

from __future__ import annotations

from typing import Any

from harness.errors import ConfigError

KEYWORDS = ("delay", "distribution", "loss", "duplicate", "corrupt", "reorder", "gap", "rate")
UNSUPPORTED = ("limit", "slot", "ecn", "seed", "jitter")


def _fail(message: str) -> ConfigError:
    return ConfigError(f"netem: {message}")


def parse_netem(spec: str) -> dict[str, Any]:
    """Keyword parameters from a ``tc qdisc ... netem`` option string; raises :class:`ConfigError`."""
    tokens = spec.split()
    out: dict[str, Any] = {}
    i = 0
    while i < len(tokens):
        word = tokens[i].lower()
        i += 1
        args: list[str] = []
        while i < len(tokens) and tokens[i].lower() not in KEYWORDS + UNSUPPORTED:
            args.append(tokens[i])
            i += 1
        if word in UNSUPPORTED:
            raise _fail(f"'{word}' is not supported by the userspace point (supported: {', '.join(KEYWORDS)})")
        if word not in KEYWORDS:
            raise _fail(f"unknown keyword {word!r}; expected one of {', '.join(KEYWORDS)}")
        if word in out:
            raise _fail(f"'{word}' given twice")
        _take(word, args, out)
    return out


def _take(word: str, args: list[str], out: dict[str, Any]) -> None:
    def arity(low: int, high: int, usage: str) -> None:
        if not low <= len(args) <= high:
            raise _fail(f"'{word}' expects {usage}, got {' '.join(args) or 'nothing'!r}")

    if word == "delay":
        arity(1, 3, "TIME [JITTER [CORRELATION]]")
        for key, value in zip(("delay", "jitter", "delay_correlation"), args, strict=False):
            out[key] = value
    elif word in ("distribution", "rate", "gap"):
        arity(1, 1, {"distribution": "NAME", "rate": "RATE", "gap": "DISTANCE"}[word])
        out[word] = int(args[0]) if word == "gap" and args[0].isdigit() else args[0]
    elif word == "loss":
        if args and args[0].lower() == "gemodel":
            if not 2 <= len(args) <= 5:
                raise _fail(f"'loss gemodel' expects p [r [1-h [1-k]]], got {' '.join(args[1:]) or 'nothing'!r}")
            out["gemodel"] = " ".join(args[1:])
            return
        if args and args[0].lower() == "state":
            raise _fail("'loss state' (4-state Markov) is not supported; use 'loss gemodel' or 'loss random'")
        if args and args[0].lower() == "random":
            args = args[1:]
        arity(1, 2, "[random] PERCENT [CORRELATION]")
        out["loss"] = args[0]
        if len(args) > 1:
            out["loss_correlation"] = args[1]
    else:  # duplicate, corrupt, reorder
        arity(1, 2, "PERCENT [CORRELATION]")
        out[word] = args[0]
        if len(args) > 1:
            out[f"{word}_correlation"] = args[1]
