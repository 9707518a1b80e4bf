"""`vidsort bench`: model-only latency, throughput, load time and memory for every provider x
precision x batch a model directory can run here — and end to end per clip with ``videos``.

    from vidsort import bench
    report = bench.run("k400/", providers=["cpu", "cuda"], batches=[1, 8])
    print(bench.table(report))

`run` returns the report that ``vidsort bench --json`` writes (schema: `vidsort.bench.records`);
`table` and `markdown` render it. Combinations that cannot run are records with the reason.
Each provider x precision runs in a fresh process by default (``isolate``), so its memory
figures are its own and a crash costs only its rows.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from vidsort.bench.records import SCHEMA, SCHEMA_VERSION, not_run
from vidsort.bench.report import markdown, table
from vidsort.errors import first_line
from vidsort.manifest import VARIANT_FILES
from vidsort.providers import PROVIDER_TABLE

__all__ = ["run", "table", "markdown", "DEFAULT_PROVIDERS", "DEFAULT_PRECISIONS",
           "DEFAULT_BATCHES", "DEFAULT_SECONDS", "MIN_CALLS", "WARMUP_CALLS"]

#: every provider vidsort knows, CPU first: the ones this machine lacks become reason rows
DEFAULT_PROVIDERS: tuple[str, ...] = tuple(p.name for p in reversed(PROVIDER_TABLE))
#: every variant an export can hold; the ones a directory lacks become reason rows
DEFAULT_PRECISIONS: tuple[str, ...] = tuple(VARIANT_FILES)
DEFAULT_BATCHES: tuple[int, ...] = (1,)
#: seconds of timed calls per cell (and at least `MIN_CALLS` calls)
DEFAULT_SECONDS = 10.0
MIN_CALLS = 5
#: untimed calls before each cell (allocation, cuDNN algorithm search, CUDA graph capture)
WARMUP_CALLS = 2


def run(model_dir: str | os.PathLike, providers: Sequence[str] | None = None,
        precisions: Sequence[str] | None = None, batches: Sequence[int] | None = None,
        videos: Sequence[str | os.PathLike] = (), seconds: float = DEFAULT_SECONDS,
        threads: int = 0, min_calls: int = MIN_CALLS, warmup: int = WARMUP_CALLS,
        isolate: bool = True, session_settings: dict[str, Any] | None = None,
        log: Callable[[str], None] | None = None, command: str | None = None) -> dict[str, Any]:
    """Benchmark ``model_dir``.

    Args:
        model_dir: a directory written by ``vidsort export``.
        providers: short names (default `DEFAULT_PROVIDERS`).
        precisions: fp32 / int8 / fp16 (default all).
        batches: clips per call for the model-only cells (default 1).
        videos: also time these end to end, one clip per call, with the stage split.
        seconds: timed seconds per cell; each cell also makes at least ``min_calls`` calls.
        threads: ONNX Runtime intra-op threads (0 = one per physical core).
        min_calls, warmup: see `vidsort.bench.measure.time_calls`.
        isolate: each provider x precision in its own process (memory figures per group).
        session_settings: `SessionSettings` fields for every session (e.g. ``cuda_graph``).
        log: receives one progress line per group.
        command: recorded as the report's ``command``.

    Returns:
        The report (`vidsort.bench.records`). Raises `ModelDirError` for an unreadable model
        directory and ValueError for an unknown provider or precision.
    """
    from vidsort.bench.hardware import describe
    from vidsort.modeldir import ModelDir
    from vidsort.providers import PROVIDERS_BY_NAME
    from vidsort.session import unavailable_reason

    model = ModelDir.load(model_dir)
    providers = list(providers or DEFAULT_PROVIDERS)
    precisions = list(precisions or DEFAULT_PRECISIONS)
    batches = [int(b) for b in (batches or DEFAULT_BATCHES)]
    for name in providers:
        if name not in PROVIDERS_BY_NAME:
            raise ValueError(f"unknown provider {name!r}; choose from "
                             f"{', '.join(PROVIDERS_BY_NAME)}")
    for name in precisions:
        if name not in VARIANT_FILES:
            raise ValueError(f"unknown precision {name!r}; choose from {', '.join(VARIANT_FILES)}")
    if min(batches) < 1 or seconds < 0 or min_calls < 1 or warmup < 0:
        raise ValueError("batches and min_calls must be >= 1, seconds and warmup >= 0")
    video_paths = [os.fspath(v) for v in videos]
    settings = {"providers": providers, "precisions": precisions, "batches": batches,
                "videos": video_paths, "seconds": seconds, "min_calls": min_calls,
                "warmup": warmup, "threads": threads, "isolate": isolate,
                "session_settings": dict(session_settings or {})}
    report: dict[str, Any] = {
        "schema": SCHEMA, "schema_version": SCHEMA_VERSION,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": command or f"vidsort.bench.run({os.fspath(model_dir)!r}, ...)",
        "model_dir": str(model.path), "model": {
            "model_type": model.model_type, "num_frames": model.num_frames,
            "image_size": list(model.image_size), "labels": len(model.labels),
            "variants": dict(model.variants)},
        "settings": settings, "hardware": describe(threads), "records": []}
    for provider in providers:
        reason = unavailable_reason(provider)
        for precision in precisions:
            spec = {"model_dir": str(model.path), "provider": provider, "precision": precision,
                    **{k: settings[k] for k in ("batches", "videos", "seconds", "min_calls",
                                                 "warmup", "threads", "session_settings")}}
            why = reason
            if why is None and precision not in model.variants:
                flag = "--quantize dynamic" if precision == "int8" else "--fp16"
                why = (f"variant not exported: no {VARIANT_FILES[precision]} in {model.path} "
                       f"(vidsort export ... {flag})")
            if why is not None:
                rows = _rows_for(spec, "unavailable", why)
            else:
                if log is not None:
                    log(f"bench: {provider} {precision}, batches {batches}"
                        + (f", {len(video_paths)} video(s)" if video_paths else ""))
                rows = _isolated(spec) if isolate else _in_process(spec)
            report["records"].extend(rows)
    report["hardware"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return report


def _rows_for(spec: dict[str, Any], status: str, reason: str) -> list[dict[str, Any]]:
    rows = [not_run("model", spec["provider"], spec["precision"], b, None, status, reason)
            for b in spec["batches"]]
    rows += [not_run("e2e", spec["provider"], spec["precision"], 1, Path(v).name, status, reason)
             for v in spec["videos"]]
    return rows


def _in_process(spec: dict[str, Any]) -> list[dict[str, Any]]:
    from vidsort.bench.cell import measure_group

    return measure_group(spec)


def _isolated(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """`measure_group` in a fresh interpreter; a crash or hang becomes failed rows."""
    cells = len(spec["batches"]) + len(spec["videos"])
    timeout = 300 + cells * (3 * spec["seconds"] + 120)
    try:
        proc = subprocess.run([sys.executable, "-m", "vidsort.bench.cell", json.dumps(spec)],
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return _rows_for(spec, "failed", f"bench worker timed out after {timeout:.0f} s")
    lines = proc.stdout.strip().splitlines()
    if proc.returncode == 0 and lines:
        try:
            return json.loads(lines[-1])
        except json.JSONDecodeError:
            pass
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    how = f"signal {-proc.returncode}" if proc.returncode < 0 else f"code {proc.returncode}"
    return _rows_for(spec, "failed", f"bench worker exited with {how}: {first_line(tail, 300)}")
