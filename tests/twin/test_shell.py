"""The line editor: line endings, echo, editing keys, limits."""

from __future__ import annotations

import pytest

from harness.twin.shell import LineEditor


def feed_all(editor: LineEditor, data: bytes) -> tuple[bytes, list[str]]:
    echo, lines = b"", []
    while data:
        fed = editor.feed(data)
        echo += fed.echo
        data = data[fed.consumed :]
        if fed.line is not None:
            lines.append(fed.line)
    return echo, lines


@pytest.mark.parametrize(
    ("typed", "echo", "lines"),
    [
        (b"ver\r", b"ver\r\n", ["ver"]),
        (b"ver\n", b"ver\r\n", ["ver"]),
        (b"ver\r\n", b"ver\r\n", ["ver"]),
        (b"a\r\nb\n\nc\r\r", b"a\r\nb\r\n\r\nc\r\n\r\n", ["a", "b", "", "c", ""]),
        (b"vex\x7fr\r", b"vex\b \br\r\n", ["ver"]),
        (b"\x08\x08x\r", b"x\r\n", ["x"]),
        (b"junk\x03", b"junk^C\r\n", [""]),
        (b"a\x01\x1bb\r", b"ab\r\n", ["ab"]),
    ],
)
def test_editing(typed: bytes, echo: bytes, lines: list[str]) -> None:
    assert feed_all(LineEditor(), typed) == (echo, lines)


def test_crlf_split_across_feeds_is_one_line_ending() -> None:
    editor = LineEditor()
    assert feed_all(editor, b"a\r") == (b"a\r\n", ["a"])
    assert feed_all(editor, b"\nb\r") == (b"b\r\n", ["b"])


def test_feed_stops_after_first_line() -> None:
    fed = LineEditor().feed(b"one\rtwo\r")
    assert (fed.line, fed.consumed) == ("one", 4)


def test_overlong_line_rings_the_bell() -> None:
    echo, lines = feed_all(LineEditor(limit=3), b"abcd\r")
    assert echo == b"abc\x07\r\n"
    assert lines == ["abc"]
