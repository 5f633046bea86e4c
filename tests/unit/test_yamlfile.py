from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict

from harness.errors import ConfigError
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


def test_several_problems_are_counted_in_the_one_line():
    with pytest.raises(ConfigError, match=r"\(and 1 more problem\)$"):
        validate(parse_yaml("name: a\nitems:\n  - count: x\n  - count: y\n", "f.yaml"), Outer)


def test_valid_document_round_trips_units():
    model = validate(parse_yaml("name: a\nitems:\n  - delay: 1h30m\n", "f.yaml"), Outer)
    assert model.items[0].delay == 5400.0
