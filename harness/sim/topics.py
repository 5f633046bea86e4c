"""MQTT 3.1.1 topic names and topic filters (§4.7): validity and matching, without I/O.

A topic name is what a PUBLISH carries: at least one character, no wildcards, no U+0000, at most
65535 bytes of UTF-8. A topic filter is what a SUBSCRIBE carries: the same, except that ``+`` may
fill a whole level and ``#`` may fill the last level only. Levels are separated by ``/``; empty
levels are levels (``a//b`` has three). Topics starting with ``$`` (``$SYS/...``) are not matched
by a filter whose first level is a wildcard (§4.7.2).
"""

from __future__ import annotations

MAX_BYTES = 65535


class TopicError(ValueError):
    """A topic name or filter that MQTT 3.1.1 does not allow; the message says which rule."""


def _check_common(text: str, what: str) -> None:
    if not text:
        raise TopicError(f"{what} is empty (MQTT 3.1.1 §4.7.3: at least one character)")
    if "\0" in text:
        raise TopicError(f"{what} {text!r} contains U+0000 (§4.7.3)")
    if len(text.encode("utf-8")) > MAX_BYTES:
        raise TopicError(f"{what} is longer than {MAX_BYTES} bytes of UTF-8 (§4.7.3)")


def check_topic(name: str) -> str:
    """``name`` if it is a valid topic name for a PUBLISH, else :class:`TopicError`."""
    _check_common(name, "topic name")
    if "+" in name or "#" in name:
        raise TopicError(f"topic name {name!r} contains a wildcard; only filters may (§4.7.1)")
    return name


def check_filter(topic_filter: str) -> str:
    """``topic_filter`` if it is a valid filter for a SUBSCRIBE, else :class:`TopicError`."""
    _check_common(topic_filter, "topic filter")
    levels = topic_filter.split("/")
    for i, level in enumerate(levels):
        if level == "#":
            if i != len(levels) - 1:
                raise TopicError(f"topic filter {topic_filter!r}: '#' must be the last level (§4.7.1.2)")
        elif level == "+":
            continue
        elif "#" in level or "+" in level:
            raise TopicError(f"topic filter {topic_filter!r}: a wildcard must fill a whole level (§4.7.1)")
    return topic_filter


def matches(topic_filter: str, name: str) -> bool:
    """Whether the (valid) filter matches the (valid) topic name, per §4.7.

    ``sport/#`` also matches ``sport`` (the parent level, §4.7.1.2); ``+`` matches exactly one level,
    which may be empty; a wildcard in the first level does not match a ``$`` topic (§4.7.2).
    """
    if name.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    want = topic_filter.split("/")
    have = name.split("/")
    for i, level in enumerate(want):
        if level == "#":
            return True
        if i >= len(have):
            return False
        if level != "+" and level != have[i]:
            return False
    return len(want) == len(have)
