"""Topic names, filters and matching (MQTT 3.1.1 §4.7), the examples of the standard among them."""

from __future__ import annotations

import re

import pytest

from harness.sim.topics import TopicError, check_filter, check_topic, matches


@pytest.mark.parametrize(
    ("topic_filter", "name", "expected"),
    [
        ("sport/tennis/player1", "sport/tennis/player1", True),
        ("sport/tennis/player1", "sport/tennis/player2", False),
        ("sport/tennis/player1", "sport/tennis", False),
        # '#' (§4.7.1.2): any number of levels, the parent level included
        ("sport/tennis/player1/#", "sport/tennis/player1", True),
        ("sport/tennis/player1/#", "sport/tennis/player1/ranking", True),
        ("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", True),
        ("sport/#", "sport", True),
        ("sport/#", "sports", False),
        ("#", "sport/tennis", True),
        ("#", "/", True),
        # '+' (§4.7.1.3): exactly one level, which may be empty
        ("sport/tennis/+", "sport/tennis/player1", True),
        ("sport/tennis/+", "sport/tennis/player1/tracker", False),
        ("sport/+", "sport", False),
        ("sport/+", "sport/", True),
        ("+", "sport", True),
        ("+", "/finance", False),
        ("+/+", "/finance", True),
        ("/+", "/finance", True),
        ("+/tennis/#", "sport/tennis/player1", True),
        ("devices/+/telemetry", "devices/dev-1/telemetry", True),
        ("devices/+/telemetry", "devices/dev-1/status", False),
        ("devices/+/status", "devices/a/b/status", False),
        # levels are case sensitive and '/' separates empty levels
        ("Sport", "sport", False),
        ("a//b", "a//b", True),
        ("a/+/b", "a//b", True),
        # '$' topics (§4.7.2): no wildcard in the first level matches them
        ("#", "$SYS/broker/uptime", False),
        ("+/monitor/Clients", "$SYS/monitor/Clients", False),
        ("$SYS/#", "$SYS/monitor/Clients", True),
        ("$SYS/monitor/+", "$SYS/monitor/Clients", True),
        ("a/#", "a/$b", True),
    ],
)
def test_filter_matching(topic_filter: str, name: str, expected: bool) -> None:
    assert matches(check_filter(topic_filter), check_topic(name)) is expected


@pytest.mark.parametrize(
    ("topic_filter", "rule"),
    [
        ("", "at least one character"),
        ("sport/tennis#", "whole level"),
        ("sport/#/ranking", "last level"),
        ("sport+", "whole level"),
        ("a/\0", "U+0000"),
        ("x" * 65536, "65535 bytes"),
    ],
)
def test_invalid_filters_are_refused_naming_the_rule(topic_filter: str, rule: str) -> None:
    with pytest.raises(TopicError, match=re.escape(rule)):
        check_filter(topic_filter)


@pytest.mark.parametrize("name", ["", "a/+/b", "a/#", "#", "a\0"])
def test_invalid_topic_names_are_refused(name: str) -> None:
    with pytest.raises(TopicError):
        check_topic(name)


@pytest.mark.parametrize("topic_filter", ["#", "+", "+/+", "/", "a/+/#", "$SYS/#", "é/ü"])
def test_valid_filters_pass(topic_filter: str) -> None:
    assert check_filter(topic_filter) == topic_filter
