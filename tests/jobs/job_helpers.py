"""Helpers of the archive-job tests: run the CLI, read a job's output back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path


def cli(*args: str | os.PathLike, **kwargs) -> subprocess.CompletedProcess:
    """Run ``python -m vidsort ARGS`` to the end; text output captured."""
    return subprocess.run([sys.executable, "-m", "vidsort", *map(str, args)],
                          capture_output=True, text=True, timeout=300, **kwargs)


def start_cli(*args: str | os.PathLike, **kwargs) -> subprocess.Popen:
    """Start ``python -m vidsort ARGS`` in a session of its own (so it can be killed whole)."""
    return subprocess.Popen([sys.executable, "-m", "vidsort", *map(str, args)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **kwargs)


def read_output(out: Path) -> list[dict]:
    """Every record of a job's output (.jsonl, .parquet or a folder of parts), checking that
    each JSON line is whole."""
    if out.suffix == ".jsonl":
        text = out.read_text(encoding="utf-8")
        assert not text or text.endswith("\n"), "torn last line left in the output"
        return [json.loads(line) for line in text.splitlines()]
    import pyarrow.parquet as pq
    from vidsort.jobs.arrow import to_records

    if out.is_dir():
        parts = sorted(out.glob("part-*.parquet"))
        return [r for part in parts for r in to_records(pq.read_table(part))]
    return to_records(pq.read_table(out))


def video_counts(out: Path) -> Counter:
    """How many records each video has in an output."""
    return Counter(record["video"] for record in read_output(out))


def without_timings(records: list[dict]) -> list[dict]:
    """Records sorted by video, without the timings (which differ from run to run)."""
    return sorted(({k: v for k, v in r.items() if k != "timings"} for r in records),
                  key=lambda r: r["video"])
