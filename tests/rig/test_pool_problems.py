"""A pool file's problems are all listed, one line per member at fault, not the first one only."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.rig.loader import load_choice_file


def test_every_member_problem_of_a_pool_is_listed(tmp_path: Path) -> None:
    rigs = tmp_path / "rigs"
    rigs.mkdir()
    (rigs / "bench-a.yaml").write_text("name: bench-a\nconsole: {url: loop://}\n")
    (rigs / "twin-ish.yaml").write_text("name: twin-ish\ntwin: {}\n")
    (rigs / "broken.yaml").write_text("name: broken\nconsole: {url: loop://, baudrat: 9600}\n")
    (rigs / "lab.yaml").write_text("pool: lab\nrigs: [bench-a, bench-z, twin-ish, bench-a, broken]\n")
    with pytest.raises(ConfigError) as info:
        load_choice_file(rigs / "lab.yaml", tmp_path)
    lines = str(info.value).splitlines()
    assert lines == [
        "rigs/lab.yaml:2:17: rigs[1]: no rig named 'bench-z'; available in rigs/: bench-a, broken, lab, twin-ish "
        "(or a path to a rig file)",
        "rigs/lab.yaml:2:26: rigs[2]: 'twin-ish' is a twin rig; every worker already gets its own twin, a pool is "
        "for benches",
        "rigs/lab.yaml:2:36: rigs[3]: 'bench-a' is listed twice (also rigs[0])",
        "rigs/broken.yaml:2:25: console.baudrat: unknown field 'baudrat'; did you mean 'baudrate'?",
    ], lines
