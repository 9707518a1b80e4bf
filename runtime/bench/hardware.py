"""What a figure depends on: CPU model and SIMD flags, cores, memory, GPUs, library versions.

Read from /proc and package metadata (and ``nvidia-smi`` when it is installed); nothing heavy is
imported, and nothing here needs psutil (not a runtime dependency).
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

#: CPU flags that decide which GEMM kernels ONNX Runtime can use (int8 speed depends on VNNI and
#: AMX: ~1.7x between the machines measured in this project)
FLAGS = ("avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
         "avx_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16")
#: the short summary: family -> the flags that count as having it
SIMD = {"AVX2": ("avx2",), "AVX-512": ("avx512f",), "VNNI": ("avx512_vnni", "avx_vnni"),
        "AMX": ("amx_tile", "amx_int8")}
#: distributions whose versions every result records
VERSIONED = ("vidsort", "onnxruntime", "onnxruntime-gpu", "numpy", "av", "decord2", "onnx",
             "torch", "transformers")


def cpu() -> dict[str, Any]:
    """CPU model, flags, SIMD summary, logical / usable / physical cores (Linux /proc)."""
    info: dict[str, Any] = {"model": platform.processor() or platform.machine(),
                            "flags": [], "logical_cpus": os.cpu_count()}
    try:
        info["usable_cpus"] = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        info["usable_cpus"] = os.cpu_count()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    cores: set[tuple[str, str]] = set()
    physical = core = ""
    have: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "model name":
            info["model"] = value
        elif key == "flags" and not have:
            have = set(value.split())
        elif key == "physical id":
            physical = value
        elif key == "core id":
            core = value
        elif not key and (physical or core):  # blank line: end of one processor's block
            cores.add((physical, core))
            physical = core = ""
    if physical or core:
        cores.add((physical, core))
    info["flags"] = [f for f in FLAGS if f in have]
    info["simd"] = {name: any(f in have for f in flags) for name, flags in SIMD.items()}
    info["physical_cores"] = len(cores) or None
    info["hypervisor"] = "hypervisor" in have
    return info


def memory_gib() -> float | None:
    """Total RAM in GiB (MemTotal)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def gpus() -> tuple[list[dict[str, Any]], str | None]:
    """``([{"name", "driver", "memory_mib"}, ...], note)`` from nvidia-smi; note says why empty."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return [], "nvidia-smi not found (no NVIDIA driver on this machine)"
    try:
        proc = subprocess.run([smi, "--query-gpu=name,driver_version,memory.total",
                               "--format=csv,noheader,nounits"], capture_output=True, text=True,
                              timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [], f"nvidia-smi failed: {exc}"
    if proc.returncode != 0:
        return [], f"nvidia-smi failed: {(proc.stderr or proc.stdout).strip()[:200]}"
    found = []
    for line in proc.stdout.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 3:
            memory = int(parts[2]) if parts[2].isdigit() else None
            found.append({"name": parts[0], "driver": parts[1], "memory_mib": memory})
    return found, None if found else "nvidia-smi lists no GPU"


def versions(names: tuple[str, ...] = VERSIONED) -> dict[str, str]:
    """Python and the versions of the installed distributions among ``names`` (from package
    metadata: nothing is imported)."""
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def describe(threads: int = 0) -> dict[str, Any]:
    """Everything above, plus the inference threads asked for and the load average now.

    Args:
        threads: ONNX Runtime intra-op threads requested (0 = ONNX Runtime's choice: one per
            physical core).

    Returns:
        ``{"cpu", "memory_gib", "gpus", "gpu_note", "threads", "load_average", "platform",
        "versions", "onnxruntime_providers"}`` (`vidsort.bench.run` adds
        ``load_average_at_end``).
    """
    import onnxruntime as ort

    found, note = gpus()
    return {"cpu": cpu(), "memory_gib": memory_gib(), "gpus": found, "gpu_note": note,
            "threads": threads, "load_average": [round(x, 2) for x in os.getloadavg()],
            "platform": platform.platform(), "versions": versions(),
            "onnxruntime_providers": list(ort.get_available_providers())}


def summary(hardware: dict[str, Any]) -> str:
    """One line naming the hardware, for tables: CPU, SIMD, cores, threads, GPUs, versions."""
    c = hardware["cpu"]
    simd = ", ".join(k for k, v in c.get("simd", {}).items() if v) or "no AVX2"
    threads = hardware.get("threads") or "auto"  # 0: ORT picks one per physical core
    gpu = "; ".join(f"{g['name']} (driver {g['driver']})" for g in hardware.get("gpus", [])) \
        or "no GPU"
    v = hardware.get("versions", {})
    ort_version = v.get("onnxruntime-gpu") or v.get("onnxruntime", "?")
    load = ", ".join(str(x) for x in hardware.get("load_average", []))
    if hardware.get("load_average_at_end"):
        load = f"{load} at the start, {hardware['load_average_at_end'][0]} at the end"
    return (f"{c.get('model', '?')}, {c.get('physical_cores') or '?'} cores / "
            f"{c.get('usable_cpus', '?')} CPUs usable ({simd}), inference threads {threads}, "
            f"{hardware.get('memory_gib', '?')} GiB; {gpu}; Python {v.get('python', '?')}, "
            f"onnxruntime {ort_version}, numpy {v.get('numpy', '?')}; load average {load}")
