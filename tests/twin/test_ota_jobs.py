"""The job document parser: every payload is a job, a refusal with a one-line reason, or nothing -- never a crash.

A job is retained on the broker, so a payload that crashed the parser would crash the firmware again at
every reconnect. The fuzz cases feed arbitrary bytes and arbitrary JSON in the shape of a job.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.twin.ota_jobs import FIELDS, BadJob, JobRequest, parse_job

GOOD = {"job_id": "j-1", "version": "2.0.0", "url": "http://h:8080/fw.img", "size": 300, "sha256": "ab" * 32}
URL_REASON = "job: url expects printable ASCII without spaces, quotes or backslashes"


def check_reason(result: object) -> None:
    if isinstance(result, BadJob):
        assert result.reason.startswith("job: "), result
        assert result.reason.isprintable() and len(result.reason) <= 160, result  # one line, bounded


@pytest.mark.parametrize(
    "payload",
    [b"[" * 100_000, b'{"a":' * 5_000, b"[" * 999 + b"]" * 999, b'{"job_id": "j-9", "url": ' + b"[" * 50_000],
    ids=["arrays-100k", "objects-5k", "arrays-999-closed", "named-then-nested"],
)
def test_a_deeply_nested_document_is_a_bad_job_not_a_crash(payload: bytes) -> None:
    result = parse_job(payload)
    assert isinstance(result, BadJob), result
    check_reason(result)


def test_a_document_larger_than_a_job_can_be_is_refused_unread() -> None:
    result = parse_job(json.dumps({**GOOD, "url": "http://h/" + "a" * 10_000}).encode())
    assert isinstance(result, BadJob) and result.reason.startswith("job: document of "), result
    check_reason(result)


@pytest.mark.parametrize(
    "url",
    [
        'http://h/fw".img',
        "http://h/fw\\.img",
        "http://h/fw.img\r\nOTA committed 9.9.9",
        "http://h/fw.img\nX: y",
        "http://h/f w.img",
        "http://h/fw\t.img",
        "http://h/fw\x7f.img",
        "http://h/fw\x00.img",
        "http://h/f\u00e9.img",
        "http://h/" + "\u00e9" * 500,
        "",
    ],
)
def test_a_url_that_is_not_plain_printable_ascii_is_refused(url: str) -> None:
    result = parse_job(json.dumps({**GOOD, "url": url}).encode())
    assert isinstance(result, BadJob), result
    assert result.reason.startswith(URL_REASON) and result.job_id == "j-1", result
    check_reason(result)


def test_every_printable_character_but_space_quote_and_backslash_is_a_url_character() -> None:
    allowed = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"\\')
    result = parse_job(json.dumps({**GOOD, "url": "http://h/" + allowed}).encode())
    assert isinstance(result, JobRequest) and result.url.endswith(allowed), result


def test_an_unknown_field_with_a_huge_name_gives_a_short_reason() -> None:
    result = parse_job(json.dumps({**GOOD, "x" * 1000: 1}).encode())
    assert isinstance(result, BadJob) and "unknown field" in result.reason, result
    check_reason(result)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
JOBISH = st.dictionaries(st.sampled_from([*FIELDS, "colour"]), JSON | st.sampled_from(list(GOOD.values())))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(payload: bytes) -> None:
    result = parse_job(payload)
    assert result is None if not payload else isinstance(result, BadJob | JobRequest)
    check_reason(result)


@settings(max_examples=300, deadline=None)
@given(JOBISH | JSON)
def test_arbitrary_json_in_the_shape_of_a_job_never_raises(body: object) -> None:
    result = parse_job(json.dumps(body).encode())
    assert isinstance(result, BadJob | JobRequest)
    check_reason(result)
