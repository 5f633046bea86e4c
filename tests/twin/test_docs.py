"""docs/twin.md's Python examples run and print what the page says they print."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "twin.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
EXPECTED = [
    [
        "TWIN-LABS,TWIN-PSU3,TWIN-0001,1.0",
        "reset_cause=power-on",
        "BOOT-DONE",
        "fw 1.0.0 slot=A build=",
        "0.0000",
    ],
    ["2.0.0 2 slow-boot", "ImageFault(reason='truncated header (100 of 256 bytes)')"],
    ["BOOT slot=A fw=1.0.0 boot_count=1", "BOOT-DONE", "fw 1.0.0 slot=A build="],
    ["0.05 report state {'state': 'idle'}", "0.10 report reboot {'reason': 'software'}",
     "0.15 report state {'state': 'idle'}", "rebooting\nBOOT slot=A fw=1.0.0 boot_count=2 reset_cause=software"],
    ["'NetConnect', 'StartTimer']", "topic='devices/demo-1/status'", "retain=True",
     "NetSubscribe(conn=1, topic='devices/demo-1/ota/job', qos=1)",
     'devices/demo-1/telemetry {"device":"demo-1"', '"seq":1,', '"ts":1700000001.05,"dropped":0}'],
]


def test_every_example_has_expectations() -> None:
    assert len(BLOCKS) == len(EXPECTED)


@pytest.mark.parametrize(("index", "needles"), list(enumerate(EXPECTED)))
def test_example_runs(tmp_path: Path, index: int, needles: list[str]) -> None:
    script = tmp_path / f"example{index}.py"
    script.write_text(BLOCKS[index])
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    for needle in needles:
        assert needle in result.stdout, f"{needle!r} not in output of example {index}:\n{result.stdout}"
