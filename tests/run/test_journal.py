from __future__ import annotations

import gzip
import json
import threading

import pytest

from harness.run.journal import Journal, compress_journal, journal_files, read_journal, read_run


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


def _three(path):
    with Journal(path, compress_on_close=True) as j:
        for i in range(3):
            j.record("mark", t=float(i), i=i)
    return j


def test_a_run_journal_is_gzipped_when_it_closes_and_every_reader_takes_it(tmp_path):
    j = _three(tmp_path / "journal.jsonl")
    assert j.path == tmp_path / "journal.jsonl.gz"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["journal.jsonl.gz"]  # no plain copy, no temp file
    with gzip.open(j.path, "rt") as fh:  # a plain gzip: zcat reads it too
        assert [json.loads(line)["i"] for line in fh] == [0, 1, 2]
    assert [r["i"] for r in read_journal(j.path)] == [0, 1, 2]
    assert [r["i"] for r in read_run(tmp_path)] == [0, 1, 2]
    assert journal_files(tmp_path) == [j.path]


def test_a_journal_without_compress_on_close_stays_plain(tmp_path):
    with Journal(tmp_path / "journal.jsonl") as j:
        j.record("mark")
    assert j.path.name == "journal.jsonl" and j.path.is_file()


def test_a_torn_gzip_journal_yields_the_records_before_the_cut(tmp_path):
    path = tmp_path / "journal.jsonl"
    with Journal(path, compress_on_close=True) as j:
        for i in range(2000):
            j.record("console", line=f"line {i} " + "x" * (i % 97), i=i)
    data = j.path.read_bytes()
    j.path.write_bytes(data[: len(data) // 2])  # a copy, or a kill, that stopped half-way
    recs = list(read_journal(j.path))
    assert 0 < len(recs) < 2000
    assert [r["i"] for r in recs] == list(range(len(recs)))  # in order, none invented, none garbled
    assert [r["i"] for r in read_run(tmp_path)] == list(range(len(recs)))


def test_a_reused_run_folder_keeps_both_sessions_records(tmp_path):
    _three(tmp_path / "journal.jsonl")
    with Journal(tmp_path / "journal.jsonl", compress_on_close=True) as j:
        j.record("mark", t=9.0, i=9)
    assert [r["i"] for r in read_run(tmp_path)] == [0, 1, 2, 9]
    assert [p.name for p in tmp_path.iterdir()] == ["journal.jsonl.gz"]


def test_read_run_takes_closed_and_still_open_journals_together(tmp_path):
    _three(tmp_path / "journal-gw0.jsonl")  # a worker that finished
    live = Journal(tmp_path / "journal-gw1.jsonl", compress_on_close=True)  # one still running (or killed)
    try:
        live.record("mark", t=1.5, i=15)
        live.flush()
        assert [r["i"] for r in read_run(tmp_path)] == [0, 1, 15, 2]
        assert [p.name for p in journal_files(tmp_path)] == ["journal-gw0.jsonl.gz", "journal-gw1.jsonl"]
    finally:
        live.close()


def test_compress_journal_leaves_the_plain_file_when_it_fails(tmp_path, monkeypatch):
    path = tmp_path / "journal.jsonl"
    with Journal(path) as j:
        j.record("mark", i=1)

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("harness.run.journal.os.fsync", boom)
    with pytest.raises(OSError):
        compress_journal(path)
    assert [p.name for p in tmp_path.iterdir()] == ["journal.jsonl"]
    assert [r["i"] for r in read_run(tmp_path)] == [1]
