"""The inputs of a job, streamed: files, directories (``-r``) and ``@list.txt`` files.

Nothing here builds a list: a job over a million files starts on the first one while the walk
goes on, and `count_inputs` (for the progress bar's total) walks a second time in a thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator

from vidsort.errors import VidsortError
from vidsort.inputs import iter_inputs


class InputListError(VidsortError):
    """An ``@list.txt`` argument names a file that cannot be read."""


def iter_list_file(path: str) -> Iterator[str]:
    """The paths in a list file, one per line; blank lines and lines starting with ``#`` are
    skipped, surrounding whitespace is not part of a path.

    Args:
        path: the list file (UTF-8; undecodable bytes are kept as the file system would).

    Returns:
        An iterator of paths; raises `InputListError` if the file cannot be opened.
    """
    try:
        handle = open(path, encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        raise InputListError(f"@{path}: cannot read the input list: "
                             f"{exc.strerror or exc}") from None
    with handle:
        for line in handle:
            entry = line.strip()
            if entry and not entry.startswith("#"):
                yield entry


def iter_job_inputs(args: Iterable[str], recursive: bool = False) -> Iterator[str]:
    """Expand a job's input arguments lazily, in order.

    Args:
        args: paths, directories and ``@LIST`` arguments (a list's lines may be directories
            too, expanded with ``recursive`` like arguments are).
        recursive: expand directories into the videos below them (`vidsort.inputs.walk_videos`).

    Returns:
        An iterator of file paths.
    """
    for arg in args:
        if arg.startswith("@") and len(arg) > 1:
            yield from iter_inputs(iter_list_file(arg[1:]), recursive)
        else:
            yield from iter_inputs([arg], recursive)


def count_inputs(args: Iterable[str], recursive: bool, report: Callable[[int], None],
                 stop: threading.Event) -> threading.Thread:
    """Count the inputs in a daemon thread and call ``report(total)`` once it is known.

    Args:
        args, recursive: as for `iter_job_inputs`.
        report: called with the total (from the counting thread), unless stopped first.
        stop: set it to abandon the count (the job ended first).

    Returns:
        The started thread.
    """
    args = list(args)  # the arguments, not the files

    def count() -> None:
        total = 0
        try:
            for _ in iter_job_inputs(args, recursive):
                total += 1
                if stop.is_set():
                    return
        except (OSError, VidsortError):  # the job itself reports unreadable inputs
            return
        if not stop.is_set():
            report(total)

    thread = threading.Thread(target=count, name="vidsort-count-inputs", daemon=True)
    thread.start()
    return thread

