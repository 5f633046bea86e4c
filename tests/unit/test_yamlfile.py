from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import BaseModel, ConfigDict, Field

from harness.errors import MAX_PROBLEMS, ConfigError
from harness.fieldtypes import Duration
from harness.yamlfile import parse_yaml, validate


class Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    delay: Duration = 0.0
    count: int = 1


class Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    items: list[Inner] = []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: a\nitems:\n  - delay: 1s\n  - delay: soon\n",
         "f.yaml:4:12: items[1].delay: expected a duration such as '300ms'"),
        ("name: a\nitems:\n  - cuont: 2\n", "f.yaml:3:5: items[0].cuont: unknown field 'cuont'; did you mean 'count'?"),
        ("name: a\nitems:\n  - count: many\n", "f.yaml:3:12: items[0].count: expected a whole number, got 'many'"),
        ("items: []\n", "f.yaml:1:1: name: missing required field 'name'"),
        ("name: a\nitems: 3\n", "f.yaml:2:8: items: expected a list, got 3"),
        ("name: a\nextra: 1\nitems: []\n", "f.yaml:2:1: extra: unknown field 'extra'; expected one of items, name"),
    ],
)
def test_errors_point_at_file_line_column_and_field(text, message):
    with pytest.raises(ConfigError) as info:
        validate(parse_yaml(text, "f.yaml"), Outer)
    assert str(info.value).startswith(message), str(info.value)
    assert "\n" not in str(info.value)


def test_every_problem_is_listed_one_a_line_in_reading_order():
    with pytest.raises(ConfigError) as info:
        validate(parse_yaml("name: a\nitems:\n  - count: x\n  - cuont: 2\n  - delay: soon\n", "f.yaml"), Outer)
    lines = str(info.value).splitlines()
    assert lines[0] == "f.yaml:3:12: items[0].count: expected a whole number, got 'x'"
    assert lines[1] == "f.yaml:4:5: items[1].cuont: unknown field 'cuont'; did you mean 'count'?"
    assert lines[2].startswith("f.yaml:5:12: items[2].delay: expected a duration")
    assert len(lines) == 3
    assert [p.location.line for p in info.value.problems if p.location] == [3, 4, 5]


def test_problems_past_the_cap_are_counted():
    text = "name: a\nitems:\n" + "".join(f"  - count: x{i}\n" for i in range(MAX_PROBLEMS + 3))
    with pytest.raises(ConfigError) as info:
        validate(parse_yaml(text, "f.yaml"), Outer)
    lines = str(info.value).splitlines()
    assert len(lines) == MAX_PROBLEMS + 1
    assert lines[-1] == "f.yaml: ... and 3 more problems"


class Leaf(BaseModel):
    model_config = ConfigDict(extra="forbid")
    threshold: int = 0


class Branch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    leaf: Annotated[Leaf | None, Field(description="optional, annotated")] = None
    leaves: list[Leaf] | None = None


class Tree(BaseModel):
    model_config = ConfigDict(extra="forbid")
    branches: dict[str, int] = {}
    branch: Branch | None = None


@pytest.mark.parametrize(
    ("text", "field", "meant"),
    [
        ("branch:\n  leaf:\n    treshold: 1\n", "branch.leaf.treshold", "threshold"),
        ("branch:\n  leaves:\n    - threshold: 1\n    - threshhold: 2\n", "branch.leaves[1].threshhold", "threshold"),
        ("branch:\n  leavse: []\n", "branch.leavse", "leaves"),
    ],
)
def test_misspelt_keys_get_a_did_you_mean_at_any_depth(text, field, meant):
    with pytest.raises(ConfigError) as info:
        validate(parse_yaml(text, "f.yaml"), Tree)
    assert f"{field}: unknown field" in str(info.value)
    assert f"did you mean {meant!r}?" in str(info.value)


# -- aliases ------------------------------------------------------------------------------------

BOMB = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"{chr(97 + i)}: &{chr(97 + i)} [" + ",".join([f"*{chr(96 + i)}"] * 9) + "]" for i in range(1, 9)]
) + "\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x: &a [*a]\n", "f.yaml:1:8: alias '*a' refers to the node it is inside (anchor '&a' at line 1)"),
        ("name: n\nm: &m\n  k:\n    - *m\n", "f.yaml:4:7: alias '*m' refers to the node it is inside (anchor '&m' at line 2)"),
        (BOMB, "f.yaml:6:8: alias '*e' (anchor '&e' at line 5) expands the file past 100000 nodes"),
    ],
    ids=["self", "nested", "billion-laughs"],
)
def test_recursive_aliases_and_alias_bombs_are_one_line_errors(text, message):
    assert len(BOMB) < 400  # the bomb: a few hundred bytes, a few hundred million nodes
    with pytest.raises(ConfigError) as info:
        parse_yaml(text, "f.yaml")
    assert str(info.value).startswith(message), str(info.value)
    assert "\n" not in str(info.value)


def test_aliases_that_repeat_a_value_still_load():
    doc = parse_yaml("base: &b {count: 2}\nitems: [*b, *b]\nname: x\n", "f.yaml")
    assert doc.data["items"] == [{"count": 2}, {"count": 2}]


def test_an_alias_bomb_stops_before_anything_is_expanded():
    """The refusal comes from sizing nodes while composing: a file of a few thousand nodes that would
    expand to hundreds of millions is refused as soon as the total passes MAX_NODES."""
    text = BOMB.replace("&i [", "&i [*h,") + "z: [" + ",".join(["*i"] * 50) + "]\n"
    with pytest.raises(ConfigError, match=r"expands the file past"):
        parse_yaml(text, "f.yaml")


def test_valid_document_round_trips_units():
    model = validate(parse_yaml("name: a\nitems:\n  - delay: 1h30m\n", "f.yaml"), Outer)
    assert model.items[0].delay == 5400.0
