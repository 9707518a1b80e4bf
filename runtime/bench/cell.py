"""One provider x precision: load the session once, then every batch size and video.

`measure_group` runs in the calling process; ``python -m vidsort.bench.cell SPEC_JSON`` runs it in
a fresh one (what `vidsort.bench.run` does by default), so each group's peak RSS and device
memory are its own and a crash (a GPU out of memory, a decoder fault) costs only its rows. The
child prints one JSON line (its records) on the original stdout; library output goes to stderr.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from vidsort.bench.measure import (
    DeviceMemory,
    clip_stages,
    peak_rss_mib,
    percentiles,
    reset_peak_rss,
    time_calls,
)
from vidsort.bench.records import STAGES, not_run, record
from vidsort.errors import ProviderUnavailableError, VidsortError, first_line


def _unavailable(spec: dict[str, Any], reason: str, status: str = "unavailable",
                 **fields: Any) -> list[dict[str, Any]]:
    """A record per combination of the group, all with ``reason``."""
    rows = [not_run("model", spec["provider"], spec["precision"], b, None, status, reason,
                    **fields) for b in spec["batches"]]
    rows += [not_run("e2e", spec["provider"], spec["precision"], 1, Path(v).name, status, reason,
                     **fields) for v in spec["videos"]]
    return rows


def _memory(device: DeviceMemory | None, scope: str) -> dict[str, Any]:
    held, method = device.held_mib() if device is not None else (None, None)
    return {"peak_rss_mib": peak_rss_mib(), "rss_scope": scope, "peak_device_mib": held,
            "device_memory_method": method}


def measure_group(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Measure one provider x precision over its batches and videos.

    Args:
        spec: ``{"model_dir", "provider", "precision", "batches", "videos", "seconds",
            "min_calls", "warmup", "threads", "session_settings" (optional dict of
            `SessionSettings` fields)}``.

    Returns:
        The group's records (`vidsort.bench.records`), one per batch and per video.
    """
    from vidsort.classifier import VideoClassifier
    from vidsort.providers import PROVIDERS_BY_NAME
    from vidsort.session import SessionSettings

    provider, precision = spec["provider"], spec["precision"]
    on_gpu = PROVIDERS_BY_NAME[provider].gpu
    scope = "cell" if reset_peak_rss() else "process"
    device = DeviceMemory() if on_gpu else None
    settings = SessionSettings(threads=int(spec.get("threads", 0)),
                               **spec.get("session_settings", {}))
    started = time.perf_counter()
    try:
        clf = VideoClassifier(spec["model_dir"], provider=provider, precision=precision,
                              session_settings=settings, isolation=None)
    except ProviderUnavailableError as exc:  # e.g. onnxruntime-gpu on a machine without a GPU
        return _unavailable(spec, first_line(exc))
    except VidsortError as exc:
        return _unavailable(spec, first_line(exc), status="failed")
    load_s = round(time.perf_counter() - started, 3)
    common = {"model_file": clf.model.model_file(precision).name,
              "session_provider": clf.session.get_providers()[0], "load_s": load_s,
              "io_binding": clf._runner.binding}
    rows = []
    clip = (clf.model.num_frames, 3, *clf.model.image_size)
    rng = np.random.default_rng(0)
    for batch in spec["batches"]:
        scope = "cell" if reset_peak_rss() else "process"
        x = rng.standard_normal((batch, *clip), dtype=np.float32)
        try:
            durations = time_calls(lambda x=x: clf.predict_logits(x), spec["seconds"],
                                   spec["min_calls"], spec["warmup"])
        except Exception as exc:  # out of memory at a big batch, a kernel missing: this row only
            rows.append(not_run("model", provider, precision, batch, None, "failed",
                                first_line(exc), **common, **_memory(device, scope)))
            continue
        rows.append(record("model", provider, precision, batch, calls=len(durations),
                           seconds=round(sum(durations), 6), latency_ms=percentiles(durations),
                           throughput=round(batch * len(durations) / sum(durations), 3),
                           pinned=clf._runner.pinned, **common, **_memory(device, scope)))
    for video in spec["videos"]:
        scope = "cell" if reset_peak_rss() else "process"
        name = Path(video).name
        runs: list[dict[str, Any]] = []
        try:
            time_calls(lambda v=video, out=runs: out.append(clip_stages(clf, v)), spec["seconds"],
                       spec["min_calls"], spec["warmup"])
        except Exception as exc:  # a bad or missing video costs its own row
            rows.append(not_run("e2e", provider, precision, 1, name, "failed", first_line(exc),
                                **common, **_memory(device, scope)))
            continue
        timed = runs[spec["warmup"]:]
        e2e = [r["e2e_s"] for r in timed]
        stages = {s: percentiles([r[f"{s}_s"] for r in timed]) for s in STAGES}
        rows.append(record("e2e", provider, precision, 1, name, calls=len(timed),
                           seconds=round(sum(e2e), 6), latency_ms=stages["e2e"],
                           throughput=round(len(e2e) / sum(e2e), 3), stages_ms=stages,
                           top1=timed[-1]["predictions"][0]["label"],
                           pinned=clf._runner.pinned, **common, **_memory(device, scope)))
    clf.close()
    return rows


def main() -> None:
    """``python -m vidsort.bench.cell SPEC_JSON``: print the group's records as one JSON line."""
    spec = json.loads(sys.argv[1])
    protocol = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # C libraries and Python prints go to stderr; stdout carries the records only
    sys.stdout = sys.stderr
    try:
        rows = measure_group(spec)
    except Exception as exc:  # report as rows: the parent must not parse a traceback
        rows = _unavailable(spec, f"{type(exc).__name__}: {first_line(exc)}", status="failed")
    protocol.write(json.dumps(rows) + "\n")
    protocol.flush()


if __name__ == "__main__":
    main()
