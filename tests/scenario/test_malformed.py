"""Every malformed scenario gives its errors, one line per problem (file:line:col: field: expected), never a
traceback. ``malformed/expected.txt`` holds every line each file gives, each line starting with its file's name."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.errors import MAX_PROBLEMS, ConfigError
from harness.scenario.loader import load_scenario, parse_scenario

HERE = Path(__file__).parent / "malformed"


def _expected() -> dict[str, str]:
    """File name -> the lines of its error (every line starts with the file's name)."""
    out: dict[str, list[str]] = {}
    for line in (HERE / "expected.txt").read_text(encoding="utf-8").splitlines():
        if line.strip():
            out.setdefault(line.split(":", 1)[0], []).append(line)
    return {name: "\n".join(lines) for name, lines in out.items()}


EXPECTED = _expected()
FILES = sorted(HERE.glob("*.yaml"))


def test_corpus_is_large_and_every_file_has_an_expectation():
    assert len(FILES) >= 30
    assert sorted(p.name for p in FILES) == sorted(EXPECTED)


def _problem_lines(message: str, name: str) -> None:
    """Every line is one problem at file:line:col (the last may count problems not listed)."""
    lines = message.splitlines()
    assert all(line.startswith(f"{name}:") for line in lines), f"each line must start with the file: {message!r}"
    assert len(lines) <= MAX_PROBLEMS + 1


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_malformed_file_gives_one_line_per_problem(path: Path):
    with pytest.raises(ConfigError) as info:
        load_scenario(path, display_name=path.name)
    message = str(info.value)
    assert message == EXPECTED[path.name]
    _problem_lines(message, path.name)


def test_every_problem_of_a_file_is_listed_with_a_did_you_mean_at_any_depth():
    with pytest.raises(ConfigError) as info:
        load_scenario(HERE / "several-problems.yaml", display_name="several-problems.yaml")
    problems = info.value.problems
    assert len(problems) == 5
    assert [p.location.field for p in problems if p.location] == [
        "seed", "steps[0].power.actoin", "steps[1].repeat.steps[0].wait.untl", "events[0].evrey",
        "checks[0].continous",
    ]
    assert all("did you mean" in p.detail for p in problems[1:])
    assert "missing required field" not in str(info.value), "a misspelt required key is one problem, not two"


def test_problems_past_the_cap_are_counted_not_listed():
    with pytest.raises(ConfigError) as info:
        load_scenario(HERE / "many-problems.yaml", display_name="many-problems.yaml")
    lines = str(info.value).splitlines()
    assert len(lines) == MAX_PROBLEMS + 1
    assert lines[-1] == "many-problems.yaml: ... and 5 more problems"


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
        _problem_lines(str(exc), "fuzz.yaml")


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=200))
def test_arbitrary_text_never_yields_a_traceback(text):
    try:
        parse_scenario(text, "fuzz.yaml")
    except ConfigError as exc:
        _problem_lines(str(exc), "fuzz.yaml")
