"""A rig's kind: ``kind:`` in the file (or the old inference without it), checked when the file is
read, and the one table (harness.rig.kinds) every kind-dependent decision asks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.rig.claim import resource_keys
from harness.rig.kinds import KIND_NAMES, KINDS, NOT_AVAILABLE, kind_of
from harness.rig.loader import load_choice_file, load_rig_file
from harness.rig.rig import Rig
from harness.rig.spec import RigSpec

BOARD = "name: lab3\nkind: board\nconsole: {url: 'rfc2217://lab3:4001'}\npower: {resource: 'TCPIP::psu::5025::SOCKET'}\n"
TWIN = "name: t\nkind: twin\ntwin: {device_id: twin-9}\n"


def _load(tmp_path: Path, text: str, name: str = "lab3.yaml") -> RigSpec:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return load_rig_file(path, display=name)


def _problem(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text)
    return str(info.value)


@pytest.mark.parametrize(("text", "kind"), [
    (BOARD, "board"),
    (TWIN, "twin"),
    ("name: t\nkind: twin\ntwin: {}\n", "twin"),
    ("name: t\ntwin: {}\n", "twin"),                                    # no kind: a twin section makes a twin
    ("name: b\nconsole: {url: 'loop://'}\n", "board"),                  # no kind, no twin section: a board
])  # fmt: skip
def test_the_kind_comes_from_the_file_or_from_its_sections(tmp_path: Path, text: str, kind: str) -> None:
    assert _load(tmp_path, text).kind == kind


@pytest.mark.parametrize(("text", "expected"), [
    ("name: b\nkind: bord\nconsole: {url: 'loop://'}\n",
     "lab3.yaml:2:7: kind: expected one of board, twin (later also virtual, labgrid), got 'bord'; did you mean 'board'?"),
    ("name: t\nkind: Twin\ntwin: {}\n",
     "lab3.yaml:2:7: kind: expected one of board, twin (later also virtual, labgrid), got 'Twin'; did you mean 'twin'?"),
    ("name: b\nkind: bench\nconsole: {url: 'loop://'}\n",
     "lab3.yaml:2:7: kind: expected one of board, twin (later also virtual, labgrid), got 'bench'"),
    ("name: v\nkind: virtual\ntwin: {}\n",
     "lab3.yaml:2:7: kind: 'virtual' rigs are not available yet (a virtual twin runs in simulated time, which the "
     "harness cannot do yet); available: board, twin"),
    ("name: l\nkind: labgrid\n",
     "lab3.yaml:2:7: kind: 'labgrid' rigs are not available yet (reserving a board through a labgrid coordinator is "
     "not built yet); available: board, twin"),
])  # fmt: skip
def test_a_wrong_kind_is_one_line_with_a_did_you_mean(tmp_path: Path, text: str, expected: str) -> None:
    assert _problem(tmp_path, text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("name: t\nkind: twin\n", "lab3.yaml:2:7: kind: a twin rig needs a twin section (twin: {} takes every default)"),
    ("name: t\nkind: twin\ntwin:\n", "lab3.yaml:2:7: kind: a twin rig needs a twin section"),
    ("name: b\nkind: board\n", "lab3.yaml:1:1: console: a board rig needs a console (console.url: a pyserial URL"),
    ("name: b\nkind: board\nconsole: {baudrate: 9600}\n",
     "lab3.yaml:3:10: console.url: a board rig needs the console's pyserial URL"),
    ("name: b\nkind: board\ntwin: {}\nconsole: {url: 'loop://'}\n",
     "lab3.yaml:3:7: twin: a board rig has no twin section; remove it, or set kind: twin"),
    ("name: t\nkind: twin\ntwin: {}\nconsole: {url: 'loop://'}\n",
     "lab3.yaml:4:16: console.url: a twin rig gets its console from the twin"),
])  # fmt: skip
def test_a_kind_whose_sections_are_missing_names_the_section(tmp_path: Path, text: str, expected: str) -> None:
    problem = _problem(tmp_path, text)
    assert problem.startswith(expected), problem
    assert len(problem.splitlines()) == 1


def test_every_known_kind_is_either_available_or_refused_with_a_reason() -> None:
    assert sorted(KINDS) + sorted(NOT_AVAILABLE) == ["board", "twin", "labgrid", "virtual"]
    assert set(KIND_NAMES) == set(KINDS) | set(NOT_AVAILABLE)


def test_the_kinds_table_of_the_docs_is_the_codes() -> None:
    text = (Path(__file__).parents[2] / "docs" / "rigs.md").read_text(encoding="utf-8")
    section = text.split("## Kinds", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| `(\w+)` \| ([^|]+) \|", section, re.M))
    assert list(rows) == list(KIND_NAMES)
    assert {name: rows[name] for name in KINDS} == {name: kind.summary for name, kind in KINDS.items()}


def test_the_kind_decides_claims_parts_and_device_ids(tmp_path: Path) -> None:
    board = RigSpec.model_validate({"name": "lab3", "console": {"url": "/dev/ttyUSB0"}})
    twin = RigSpec.model_validate({"name": "t", "twin": {"device_id": "twin-9"}})
    assert (kind_of(board).claimed, kind_of(twin).claimed) == (True, False)
    assert resource_keys(twin) == [] and resource_keys(board) != []
    assert board.capabilities() == {"console"} and twin.capabilities() == {"console", "power"}
    assert (board.device_id, board.telemetry_device) == ("lab3", None)
    assert (twin.device_id, twin.telemetry_device) == ("twin-9", "twin-9")


def test_a_board_brings_up_what_its_file_names_and_starts_nothing(tmp_path: Path) -> None:
    spec = _load(tmp_path, BOARD)
    rig = Rig(spec, "lab3.yaml", tmp_path)
    rig.start_endpoints()
    assert (rig.console_url, rig.power_resource, rig.twin) == ("rfc2217://lab3:4001", "TCPIP::psu::5025::SOCKET", None)
    assert rig.death() is None and rig.console_if_any is None and rig.power_if_any is None
    rig.close()


def test_a_pool_refuses_a_member_whose_kind_is_not_claimed(tmp_path: Path) -> None:
    (tmp_path / "rigs").mkdir()
    (tmp_path / "rigs" / "twin-ish.yaml").write_text(TWIN, encoding="utf-8")
    (tmp_path / "rigs" / "lab.yaml").write_text("pool: lab\nrigs: [twin-ish]\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_choice_file(tmp_path / "rigs" / "lab.yaml", tmp_path)
    assert "'t' is a twin rig; every worker already gets its own twin, a pool is for benches" in str(info.value)
