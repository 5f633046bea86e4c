from __future__ import annotations

import json
import threading

from harness.report.journal import Journal, read_journal, read_run


def test_records_carry_kind_and_times_and_survive_a_torn_last_line(tmp_path):
    path = tmp_path / "journal.jsonl"
    with Journal(path, run_id="r1", worker="gw0") as j:
        j.record("console", source="dut", line="BOOT-DONE")
        j.record("power", action="off", channel=1)
    with open(path, "a") as fh:  # a writer killed mid-record
        fh.write('{"t": 1, "kind": "tel')
    recs = list(read_journal(path))
    assert [r["kind"] for r in recs] == ["console", "power"]
    assert recs[0]["line"] == "BOOT-DONE" and recs[0]["worker"] == "gw0"
    assert recs[0]["t"] <= recs[1]["t"]


def test_records_are_on_disk_before_close(tmp_path):
    """The flusher thread writes within a fraction of a second: a crashed run keeps its records."""
    path = tmp_path / "journal.jsonl"
    j = Journal(path)
    try:
        j.record("step", name="one")
        j.flush()
        assert json.loads(path.read_text().splitlines()[0])["name"] == "one"
    finally:
        j.close()


def test_concurrent_writers_never_interleave_lines(tmp_path):
    path = tmp_path / "journal.jsonl"
    j = Journal(path)

    def write(n: int) -> None:
        for i in range(500):
            j.record("console", source=f"w{n}", line="x" * 200, i=i)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    j.close()
    recs = list(read_journal(path))
    assert len(recs) == 2000
    assert j.record("late") is not None  # recording after close is a no-op, not a crash


def test_read_run_merges_worker_journals_in_time_order(tmp_path):
    for worker, times in (("gw0", [1.0, 3.0]), ("gw1", [2.0, 4.0])):
        with Journal(tmp_path / f"journal-{worker}.jsonl", worker=worker) as j:
            for t in times:
                j.record("mark", t=t)
    assert [r["t"] for r in read_run(tmp_path)] == [1.0, 2.0, 3.0, 4.0]
