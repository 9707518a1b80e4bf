"""One benchmark configuration in its own process, driven over a pipe by run.py.

A fresh process per configuration keeps peak RSS figures apart and lets the orchestrator
interleave configurations run by run. Protocol: one JSON command per line on stdin, one JSON
reply per line on the original stdout (everything libraries print goes to stderr).
Commands: ``load``, ``latency {video}``, ``throughput {videos, batch_size}``,
``infer_only {batch_size}``, ``memory``, ``exit``.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import traceback
from pathlib import Path
from typing import Any


def _peak_rss_mib() -> float:
    # VmHWM is this process image's own high-water mark. ru_maxrss is not: Linux carries the
    # parent's RSS at fork/vfork time over the exec, so a big orchestrator would inflate it.
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _memory() -> dict[str, float]:
    out = {"peak_rss_mib": round(_peak_rss_mib(), 1)}
    try:
        import psutil

        out["rss_mib"] = round(psutil.Process().memory_info().rss / 2**20, 1)
    except ImportError:
        pass
    return out


def serve(config: dict[str, Any], commands, reply) -> None:
    """Answer commands until ``exit`` or end of input.

    Args:
        config: the configuration (implementation, model dir, precision, provider, ...).
        commands: an iterable of JSON lines.
        reply: called with each reply dict.
    """
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _stages import make_recipe

    recipe = make_recipe(config)
    for line in commands:
        if not line.strip():
            continue
        cmd = json.loads(line)
        op = cmd.get("cmd")
        if op == "exit":
            return
        try:
            if op == "load":
                result = recipe.load()
            elif op == "latency":
                result = recipe.latency(cmd["video"])
            elif op == "throughput":
                result = recipe.throughput(cmd["videos"], int(cmd["batch_size"]))
            elif op == "infer_only":
                result = {"seconds": recipe.infer_only(int(cmd["batch_size"]))}
            elif op == "memory":
                result = {}
            else:
                raise ValueError(f"unknown command {op!r}")
            result.update(_memory())
            reply({"ok": True, **result})
        except Exception as exc:  # report and go on: one failing input must not end the run
            traceback.print_exc(file=sys.stderr)
            reply({"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:300]}"})


def main() -> None:
    """Entry point: ``python _worker.py CONFIG_JSON``."""
    config = json.loads(sys.argv[1])
    threads = str(config.get("threads", 0))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = threads
    # Keep the protocol channel clean: C libraries and Python prints both go to stderr.
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def reply(obj: dict[str, Any]) -> None:
        protocol.write(json.dumps(obj) + "\n")
        protocol.flush()

    serve(config, sys.stdin, reply)


if __name__ == "__main__":
    main()
