"""The run's data as tables for pandas users: CSV always, Parquet when pyarrow is installed.

Written to ``<run>/export/``: ``telemetry`` (one row per message), ``windows`` (rate and latency per
window), ``power`` (supply readings), ``events`` (every record but telemetry and console, nested
fields as JSON text), ``console``, ``tests``, ``checks``, ``steps`` and ``metrics``. Parquet files are
zstd-compressed; the console table, most of a run's bytes, is written as ``console.csv.gz``, the
other tables as plain CSV for spreadsheets.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd

from harness.report.analysis import Analysis, metrics
from harness.report.frames import power_frame, records_frame

EXPORT_DIR = "export"
PARQUET_COMPRESSION = "zstd"  # pyarrow always has it; smaller than the default snappy, as fast to read
GZIP_CSV = frozenset({"console"})  # the console log is most of a run's bytes: console.csv.gz (pandas reads it as is)


def tables(a: Analysis) -> dict[str, pd.DataFrame]:
    """Every exported table by name."""
    recs = a.run.records
    kinds = {str(r.get("kind")) for r in recs} - {"telemetry", "console"}
    tests = pd.DataFrame(
        a.run.results.get("tests", []) or [], columns=["test", "outcome", "phase", "duration"]
    )
    return {
        "telemetry": a.telemetry,
        "windows": a.windows,
        "power": power_frame(recs),
        "events": records_frame(recs, kinds),
        "console": records_frame(recs, ["console"]),
        "tests": tests,
        "checks": pd.DataFrame(
            a.checks, columns=["scenario", "name", "metric", "op", "expected", "observed", "passed"]
        ).astype({"expected": str, "observed": str}),
        "steps": records_frame(a.steps),
        "metrics": pd.DataFrame(
            [
                {
                    "metric": k,
                    "value": v if isinstance(v, int | float) else None,
                    "text": None if isinstance(v, int | float) else v,
                }
                for k, v in metrics(a).items()
            ],
            columns=["metric", "value", "text"],
        ),
    }


def parquet_available() -> bool:
    return importlib.util.find_spec("pyarrow") is not None


def export(a: Analysis, out: Path | None = None) -> list[Path]:
    """Write every table as CSV (and Parquet if possible) into ``out`` (default ``<run>/export``)."""
    out = out or a.run.folder / EXPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    parquet = parquet_available()
    written = []
    for name, frame in tables(a).items():
        csv = out / (f"{name}.csv.gz" if name in GZIP_CSV else f"{name}.csv")
        stale = out / f"{name}.csv"
        if csv != stale:
            stale.unlink(missing_ok=True)  # an export made before this table was gzipped
        frame.to_csv(csv, index=False, compression={"method": "gzip", "mtime": 0} if name in GZIP_CSV else None)
        written.append(csv)
        if parquet:
            pq = out / f"{name}.parquet"
            frame.to_parquet(pq, index=False, compression=PARQUET_COMPRESSION)
            written.append(pq)
    return written
