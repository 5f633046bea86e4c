"""Every malformed scenario gives its one-line error (file:line:col: field: expected), never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.errors import ConfigError
from harness.scenario.loader import load_scenario, parse_scenario

HERE = Path(__file__).parent / "malformed"
EXPECTED = {
    line.split(":", 1)[0]: line
    for line in (HERE / "expected.txt").read_text(encoding="utf-8").splitlines()
    if line.strip()
}
FILES = sorted(HERE.glob("*.yaml"))


def test_corpus_is_large_and_every_file_has_an_expectation():
    assert len(FILES) >= 30
    assert sorted(p.name for p in FILES) == sorted(EXPECTED)


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_malformed_file_gives_its_one_line_error(path: Path):
    with pytest.raises(ConfigError) as info:
        load_scenario(path, display_name=path.name)
    message = str(info.value)
    assert message == EXPECTED[path.name]
    assert "\n" not in message
    assert message.startswith(f"{path.name}:"), "the message must start with file:line:col"


# -- fuzzing ------------------------------------------------------------------------------------

KEYS = ["scenario", "description", "requires", "seed", "duration", "network", "steps", "events", "checks",
        "power", "console", "wait", "mark", "repeat", "times", "do", "at", "every", "random", "jitter",
        "off", "send", "expect", "command", "timeout", "profile", "latency", "loss", "until", "count", "x"]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
    st.sampled_from(["on", "off", "cycle", "5s", "-1s", "3g", "2%", "150%", "reboot", "power-cut",
                     "heap.slope > -1B/h", "x == 1", "", "BOOT-DONE", "1h30m", "[", "{"]),
    st.text(max_size=12),
)
DOCS = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.sampled_from(KEYS), children, max_size=5),
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=st.dictionaries(st.sampled_from(KEYS), DOCS, max_size=6))
def test_loader_never_raises_anything_but_a_config_error(doc):
    import yaml

    text = yaml.safe_dump(doc, allow_unicode=True)
    try:
        parse_scenario(text, "fuzz.yaml")
    except ConfigError as exc:
        assert "\n" not in str(exc)
        assert str(exc).startswith("fuzz.yaml")


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=200))
def test_arbitrary_text_never_yields_a_traceback(text):
    try:
        parse_scenario(text, "fuzz.yaml")
    except ConfigError as exc:
        assert "\n" not in str(exc)
