"""One record per input file, and the key `--resume` matches on.

A record is what ``vidsort classify --json`` prints for a file (``video``, ``predictions`` or
``error``, ``backend``, ``frames``, ``timings``, ...) plus the file's ``size`` and ``mtime`` as
seen when the job took it. ``(video, size, mtime)`` is the file's key: a resumed job skips the
files whose key is already in the output, and does again a file that changed since.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


def storable_name(path: str | os.PathLike) -> str:
    """The ``video`` field for a path: the path as given, or, for a name that is not valid
    UTF-8 (Linux allows any bytes), the same with the odd bytes written as ``\\xNN`` — JSONL
    readers and Parquet string columns both need text."""
    name = os.fspath(path)
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(name).decode("utf-8", "backslashreplace")
    return name


@dataclass(frozen=True)
class FileKey:
    """What identifies one input of a job: its name in the output, size and mtime.

    Attributes:
        video: the ``video`` field (`storable_name` of the path as given).
        size: bytes, or None when the file could not be stat'ed (then the record is an error).
        mtime: modification time in seconds (``os.stat().st_mtime``), or None likewise.
    """

    video: str
    size: int | None
    mtime: float | None

    def digest(self) -> bytes:
        """16 bytes that stand for the key in the done-index (a million keys fit in ~150 MB;
        whole path strings would take several times that)."""
        text = json.dumps([self.video, self.size, self.mtime])
        return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


def stat_key(path: str | os.PathLike) -> FileKey:
    """The key of ``path`` now (symlinks followed, as the decoder follows them)."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):  # missing, no permission, NUL in the name: an error record
        return FileKey(storable_name(path), None, None)
    return FileKey(storable_name(path), int(st.st_size), float(st.st_mtime))


def record_key(record: Mapping[str, Any]) -> FileKey:
    """The key of a stored record."""
    size, mtime = record.get("size"), record.get("mtime")
    return FileKey(record["video"], None if size is None else int(size),
                   None if mtime is None else float(mtime))


def make_record(result: Mapping[str, Any], key: FileKey, precision: str,
                provider: str) -> dict[str, Any]:
    """The output record of one file.

    Args:
        result: a result of `VideoClassifier.classify_many` (or its Ray equivalent).
        key: the file's key, taken before it was classified.
        precision, provider: what ran the model (``--json`` lines carry them too).

    Returns:
        A new dict: the result's fields, ``precision``, ``provider``, ``size`` and ``mtime``,
        with ``video`` set to the key's name.
    """
    record = dict(result)
    record["video"] = key.video
    record.setdefault("precision", precision)
    record.setdefault("provider", provider)
    record["size"], record["mtime"] = key.size, key.mtime
    return record


def is_error(record: Mapping[str, Any]) -> bool:
    """Whether a record reports a failed file."""
    return record.get("error") is not None


def dumps(record: Mapping[str, Any]) -> str:
    """One JSON line (without the newline): UTF-8 text as itself, like ``--json`` prints it;
    a record that still holds lone surrogates is written with ASCII escapes instead."""
    line = json.dumps(record, ensure_ascii=False)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        line = json.dumps(record)
    return line
