"""Server-side faults, each observed by a plain http.client download, and journaled as injections."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

from harness.run.journal import Journal, read_journal
from harness.services.artifact_faults import (
    FaultPlan,
    IgnoreRange,
    ServerError,
    SlowBody,
    TruncateBody,
    Unavailable,
)
from harness.services.artifacts import ArtifactServer
from tests.ota.client import download_resuming, fetch

DATA = hashlib.shake_256(b"image v2").digest(256 * 1024)
NEWER = hashlib.shake_256(b"image v3").digest(200 * 1024)


def injections(journal: Journal) -> list[dict[str, object]]:
    journal.flush()
    return [
        r["params"] for r in read_journal(journal.path) if r["kind"] == "injection" and r["action"] == "artifact-fault"
    ]


def test_server_error_every_third_request(server: ArtifactServer) -> None:
    url = server.publish("fw.img", DATA)
    server.set_fault(ServerError(every=3))
    statuses = [fetch(url).status for _ in range(7)]
    assert statuses == [200, 200, 500, 200, 200, 500, 200]
    assert server.wait_requests(7)["faults_fired"] == {"server-error": 2}


def test_unavailable_with_retry_after_for_two_requests(server: ArtifactServer) -> None:
    url = server.publish("fw.img", DATA)
    server.set_fault(Unavailable(retry_after=7), times=2)
    first, second, third = fetch(url), fetch(url), fetch(url)
    assert (first.status, first.headers["retry-after"]) == (503, "7")
    assert second.status == 503
    assert (third.status, third.body) == (200, DATA)


def test_truncated_body_declares_full_length_and_closes_early(server: ArtifactServer, journal: Journal) -> None:
    url = server.publish("fw.img", DATA)
    server.set_fault(TruncateBody(after=5000), times=1)
    cut = fetch(url)
    assert cut.status == 200 and cut.declared == len(DATA)
    assert not cut.complete and cut.body == DATA[:5000]
    assert fetch(url).body == DATA  # times=1: the next one is whole
    server.wait_requests(2)
    journal.flush()
    record = next(r for r in read_journal(journal.path) if r["kind"] == "artifact.request")
    assert (record["bytes"], record["aborted"], record["faults"]) == (5000, True, ["truncate-body"])


def test_body_faults_wait_for_a_request_with_a_body(server: ArtifactServer) -> None:
    url = server.publish("fw.img", DATA)
    server.set_fault(TruncateBody(after=10), times=1)
    head = fetch(url, method="HEAD")
    assert (head.status, head.declared) == (200, len(DATA))
    assert not fetch(url).complete  # the one truncation was not spent on the HEAD


def test_truncated_range_response(server: ArtifactServer) -> None:
    url = server.publish("fw.img", DATA)
    server.set_fault(TruncateBody(after=10))
    cut = fetch(url, headers={"Range": "bytes=100-"})
    assert cut.status == 206 and cut.declared == len(DATA) - 100
    assert (cut.complete, cut.body) == (False, DATA[100:110])


def test_resumed_download_across_a_cut_and_a_500_gets_the_exact_bytes(server: ArtifactServer) -> None:
    url = server.publish("fw.img", DATA)
    server.set_fault(ServerError(every=2))
    server.set_fault(TruncateBody(after=100_000), times=1)
    done = download_resuming(url)
    assert done.data == DATA
    assert done.statuses == [200, 500, 206]
    assert done.restarts == 0
    assert server.wait_requests(3)["resumed"] == 2


def test_ignored_range_answers_200_with_the_whole_body(server: ArtifactServer) -> None:
    url = server.publish("fw.img", DATA)
    server.set_fault(ServerError(every=1000))  # stays on after the block below
    with server.fault(IgnoreRange()):
        got = fetch(url, headers={"Range": "bytes=100-199"})
        assert (got.status, got.body) == (200, DATA)
        assert "content-range" not in got.headers and "accept-ranges" not in got.headers
    assert fetch(url, headers={"Range": "bytes=100-199"}).status == 206  # the block ended its fault
    assert [f["fault"] for f in server.statistics()["active_faults"]] == ["server-error"]


def test_a_client_resuming_against_ignored_range_restarts(server: ArtifactServer) -> None:
    url = server.publish("fw.img", DATA)
    server.set_fault(TruncateBody(after=1000), times=1)
    server.set_fault(IgnoreRange())
    done = download_resuming(url)
    assert (done.data, done.statuses, done.restarts) == (DATA, [200, 200], 1)


def test_image_replaced_mid_download_gets_a_new_etag(server: ArtifactServer, journal: Journal) -> None:
    url = server.publish("fw.img", DATA)
    server.set_fault(TruncateBody(after=4096), times=1)
    partial = fetch(url)
    assert not partial.complete
    old_etag = partial.headers["etag"]
    server.replace("fw.img", NEWER)
    resumed = fetch(url, headers={"Range": "bytes=4096-", "If-Range": old_etag})
    assert resumed.status == 200 and resumed.body == NEWER
    assert resumed.headers["etag"] != old_etag
    replaced = [p for p in injections(journal) if p["fault"] == "replace"]
    assert replaced == [
        {"fault": "replace", "name": "fw.img", "old_etag": old_etag, "new_etag": resumed.headers["etag"]}
    ]


def test_slow_body_still_delivers_every_byte(server: ArtifactServer, journal: Journal) -> None:
    url = server.publish("small.img", DATA[:40_000])
    server.set_fault(SlowBody(rate=400_000))
    got = fetch(url)
    assert (got.status, got.body) == (200, DATA[:40_000])
    server.wait_requests(1)
    journal.flush()
    record = [r for r in read_journal(journal.path) if r["kind"] == "artifact.request"][-1]
    assert record["faults"] == ["slow-body"]


def test_stop_during_a_slow_download_ends_it(tmp_path: Path) -> None:
    server = ArtifactServer(tmp_path, shutdown_timeout=0.2).start()
    try:
        url = server.publish("fw.img", DATA)
        server.set_fault(SlowBody(rate=10_000))  # would take 26 s
        result: list[object] = []

        def download() -> None:
            result.append(fetch(url, timeout=10))

        worker = threading.Thread(target=download)
        worker.start()
        server.wait_in_flight(1)
    finally:
        server.stop()
    worker.join(15)
    assert not worker.is_alive(), "download still running after the server stopped"
    (got,) = result
    assert not got.complete and len(got.body) < len(DATA)  # type: ignore[attr-defined]


def test_faults_only_hit_the_names_they_target(server: ArtifactServer) -> None:
    a, b = server.publish("a.img", b"A" * 100), server.publish("b.img", b"B" * 100)
    server.set_fault(ServerError(), names=["a.img"])
    assert (fetch(a).status, fetch(b).status) == (500, 200)


def test_fault_switches_are_journaled_as_injections(server: ArtifactServer, journal: Journal) -> None:
    server.set_fault(ServerError(every=2), names=["fw.img"], times=3)
    server.set_fault(Unavailable(retry_after=5))
    handle = server.set_fault(IgnoreRange())
    server.clear_fault(handle)
    server.clear_fault(handle)  # already off: nothing journaled
    server.clear_faults()
    server.clear_faults()  # nothing active: nothing journaled
    assert injections(journal) == [
        {"fault": "server-error", "every": 2, "names": ["fw.img"], "times": 3},
        {"fault": "unavailable", "retry_after": 5, "names": None, "times": None},
        {"fault": "ignore-range", "names": None, "times": None},
        {"fault": "clear", "cleared": "ignore-range"},
        {"fault": "clear"},
    ]
    assert server.statistics()["active_faults"] == []


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ServerError(every=0), "every: expected an integer of 1 or more"),
        (lambda: Unavailable(retry_after=-1), "retry_after: expected 0 or more"),
        (lambda: TruncateBody(after=-5), "after: expected 0 or more bytes"),
        (lambda: SlowBody(rate=0), "rate: expected more than 0"),
        (lambda: FaultPlan().add(IgnoreRange(), times=0), "times: expected an integer of 1 or more"),
    ],
)
def test_bad_fault_parameters_name_the_field(make: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()  # type: ignore[operator]


def test_an_error_status_wins_over_body_faults() -> None:
    plan = FaultPlan()
    plan.add(Unavailable(retry_after=2), times=1)
    plan.add(TruncateBody(after=1))
    first, second = plan.decide("x"), plan.decide("x")
    assert (first.status, first.truncate_after, first.fired) == (503, None, ["unavailable"])
    assert (second.status, second.truncate_after, second.fired) == (None, 1, ["truncate-body"])
