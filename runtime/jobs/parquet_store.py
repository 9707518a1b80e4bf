"""Parquet outputs: a folder of part files, or one ``.parquet`` file built from parts.

A part is written as ``.part-NNNNNN.parquet.tmp``, fsync'ed, renamed to ``part-NNNNNN.parquet``
and the folder fsync'ed: after a SIGKILL a part is whole or absent, never unreadable. Leftover
``.tmp`` files of a killed job are removed when the job resumes.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vidsort.errors import first_line
from vidsort.jobs.arrow import ALWAYS, conform, pa, schema, to_records, to_table
from vidsort.jobs.records import FileKey, is_error, record_key
from vidsort.jobs.store import DoneIndex, JobError, fsync_path, lock, refuse_existing

PART = re.compile(r"part-(\d+)\.parquet")
#: rows per row group when parts are merged into one file
MERGE_ROWS = 65536


def _pq():
    pa()  # the one-line message names the extra when pyarrow is missing
    import pyarrow.parquet as pq

    return pq


def write_atomic(table, path: Path) -> None:
    """Write ``table`` to ``path`` so that ``path`` is whole or absent whatever happens."""
    tmp = path.with_name(f".{path.name}.tmp")
    _pq().write_table(table, tmp)
    fsync_path(tmp)
    os.replace(tmp, path)
    fsync_path(path.parent)


def iter_batches(path: Path, columns: list[str] | None = None) -> Iterator[Any]:
    """The record batches of one Parquet file of a job, streamed (bounded memory); raises
    `JobError` if the file is unreadable."""
    try:
        yield from _pq().ParquetFile(path).iter_batches(batch_size=MERGE_ROWS, columns=columns)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError ...
        raise JobError(f"{path}: not a readable Parquet file of a vidsort job: "
                       f"{first_line(exc)}") from None


def iter_keys(path: Path) -> Iterator[tuple[FileKey, bool]]:
    """``(FileKey, is_error)`` of every record in one Parquet file of a job."""
    for batch in iter_batches(path, columns=["video", "size", "mtime", "error"]):
        for record in to_records(pa().Table.from_batches([batch])):
            yield record_key(record), is_error(record)


class PartsDirStore:
    """A folder of ``part-NNNNNN.parquet`` files, one per written batch."""

    batch_records = 1024
    batch_seconds = 60.0

    def __init__(self, path: Path, resume: bool):
        self.path = path
        if path.is_dir() and any(path.iterdir()) and not resume:
            raise refuse_existing(path, "a non-empty directory")
        self.created = not path.exists()
        path.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_RDONLY)
        try:
            lock(self._fd, path)
        except BaseException:
            os.close(self._fd)
            raise
        for stale in path.glob(".part-*.parquet.tmp"):  # a killed job's unfinished part
            stale.unlink()
        self._next = max((n for n, _ in self.parts()), default=-1) + 1

    def parts(self) -> list[tuple[int, Path]]:
        """The part files, in the order they were written."""
        found = []
        for entry in self.path.iterdir():
            match = PART.fullmatch(entry.name)
            if match:
                found.append((int(match.group(1)), entry))
        return sorted(found)

    def done(self) -> DoneIndex:
        """Read the keys of every stored record."""
        index = DoneIndex()
        for _, part in self.parts():
            for key, failed in iter_keys(part):
                index.add_key(key, failed)
        return index

    def write(self, records: list[dict[str, Any]]) -> None:
        """Write the records as the next part file."""
        if not records:
            return
        write_atomic(to_table(records), self.path / f"part-{self._next:06d}.parquet")
        self._next += 1

    def close(self) -> None:
        """Release the lock."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def discard(self) -> None:
        """Release the lock; remove the folder if this job created it and it is still empty."""
        self.close()
        if self.created and not any(self.path.iterdir()):
            self.path.rmdir()


class ParquetFileStore:
    """One Parquet file: batches go to parts in ``.NAME.parts/`` beside it while the job runs,
    and `close` merges file and parts into a new file that replaces it.

    A merge killed before its rename leaves the old file and the parts (redone on resume);
    killed after it, the parts' records are in the file too, and the next merge keeps one of
    each key.
    """

    batch_records = PartsDirStore.batch_records
    batch_seconds = PartsDirStore.batch_seconds

    def __init__(self, path: Path, resume: bool):
        self.path = path
        sidecar = path.with_name(f".{path.name}.parts")
        if not resume:
            if path.exists():
                raise refuse_existing(path, "a Parquet file")
            if sidecar.exists():
                raise refuse_existing(sidecar, "parts of an unfinished job writing "
                                               f"{path.name}")
        if path.exists() and not path.is_file():
            raise JobError(f"{path}: not a regular file")
        self._parts = PartsDirStore(sidecar, resume=True)
        stale = path.with_name(f".{path.name}.tmp")
        if stale.exists():  # a merge killed before its rename
            stale.unlink()

    def done(self) -> DoneIndex:
        """Read the keys of the records in the file and in the parts."""
        index = self._parts.done()
        if self.path.exists():
            for key, failed in iter_keys(self.path):
                index.add_key(key, failed)
        return index

    def write(self, records: list[dict[str, Any]]) -> None:
        """Write the records as a part (merged into the file by `close`)."""
        self._parts.write(records)

    def close(self) -> None:
        """Merge the parts into the file (one record per key), then remove them."""
        parts = self._parts.parts()
        if parts:
            self._merge([p for _, p in parts])
        sidecar = self._parts.path
        self._parts.close()
        if parts or not any(sidecar.iterdir()):
            shutil.rmtree(sidecar, ignore_errors=True)

    def discard(self) -> None:
        """Release the lock and remove the parts folder if it is empty."""
        sidecar = self._parts.path
        self._parts.close()
        if not any(sidecar.iterdir()):
            sidecar.rmdir()

    def _merge(self, parts: list[Path]) -> None:
        # Streams Arrow batches (never a whole file as Python objects) and keeps the first
        # record of each key: the file's, then the parts' in the order they were written.
        pyarrow = pa()
        sources = ([self.path] if self.path.exists() else []) + parts
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        seen: set[bytes] = set()
        with _pq().ParquetWriter(tmp, schema()) as writer:
            for source in sources:
                for batch in iter_batches(source):
                    keep = []
                    for record in to_records(pyarrow.Table.from_batches([batch.select(
                            list(ALWAYS))])):
                        digest = record_key(record).digest()
                        keep.append(digest not in seen)
                        seen.add(digest)
                    table = pyarrow.Table.from_batches([batch]).filter(pyarrow.array(keep))
                    try:
                        writer.write_table(conform(table))
                    except (ValueError, pyarrow.ArrowInvalid) as exc:
                        raise JobError(f"{source}: {first_line(exc)}") from None
        fsync_path(tmp)
        os.replace(tmp, self.path)
        fsync_path(self.path.parent)
