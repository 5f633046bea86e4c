"""The console's receive buffer: unconsumed text, appended in O(1), searched incrementally.

Text is kept as a list of decoded chunks addressed by *absolute* character offsets (characters
ever received), so a search can remember how far it has looked and resume there when more data
arrives instead of rescanning megabytes. Consuming (after a match) drops whole chunks from the
front and slices at most one. Nothing here locks: the console holds its condition's lock around
every call.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass

#: Merge the chunk list into one string when it grows beyond this many pieces (amortised O(1)).
COMPACT_AT = 512


@dataclass(frozen=True)
class Hit:
    """A match found in the buffer: which pattern, the match object, and its absolute end offset."""

    index: int
    match: re.Match[str]
    start: int
    end: int


class TextBuffer:
    """Unconsumed received text between absolute offsets :attr:`start` and :attr:`end`."""

    def __init__(self, max_chars: int = 32 * 1024 * 1024) -> None:
        self._chunks: list[str] = []
        self._starts: list[int] = []
        self.start = 0
        self.end = 0
        self.max_chars = max_chars
        self.discarded = 0

    def __len__(self) -> int:
        return self.end - self.start

    def append(self, text: str) -> None:
        """Add received text; if the unconsumed text exceeds ``max_chars`` the oldest is dropped."""
        if not text:
            return
        self._starts.append(self.end)
        self._chunks.append(text)
        self.end += len(text)
        if len(self._chunks) > COMPACT_AT:
            self._compact()
        if self.end - self.start > self.max_chars:
            before = self.start
            self.consume(self.end - self.max_chars)
            self.discarded += self.start - before

    def text(self, frm: int | None = None, to: int | None = None) -> str:
        """The unconsumed text between absolute offsets ``frm`` and ``to`` (clamped to the buffer)."""
        lo = self.start if frm is None else max(frm, self.start)
        hi = self.end if to is None else min(to, self.end)
        if hi <= lo:
            return ""
        first = bisect_right(self._starts, lo) - 1
        last = bisect_right(self._starts, hi - 1) - 1
        if first == last:
            base = self._starts[first]
            return self._chunks[first][lo - base : hi - base]
        joined = "".join(self._chunks[first : last + 1])
        base = self._starts[first]
        return joined[lo - base : hi - base]

    def consume(self, upto: int) -> str:
        """Drop (and return) the unconsumed text before absolute offset ``upto``."""
        upto = min(max(upto, self.start), self.end)
        if upto == self.start:
            return ""
        taken = self.text(self.start, upto)
        cut = bisect_right(self._starts, upto) - 1
        if cut >= 0 and self._starts[cut] < upto:
            offset = upto - self._starts[cut]
            rest = self._chunks[cut][offset:]
            del self._chunks[: cut + 1]
            del self._starts[: cut + 1]
            if rest:
                self._chunks.insert(0, rest)
                self._starts.insert(0, upto)
        else:
            del self._chunks[:cut]
            del self._starts[:cut]
        self.start = upto
        return taken

    def search(self, patterns: list[re.Pattern[str]], frm: int) -> Hit | None:
        """The earliest match of any pattern starting at or after ``frm`` (ties go to the first pattern).

        Searching starts at the beginning of the unconsumed text when ``frm`` is there, so ``^``
        anchors to the unconsumed start, like pexpect's buffer.
        """
        lo = max(frm, self.start)
        window = self.text(lo)
        best: Hit | None = None
        for index, pattern in enumerate(patterns):
            match = pattern.search(window)
            if match is None:
                continue
            if best is None or lo + match.start() < best.start:
                best = Hit(index, match, lo + match.start(), lo + match.end())
        return best

    def _compact(self) -> None:
        if self._chunks:
            self._chunks = ["".join(self._chunks)]
            self._starts = [self.start]


@dataclass(frozen=True)
class Stage:
    """One step of a search: any of ``patterns``; regexes re-read ``lookback`` chars of old text."""

    patterns: list[re.Pattern[str]]
    lookback: int
    label: str


class StagedSearch:
    """Find stage 1, then stage 2 after it, ... as text arrives, never rescanning far back.

    ``advance`` is cheap when nothing new arrived, so the reader thread can call it for every
    chunk and wake a waiter only when its whole search is complete.
    """

    def __init__(self, stages: list[Stage], start: int) -> None:
        self.stages = stages
        self.origin = start
        self.hits: list[Hit] = []
        self.done = False
        self._frm = start
        self._scanned = -1

    @property
    def pending(self) -> Stage:
        """The stage still being looked for (the last one once done)."""
        return self.stages[min(len(self.hits), len(self.stages) - 1)]

    def advance(self, buf: TextBuffer) -> bool:
        """Search what arrived since the last call; True once every stage has matched."""
        hits = self.hits
        if hits and hits[0].start < buf.start:  # another reader consumed our text
            hits.clear()
            self.done = False
            self._frm, self._scanned = buf.start, -1
        while len(hits) < len(self.stages):
            if self._scanned == buf.end:
                return False
            stage = self.stages[len(hits)]
            frm = self._frm if self._scanned < 0 else max(self._frm, self._scanned - stage.lookback)
            hit = buf.search(stage.patterns, frm)
            if hit is None:
                self._scanned = buf.end
                return False
            hits.append(hit)
            self._frm, self._scanned = hit.end, -1
        self.done = True
        return True
