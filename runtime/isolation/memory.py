"""A decode worker's memory: the cap the kernel enforces, and when a worker should leave.

Cap ``RLIMIT_DATA`` (private writable memory), set relative to the worker's idle size, so
``memory_mb`` means memory the decode may take whatever the imports cost on this platform.
"""

from __future__ import annotations

import resource

#: exit status of a worker that leaves before a file because earlier files left it too full
#: to trust under its cap; the caller resubmits that file to a fresh worker
EXIT_RECYCLE = 86


def vm_data() -> int:
    """This process's private writable memory in bytes (what ``RLIMIT_DATA`` counts)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmData:"):
                return int(line.split()[1]) * 1024
    return 0


def cap_memory(memory_mb: int) -> int:
    """Cap this process at its current size plus ``memory_mb``; returns that base size."""
    base = vm_data()
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    limit = base + memory_mb * 2**20
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
    return base


def full_for_its_cap(memory_mb: int | None, base: int) -> bool:
    """Whether a capped worker holds over half its cap before a file starts.

    What a failed decode leaves behind (FFmpeg's buffer pools, glibc's cached heap) stays
    charged to the worker's cap: a 4K file that hit a 64 MB cap left ~57 MB behind, and the
    next, small file then failed too (FFmpeg could not even start its threads: EAGAIN). Such a
    worker leaves (`EXIT_RECYCLE`) and the file goes to a fresh one.
    """
    return memory_mb is not None and base > 0 and vm_data() - base > memory_mb * 2**20 // 2
