"""A fork-server context whose workers do not re-run the caller's main script.

CPython's fork server hands each new process the parent's ``__main__`` to re-import; our workers
only run vidsort functions, and an unguarded user script (no ``if __name__ == "__main__"``)
re-run in each worker would load its own model and start pools of its own. This is CPython's
``popen_forkserver.Popen._launch`` minus those entries. It copies private internals, so it is
gated to the versions it was checked against (3.10–3.13); elsewhere `NoMainForkServerContext`
is None and the pool uses the standard fork-server context.
"""

from __future__ import annotations

import io
import os
import sys
from typing import Any

#: CPython versions whose ``popen_forkserver.Popen._launch`` this module mirrors
CHECKED_VERSIONS = ((3, 10), (3, 13))


def _launch_without_main(self: Any, process_obj: Any) -> None:
    from multiprocessing import forkserver, spawn, util
    from multiprocessing.context import reduction, set_spawning_popen

    prep_data = spawn.get_preparation_data(process_obj._name)
    prep_data.pop("init_main_from_path", None)
    prep_data.pop("init_main_from_name", None)
    buf = io.BytesIO()
    set_spawning_popen(self)
    try:
        reduction.dump(prep_data, buf)
        reduction.dump(process_obj, buf)
    finally:
        set_spawning_popen(None)
    self.sentinel, w = forkserver.connect_to_new_process(self._fds)
    _parent_w = os.dup(w)
    self.finalizer = util.Finalize(self, util.close_fds, (_parent_w, self.sentinel))
    with open(w, "wb", closefd=True) as f:
        f.write(buf.getbuffer())
    self.pid = forkserver.read_signed(self.sentinel)


NoMainForkServerContext: Any = None
if CHECKED_VERSIONS[0] <= sys.version_info[:2] <= CHECKED_VERSIONS[1]:
    try:  # module level: the worker's Process object is pickled by class name
        from multiprocessing import context as _mp_context
        from multiprocessing import popen_forkserver as _popen_forkserver

        class _NoMainPopen(_popen_forkserver.Popen):
            _launch = _launch_without_main

        class _NoMainProcess(_mp_context.ForkServerProcess):
            @staticmethod
            def _Popen(process_obj: Any) -> Any:  # noqa: N802 - multiprocessing's name
                return _NoMainPopen(process_obj)

        class NoMainForkServerContext(_mp_context.ForkServerContext):  # type: ignore[no-redef]
            Process = _NoMainProcess

    except (ImportError, AttributeError):  # no fork server here (Windows) or internals moved
        NoMainForkServerContext = None
