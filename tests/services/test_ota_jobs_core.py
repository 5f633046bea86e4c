"""The OTA job channel's core on a deterministic clock, and the one wire contract both ends use."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.run.journal import Journal, read_journal
from harness.run.manual_clock import DEFAULT_EPOCH, ManualClock
from harness.services.ota_jobs_core import OtaChannelError, OtaJobsCore, parse_status_report
from harness.twin.ota_jobs import JobRequest, encode_job, encode_status, parse_job

JOB = {"job_id": "j-1", "version": "2.0.0", "url": "http://127.0.0.1:1/fw.img", "size": 1024, "sha256": "ab" * 32}


class Recorded(OtaJobsCore):
    """The core with a transport that keeps what it would publish (or refuses, like a broker that is down)."""

    def __init__(self, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.sent: list[tuple[str, bytes]] = []
        self.down = False

    def send(self, topic: str, payload: bytes) -> None:
        if self.down:
            raise OtaChannelError(f"the broker did not acknowledge the publish on {topic}")
        self.sent.append((topic, payload))


def status(phase: str, percent: int = 0, *, ts: float = DEFAULT_EPOCH) -> bytes:
    return encode_status("j-1", phase, "2.0.0", percent, "", fw="1.0.0", boot_id="b1", ts=ts)


def test_a_job_the_deployer_encodes_is_the_job_the_device_parses() -> None:
    assert parse_job(encode_job(JOB)) == JobRequest(**JOB)  # type: ignore[arg-type]
    report = parse_status_report("dev-1", status("downloading", 40), arrival=DEFAULT_EPOCH + 1)
    assert (report.phase, report.percent, report.version, report.fw, report.ts) == (
        "downloading", 40, "2.0.0", "1.0.0", DEFAULT_EPOCH)  # fmt: skip


def test_the_outcome_wait_ends_at_the_instant_the_outcome_arrives(tmp_path: Path) -> None:
    clock = ManualClock()
    journal = Journal(tmp_path / "journal.jsonl", clock=clock)
    core = Recorded(journal)
    core.publish_job("dev-1", JOB)
    assert core.sent == [("devices/dev-1/ota/job", encode_job(JOB))]
    assert core.open_jobs() == {"dev-1": "j-1"}
    topic = "devices/dev-1/ota/status"
    for at, phase in ((5.0, "downloading"), (40.0, "rebooting"), (55.0, "trial"), (70.0, "committed")):
        clock.call_at(at, lambda phase=phase: core.take(topic, status(phase, ts=clock.wall())))
    outcome = core.wait_outcome("dev-1", "j-1", timeout=600)
    assert outcome is not None and outcome.phase == "committed" and clock.now() == 70.0
    assert [r.phase for r in core.reports("dev-1", "j-1")] == ["downloading", "rebooting", "trial", "committed"]
    assert core.clear_job("dev-1", "j-1") and core.open_jobs() == {}
    assert core.sent[-1] == ("devices/dev-1/ota/job", b"")
    journal.flush()
    kinds = [r["kind"] for r in read_journal(journal.path)]
    assert kinds == ["ota.job", "ota.status", "ota.status", "ota.status", "ota.status", "ota.job.cleared"]
    journal.close()


def test_no_outcome_within_the_timeout_is_none_at_the_timeout_instant() -> None:
    clock = ManualClock()
    core = Recorded(clock=clock)
    clock.call_at(5.0, lambda: core.take("devices/dev-1/ota/status", status("downloading", 10)))
    assert core.wait_outcome("dev-1", "j-1", timeout=300) is None
    assert clock.now() == 300.0


@pytest.mark.parametrize(
    ("raw", "error"),
    [(b"{", "ota status: expected a JSON object"), (b'{"phase": "done"}', "ota status: phase expected one of"),
     (b'{"phase": "downloading", "percent": 101}', "ota status: percent expected a whole number 0-100")],
)  # fmt: skip
def test_a_malformed_report_is_journalled_never_raised(tmp_path: Path, raw: bytes, error: str) -> None:
    clock = ManualClock()
    journal = Journal(tmp_path / "journal.jsonl", clock=clock)
    core = Recorded(journal)
    core.take("devices/dev-1/ota/status", raw)
    journal.flush()
    (rec,) = read_journal(journal.path)
    assert rec["kind"] == "ota.status.malformed" and rec["error"].startswith(error) and rec["device"] == "dev-1"
    assert core.counts()["malformed"] == 1
    journal.close()


def test_a_job_that_cannot_be_cleared_stays_open_and_is_journalled() -> None:
    core = Recorded()
    core.publish_job("dev-1", JOB)
    core.down = True
    assert core.clear_open_jobs() == []
    assert core.open_jobs() == {"dev-1": "j-1"}
    core.down = False
    assert core.clear_open_jobs() == ["dev-1"]
