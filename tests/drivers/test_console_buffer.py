"""The console receive buffer: appends, slices, consumes and searches by absolute offsets."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.drivers.console_buffer import COMPACT_AT, TextBuffer


def filled(*chunks: str) -> TextBuffer:
    buf = TextBuffer()
    for chunk in chunks:
        buf.append(chunk)
    return buf


def test_text_spans_chunks_and_clamps() -> None:
    buf = filled("abc", "def", "gh")
    assert buf.text() == "abcdefgh"
    assert buf.text(2, 7) == "cdefg"
    assert buf.text(-5, 100) == "abcdefgh"
    assert buf.text(5, 5) == ""


def test_consume_returns_taken_and_keeps_offsets_absolute() -> None:
    buf = filled("abc", "def", "gh")
    assert buf.consume(4) == "abcd"
    assert (buf.start, buf.end, len(buf)) == (4, 8, 4)
    assert buf.text() == "efgh"
    assert buf.text(0, 6) == "ef"
    buf.append("ij")
    assert buf.consume(100) == "efghij"
    assert buf.text() == ""


def test_search_finds_earliest_match_and_reports_absolute_positions() -> None:
    buf = filled("xx", "BOOT-", "DONE yy ERR")
    buf.consume(1)
    hit = buf.search([re.compile("ERR"), re.compile("BOOT-DONE")], 0)
    assert hit is not None
    assert (hit.index, hit.start, hit.end) == (1, 2, 11)
    assert buf.search([re.compile("BOOT")], 3) is None


def test_max_chars_discards_oldest_and_counts_it() -> None:
    buf = TextBuffer(max_chars=10)
    buf.append("0123456789")
    buf.append("abcd")
    assert buf.text() == "456789abcd"
    assert buf.discarded == 4


def test_many_small_chunks_are_compacted_without_changing_content() -> None:
    buf = TextBuffer()
    for i in range(COMPACT_AT * 3):
        buf.append(chr(ord("a") + i % 26))
    assert len(buf._chunks) <= COMPACT_AT
    assert buf.text() == "".join(chr(ord("a") + i % 26) for i in range(COMPACT_AT * 3))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(min_size=0, max_size=20), max_size=30), st.data())
def test_any_chunking_and_consumption_equals_plain_string(chunks: list[str], data: st.DataObject) -> None:
    buf = TextBuffer()
    whole = ""
    consumed = 0
    for chunk in chunks:
        buf.append(chunk)
        whole += chunk
        cut = data.draw(st.integers(min_value=consumed, max_value=len(whole)))
        assert buf.consume(cut) == whole[consumed:cut]
        consumed = cut
        lo = data.draw(st.integers(min_value=0, max_value=len(whole)))
        assert buf.text(lo) == whole[max(lo, consumed) :]
