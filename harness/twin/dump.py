"""The ``dump N`` stream: numbered 64-byte lines and a trailer that proves nothing was lost.

Line ``i`` is ``f"{i:08d} "`` + :data:`FILLER` + ``"\\r\\n"`` (exactly 64 bytes). The trailer is
``DUMP-END lines=<k> bytes=<64*k> crc32=<8 hex>`` with the CRC32 over every dumped line.
Output is produced in chunks of :data:`CHUNK_LINES` lines so a huge dump never exists as one string.
"""

from __future__ import annotations

import string
import zlib

LINE_BYTES = 64
FILLER = (string.ascii_uppercase + string.ascii_lowercase + "0").encode()  # 53 bytes
_SUFFIX = b" " + FILLER + b"\r\n"
CHUNK_LINES = 64
MAX_BYTES = 64 * 1024 * 1024

assert len(_SUFFIX) + 8 == LINE_BYTES


def dump_line(index: int) -> bytes:
    return b"%08d" % index + _SUFFIX


class DumpJob:
    """Progress of one dump: call :meth:`next_chunk` until :attr:`done`, then :meth:`trailer`."""

    def __init__(self, requested_bytes: int) -> None:
        self.total_lines = max(1, requested_bytes // LINE_BYTES)
        self.next_line = 0
        self.crc = 0

    @property
    def done(self) -> bool:
        return self.next_line >= self.total_lines

    def next_chunk(self) -> bytes:
        end = min(self.total_lines, self.next_line + CHUNK_LINES)
        chunk = b"".join(dump_line(i) for i in range(self.next_line, end))
        self.crc = zlib.crc32(chunk, self.crc)
        self.next_line = end
        return chunk

    def trailer(self) -> str:
        lines = self.total_lines
        return f"DUMP-END lines={lines} bytes={lines * LINE_BYTES} crc32={self.crc:08x}"
