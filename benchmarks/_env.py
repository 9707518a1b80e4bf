"""What a result depends on: the machine, library versions, import times and installed sizes."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from vidsort.bench import hardware

#: distributions whose versions every result records
VERSIONED = ("numpy", "onnxruntime", "onnxruntime-gpu", "torch", "transformers", "optimum",
             "optimum-onnx", "onnx", "decord2", "av", "pillow", "vidsort")
#: CPU flags that decide which GEMM kernels ORT / PyTorch can use (one list, vidsort bench's)
FLAGS = hardware.FLAGS


def machine() -> dict[str, Any]:
    """CPU model, cores, SIMD flags, memory, OS and whether it is a VM (vidsort bench's reader)."""
    cpu = hardware.cpu()
    info: dict[str, Any] = {"platform": platform.platform(), "machine": platform.machine(),
                            "logical_cpus": cpu["logical_cpus"],
                            "usable_cpus": cpu["usable_cpus"], "cpu_model": cpu["model"],
                            "flags": cpu["flags"], "hypervisor": cpu["hypervisor"],
                            "physical_cores": cpu["physical_cores"],
                            "memory_gib": hardware.memory_gib(),
                            "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}
    return info


def versions() -> dict[str, str]:
    """Python and library versions (from installed metadata; nothing heavy is imported)."""
    return hardware.versions(VERSIONED)


IMPORT_STATEMENTS = {
    "import vidsort": "import vidsort",
    "from vidsort import VideoClassifier": "from vidsort import VideoClassifier",
    "vidsort full stack": "import vidsort.classifier, vidsort.decode, vidsort.preprocess",
    "import transformers": "import transformers",
    "import torch": "import torch",
    "transformers VideoMAE (torch)": "from transformers import VideoMAEForVideoClassification, "
                                     "VideoMAEImageProcessor",
    "seed stack": "import decord, torch; from transformers import "
                  "VideoMAEForVideoClassification, VideoMAEImageProcessor",
}


#: the cheap statements, for --quick
QUICK_IMPORTS = ("import vidsort", "from vidsort import VideoClassifier", "import transformers")


def import_times(runs: int = 5, statements: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Wall time of import statements, each in a fresh interpreter, interleaved over ``runs``.

    The child times only the import (interpreter start-up excluded); with 3 or more runs a first
    round warms the page cache and is discarded.

    Args:
        runs: measured interpreters per statement.
        statements: names from `IMPORT_STATEMENTS` (default: all).

    Returns:
        ``{statement: {"median_s", "min_s", "runs"}}``.
    """
    code = ("import time; t = time.perf_counter(); exec({stmt!r}); "
            "print(time.perf_counter() - t)")
    chosen = {k: v for k, v in IMPORT_STATEMENTS.items() if statements is None or k in statements}
    samples: dict[str, list[float]] = {k: [] for k in chosen}
    warmup = 1 if runs >= 3 else 0  # a single-run smoke test skips the warm-up round
    for round_ in range(runs + warmup):
        for name, stmt in chosen.items():
            proc = subprocess.run([sys.executable, "-c", code.format(stmt=stmt)],
                                  capture_output=True, text=True, timeout=300)
            if proc.returncode != 0:
                samples[name] = []
                continue
            if round_ >= warmup:
                samples[name].append(float(proc.stdout.strip().splitlines()[-1]))
    return {name: ({"median_s": round(statistics.median(s), 4), "min_s": round(min(s), 4),
                    "runs": len(s)} if s else {"error": "import failed"})
            for name, s in samples.items()}


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _closure(roots: list[tuple[str, set[str]]]) -> set[str]:
    """Installed distributions needed by ``roots`` ((name, extras)), following requirements."""
    from packaging.requirements import Requirement

    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name, extras = todo.pop()
        key = _canonical(name)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        if key in seen and not extras:
            continue
        seen.add(key)
        for spec in dist.requires or []:
            req = Requirement(spec)
            if req.marker is None:
                todo.append((req.name, set(req.extras)))
                continue
            envs = [{"extra": e} for e in extras] or [{"extra": ""}]
            if any(req.marker.evaluate(env) for env in envs):
                todo.append((req.name, set(req.extras)))
    return seen


def _dist_bytes(name: str) -> int:
    dist = metadata.distribution(name)
    total = 0
    for file in dist.files or []:
        path = Path(dist.locate_file(file))
        if path.is_file() and "__pycache__" not in path.parts:
            total += path.stat().st_size
    return total


def _editable_bytes(module: str) -> int:
    """Size of a package installed in editable mode (its RECORD lists only a .pth file)."""
    import importlib.util

    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return 0
    root = Path(next(iter(spec.submodule_search_locations)))
    return sum(p.stat().st_size for p in root.rglob("*")
               if p.is_file() and "__pycache__" not in p.parts)


def installed_sizes() -> dict[str, Any]:
    """On-disk size of a runtime-only environment vs one with torch, from RECORD files.

    Sums the files each installed distribution lists in its RECORD (bytecode caches excluded),
    over the dependency closure of ``vidsort`` and of ``vidsort[export]`` in this venv. pip,
    setuptools and wheel are left out of both.

    Returns:
        ``{"runtime_mb", "with_torch_mb", "torch_mb", "seed_stack_mb" (torch + transformers +
        decord2, what the seed recipe needs), "runtime_dists", "extra_dists"}``.
    """
    tooling = {"pip", "setuptools", "wheel"}
    runtime = _closure([("vidsort", set())]) - tooling
    full = _closure([("vidsort", {"export"})]) - tooling
    seed = _closure([("torch", set()), ("transformers", set()), ("decord2", set())]) - tooling
    sizes = {name: _dist_bytes(name) for name in runtime | full | seed}
    if sizes.get("vidsort", 0) < 100_000:
        sizes["vidsort"] = _editable_bytes("vidsort")  # editable install: count the sources
    mb = 1e6
    return {
        "method": "sum of files listed in each distribution's RECORD in the current venv "
                  "(bytecode excluded), over the dependency closure",
        "runtime_mb": round(sum(sizes[n] for n in runtime) / mb, 1),
        "with_torch_mb": round(sum(sizes[n] for n in full) / mb, 1),
        "torch_mb": round(sizes.get("torch", 0) / mb, 1),
        "seed_stack_mb": round(sum(sizes[n] for n in seed) / mb, 1),
        "runtime_dists": {n: round(sizes[n] / mb, 1) for n in sorted(runtime)},
        "extra_dists": {n: round(sizes[n] / mb, 1) for n in sorted(full - runtime)},
    }
