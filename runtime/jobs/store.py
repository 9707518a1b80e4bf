"""Where a job's records go, durably: a JSONL file, one Parquet file, or a folder of Parquet
parts. Each store writes in batches with steps a SIGKILL cannot leave half-done:

- JSONL: one ``write`` of whole lines per batch, then ``fsync``. A kill mid-write can only leave
  a torn last line (a prefix of the batch); a resumed job cuts it off before appending.
- Parquet parts (a folder, `vidsort.jobs.parquet_store`): each batch is a part file written
  under a temporary name, fsync'ed, then renamed, so a part is whole or absent.
- One ``.parquet`` file: parts in a hidden folder beside it, merged into the file (temporary
  name, fsync, rename) when the job ends; a merge killed halfway is redone.

A job holds an exclusive lock (``flock``, released by the kernel even on SIGKILL) on its store,
so two jobs cannot write the same output.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any, Protocol

from vidsort.errors import VidsortError
from vidsort.jobs.records import FileKey, dumps, is_error, record_key


class JobError(VidsortError):
    """A job cannot start or go on: output refused, locked, or not a job's output."""


class DoneIndex:
    """The files a job's output already holds: key digest → whether that record is an error."""

    def __init__(self) -> None:
        self._failed: dict[bytes, bool] = {}

    def add(self, record: dict[str, Any]) -> None:
        """Note a stored record."""
        self.add_key(record_key(record), is_error(record))

    def add_key(self, key: FileKey, failed: bool) -> None:
        """Note a stored record by its key."""
        self._failed[key.digest()] = failed

    def __contains__(self, digest: bytes) -> bool:
        return digest in self._failed

    def __len__(self) -> int:
        return len(self._failed)

    def failed(self, digest: bytes) -> bool:
        """Whether the stored record of this key is an error."""
        return self._failed.get(digest, False)


class Store(Protocol):
    """What the engines write through."""

    path: Path
    #: a batch is written once it holds this many records ...
    batch_records: int
    #: ... or its first record waited this long (seconds), whichever comes first
    batch_seconds: float

    def done(self) -> DoneIndex:
        """The records already in the output (read once, when the job starts)."""

    def write(self, records: list[dict[str, Any]]) -> None:
        """Add records; they are on disk when this returns."""

    def close(self) -> None:
        """Finish the output (merge parts, where the store has any) and release the lock."""

    def discard(self) -> None:
        """Release the lock and remove the output if this job created it and wrote nothing
        (a job that failed to start leaves nothing that a rerun would have to --resume)."""


def output_kind(out: str | os.PathLike) -> str:
    """``jsonl`` (suffix .jsonl), ``parquet`` (suffix .parquet) or ``parts`` (a directory, or a
    new path without a suffix); raises `JobError` for anything else."""
    path = Path(out)
    if path.is_dir():
        return "parts"
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return "jsonl"
    if suffix == ".parquet":
        return "parquet"
    if not path.exists() and (not suffix or os.fspath(out).endswith(os.sep)):
        return "parts"
    raise JobError(f"--out {out}: give a .jsonl or .parquet file, or a directory for Parquet "
                   "part files")


def open_store(out: str | os.PathLike, resume: bool) -> Store:
    """Open a job's output.

    Args:
        out: the ``--out`` path (see `output_kind`).
        resume: continue the job an existing output holds; without it an existing output
            (a file, or a non-empty directory) is refused with a `JobError`.

    Returns:
        The store, locked for this process.
    """
    kind = output_kind(out)
    if kind == "jsonl":
        return JsonlStore(Path(out), resume)
    from vidsort.jobs.arrow import pa
    from vidsort.jobs.parquet_store import ParquetFileStore, PartsDirStore

    pa()  # no pyarrow: say so now, before any work (one line naming the extra)

    return (ParquetFileStore if kind == "parquet" else PartsDirStore)(Path(out), resume)


def refuse_existing(path: Path, what: str) -> JobError:
    """The one-line refusal to touch an existing output without --resume."""
    return JobError(f"{path} already exists ({what}); pass --resume to continue the job in it, "
                    "or choose another --out")


def lock(fd: int, path: Path) -> None:
    """Take the job's exclusive lock on ``fd``, or raise `JobError` if another job holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise JobError(f"{path}: another vidsort job is writing it") from None


def fsync_path(path: Path) -> None:
    """Make a file's data, or a directory's entries (a new or renamed file in it), durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class JsonlStore:
    """Records as JSON lines, appended and fsync'ed per batch."""

    batch_records = 64
    batch_seconds = 5.0

    def __init__(self, path: Path, resume: bool):
        self.path = path
        if path.exists() and not resume:
            raise refuse_existing(path, "a JSONL file")
        if path.exists() and not path.is_file():
            raise JobError(f"{path}: not a regular file")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.created = not path.exists()
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            lock(self._fd, path)
            if self.created:
                fsync_path(path.parent)
        except BaseException:
            os.close(self._fd)
            raise
        self.dropped_bytes = 0  # size of the torn last line cut off on open

    def done(self) -> DoneIndex:
        """Read the stored records, first cutting off a torn last line."""
        self.dropped_bytes = drop_torn_tail(self._fd)
        index = DoneIndex()
        with open(self._fd, "rb", closefd=False) as handle:
            handle.seek(0)
            for number, line in enumerate(handle, 1):
                index.add(_parse_line(line, number, self.path))
        return index

    def write(self, records: list[dict[str, Any]]) -> None:
        """Append the records as whole lines in one write, then fsync."""
        if not records:
            return
        data = memoryview("".join(dumps(r) + "\n" for r in records).encode("utf-8"))
        while data:
            written = os.write(self._fd, data)
            data = data[written:]
        os.fsync(self._fd)

    def close(self) -> None:
        """Release the lock."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def discard(self) -> None:
        """Release the lock; remove the file if this job created it and it is still empty."""
        if self.created and self._fd >= 0 and os.fstat(self._fd).st_size == 0:
            self.path.unlink(missing_ok=True)
        self.close()


def drop_torn_tail(fd: int) -> int:
    """Cut a file back to its last newline (what a write killed midway leaves after it).

    Returns:
        The number of bytes cut off (0 when the file ends with a newline or is empty).
    """
    size = os.fstat(fd).st_size
    end = size
    block = 1 << 16
    while end > 0:
        start = max(0, end - block)
        chunk = os.pread(fd, end - start, start)
        newline = chunk.rfind(b"\n")
        if newline >= 0:
            keep = start + newline + 1
            break
        end = start
    else:
        keep = 0
    if keep < size:
        os.ftruncate(fd, keep)
        os.fsync(fd)
    return size - keep


def _parse_line(line: bytes, number: int, path: Path) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except ValueError as exc:
        raise JobError(f"{path}: line {number} is not a JSON record ({exc}); it was not left by "
                       "an interrupted job: move the file aside or mend that line") from None
    if not isinstance(record, dict) or "video" not in record:
        raise JobError(f"{path}: line {number} is not a vidsort record (no 'video' field)")
    return record
