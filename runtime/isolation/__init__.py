"""Isolation: decoding in worker processes, so a decoder that hangs, crashes or eats memory
costs one file, never the caller.

- `pool` — `IsolatedPreparer` (a pebble process pool with per-file timeouts and a memory cap
  per worker) and `IsolationSettings`.
- `forkserver_launch` — a fork-server context whose workers do not re-run the caller's script
  (a version-gated copy of a CPython internal).
- `memory` — the per-worker memory cap and when a worker leaves to be replaced.
- `faults` — test-only fault injection (``VIDSORT_TEST_FAULT``).
"""

from vidsort.isolation.faults import FAULT_ENV, parse_faults
from vidsort.isolation.pool import (
    START_METHODS,
    IsolatedPreparer,
    IsolationSettings,
    iter_prepared_isolated,
)

__all__ = ["FAULT_ENV", "START_METHODS", "IsolatedPreparer", "IsolationSettings",
           "iter_prepared_isolated", "parse_faults"]
