"""A test's console lines as report text: timestamped, the last :data:`CONSOLE_REPORT_LINES` of them.

Used for the ``Captured console`` section of a failed test and the console attachment in Allure.
"""

from __future__ import annotations

import time

CONSOLE_REPORT_LINES = 200


def format_console(lines: list[tuple[float, str]]) -> str:
    """``HH:MM:SS.mmm  line`` per console line; earlier lines past the limit are counted, not shown."""
    omitted = len(lines) - CONSOLE_REPORT_LINES
    head = f"... {omitted} earlier lines omitted (all are in the run journal)\n" if omitted > 0 else ""
    lines = lines[-CONSOLE_REPORT_LINES:]
    return head + "\n".join(
        f"{time.strftime('%H:%M:%S', time.localtime(t))}.{int(t * 1000) % 1000:03d}  {line}"
        for t, line in lines
    )
