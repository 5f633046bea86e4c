"""A run that deploys OTA images keeps them by digest, not by bytes, and gzips its journal when it ends.

One real run of the CI scenario ``ota-3g`` (a 1 MiB signed image over the impairment point, on the twin):
the run folder holds no image file, the journal names each published image by its SHA-256 (the same
digest the job carried), and the journal is ``journal.jsonl.gz`` that every report reader takes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from harness.report.rundata import load_run
from harness.run.journal import read_run

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "ci" / "ota-3g.yaml"
IMAGE_SIZE = 1024 * 1024  # the scenario's image: 1 MiB of payload


def test_a_run_keeps_its_images_by_digest_and_its_journal_gzipped(pytester: pytest.Pytester, tmp_path: Path) -> None:
    (pytester.path / "scenarios").mkdir()
    (pytester.path / "scenarios" / "ota.yaml").write_text(SCENARIO.read_text(encoding="utf-8"), encoding="utf-8")
    result = pytester.runpytest_subprocess("scenarios", "--reports-dir", str(tmp_path), "--run-id", "ota",
                                           "-p", "no:cacheprovider")  # fmt: skip
    result.assert_outcomes(passed=1)
    folder = tmp_path / "ota"
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert (folder / "journal.jsonl.gz").is_file() and not (folder / "journal.jsonl").exists()
    big = [(p.relative_to(folder).as_posix(), p.stat().st_size) for p in files if p.stat().st_size >= IMAGE_SIZE]
    assert big == [], f"the run folder holds image-sized files: {big}"
    records = read_run(folder)
    published = [r for r in records if r["kind"] == "artifact.published"]
    jobs = [r for r in records if r["kind"] == "ota" and r.get("phase") == "job"]
    assert published and jobs, "no image was published or no job sent"
    assert {j["sha256"] for j in jobs} <= {p["sha256"] for p in published}
    assert all(p["size"] > IMAGE_SIZE and len(p["sha256"]) == len(hashlib.sha256().hexdigest()) for p in published)
    assert load_run(folder).records == [r for r in records if isinstance(r.get("t"), int | float)]
