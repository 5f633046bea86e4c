"""The console line editor: echo like a firmware shell, hand out one completed line at a time.

A line ends at ``\\r``, ``\\n`` or ``\\r\\n`` (the ``\\n`` right after a ``\\r`` is swallowed) and
the ending is echoed as ``\\r\\n``. Backspace/DEL erase one character; Ctrl-C abandons the line;
other control bytes are ignored; characters past the length limit ring the bell.
"""

from __future__ import annotations

from dataclasses import dataclass

LINE_LIMIT = 256
_BACKSPACE = (0x08, 0x7F)
_CTRL_C = 0x03
_BELL = b"\x07"


@dataclass(frozen=True)
class Fed:
    """Result of :meth:`LineEditor.feed`: bytes to echo, the completed line (if any), bytes consumed."""

    echo: bytes
    line: str | None
    consumed: int


class LineEditor:
    """Accumulates typed bytes; stops after the first completed line so the caller can act on it."""

    def __init__(self, limit: int = LINE_LIMIT) -> None:
        self.limit = limit
        self._buffer = bytearray()
        self._after_cr = False

    @property
    def pending(self) -> str:
        return self._buffer.decode("ascii")

    def feed(self, data: bytes) -> Fed:
        echo = bytearray()
        for index, byte in enumerate(data):
            after_cr, self._after_cr = self._after_cr, False
            if byte == 0x0A and after_cr:
                continue
            if byte in (0x0D, 0x0A):
                self._after_cr = byte == 0x0D
                echo += b"\r\n"
                line = self._buffer.decode("ascii")
                self._buffer.clear()
                return Fed(bytes(echo), line, index + 1)
            if byte == _CTRL_C:
                echo += b"^C\r\n"
                self._buffer.clear()
                return Fed(bytes(echo), "", index + 1)
            if byte in _BACKSPACE:
                if self._buffer:
                    self._buffer.pop()
                    echo += b"\b \b"
            elif 0x20 <= byte < 0x7F:
                if len(self._buffer) < self.limit:
                    self._buffer.append(byte)
                    echo.append(byte)
                else:
                    echo += _BELL
        return Fed(bytes(echo), None, len(data))
