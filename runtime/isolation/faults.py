"""Test-only fault injection for the decode workers — not a user feature.

``VIDSORT_TEST_FAULT="kind:substring,..."`` (read when a pool is created) makes a worker
misbehave on paths containing ``substring``; kinds: ``hang``, ``hang-hard`` (ignores SIGTERM,
like native code holding the GIL), ``segv``, ``abort``, ``kill`` (like the OOM killer),
``exit``, ``oom`` (allocates until the memory cap stops it). The tests use it to show that a
bad file costs only its own result; it lives here so the production pool stays readable.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import numpy as np

FAULT_ENV = "VIDSORT_TEST_FAULT"

Faults = tuple[tuple[str, str], ...]


def _oom(memory_mb: int | None) -> None:
    if memory_mb is None:  # never eat an uncapped machine's memory
        raise MemoryError("simulated (no memory cap set)")
    hog = [np.ones(64 * 2**20, np.uint8) for _ in range(1 << 12)]
    del hog


def _hang(ignore_sigterm: bool) -> None:
    if ignore_sigterm:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    time.sleep(3600)


_FAULT_ACTIONS = {
    "hang": lambda cap: _hang(False), "hang-hard": lambda cap: _hang(True),
    "segv": lambda cap: os.kill(os.getpid(), signal.SIGSEGV), "abort": lambda cap: os.abort(),
    "kill": lambda cap: os.kill(os.getpid(), signal.SIGKILL), "exit": lambda cap: os._exit(3),
    "oom": _oom,
}


def inject_fault(video: Any, faults: Faults, memory_mb: int | None) -> None:
    """Misbehave as ``faults`` say if ``video``'s path matches one (no-op without faults)."""
    name = os.fspath(video) if isinstance(video, str | os.PathLike) else ""
    for kind, needle in faults:
        if needle in name:
            _FAULT_ACTIONS[kind](memory_mb)


def parse_faults(value: str | None) -> Faults:
    """Parse a ``VIDSORT_TEST_FAULT`` value (``"kind:substring,..."`` or None) into pairs."""
    faults = []
    for item in (value or "").split(","):
        if not item.strip():
            continue
        kind, _, needle = item.strip().partition(":")
        if kind not in _FAULT_ACTIONS or not needle:
            raise ValueError(f"{FAULT_ENV}: bad entry {item!r}; use kind:substring with kind in "
                             f"{', '.join(_FAULT_ACTIONS)}")
        faults.append((kind, needle))
    return tuple(faults)
