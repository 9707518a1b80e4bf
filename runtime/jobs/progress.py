"""Progress of a job on stderr (tqdm) when stderr is a terminal; nothing otherwise.

The bar counts files taken (classified or skipped) against the total, which a background
thread counts by walking the inputs a second time: the job itself never waits for the walk.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from typing import TextIO

from vidsort.jobs.sources import count_inputs


def wants_progress(stream: TextIO | None = None) -> bool:
    """Whether progress should be shown: only on a terminal (a log file or pipe gets the
    summary line alone)."""
    stream = stream or sys.stderr
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or not a real file
        return False


class JobProgress:
    """A tqdm bar (files done / total, files/s, failures, ETA), or nothing when disabled.

    Args:
        enabled: show it (see `wants_progress`).
        inputs, recursive: the job's input arguments, counted in a thread for the total.
    """

    def __init__(self, enabled: bool, inputs: Sequence[str] = (), recursive: bool = False):
        self.enabled = enabled
        self._bar = None
        self._total: int | None = None
        self._stop = threading.Event()
        if not enabled:
            return
        from tqdm import tqdm

        self._bar = tqdm(total=None, unit="file", desc="classify", file=sys.stderr,
                         dynamic_ncols=True, smoothing=0.05)
        count_inputs(inputs, recursive, self._set_total, self._stop)

    def _set_total(self, total: int) -> None:
        self._total = total  # applied by the main thread at its next update (tqdm is not
        # thread-safe for attribute changes)

    def update(self, taken: int, failed: int, skipped: int) -> None:
        """Advance by ``taken`` files; show the failure and skip counts so far."""
        if self._bar is None:
            return
        if self._total is not None and self._bar.total != self._total:
            self._bar.total = self._total
        self._bar.set_postfix(failed=failed, skipped=skipped, refresh=False)
        self._bar.update(taken)

    def close(self) -> None:
        """Remove the bar (the summary line follows it)."""
        self._stop.set()
        if self._bar is not None:
            if self._total is not None:
                self._bar.total = self._total
            self._bar.close()
            self._bar = None

    def __enter__(self) -> JobProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
