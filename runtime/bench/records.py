"""The records `vidsort bench` writes: one JSON schema for ``--json``, the Python API and tables.

A report (``vidsort bench --json OUT.json``; what `vidsort.bench.run` returns)::

    {
      "schema": "vidsort-bench", "schema_version": 1,
      "created": ISO 8601 UTC, "command": the command line or API call,
      "model_dir": path, "model": {"model_type", "num_frames", "image_size", "labels",
                                   "variants": {precision: file}},
      "settings": {"providers", "precisions", "batches", "videos", "seconds", "min_calls",
                   "warmup", "threads", "isolate"},
      "hardware": `vidsort.bench.hardware.describe()` (CPU model, flags and SIMD summary, cores,
                  threads, memory, GPUs with driver, library versions, load average at the
                  start and ``load_average_at_end``),
      "records": [record, ...]
    }

A record is one provider x precision x batch (``kind`` "model": the model alone on a seeded
random batch) or one provider x precision x video (``kind`` "e2e": decode -> labels, one clip per
call). Every combination asked for has a record; one that cannot run says why:

    kind          "model" | "e2e"
    provider      short name asked for (cpu, cuda, tensorrt)
    precision     fp32 | int8 | fp16
    batch         clips per call (e2e: 1)
    video         file name (e2e) or null
    status        "ok" | "unavailable" (provider not in this onnxruntime build, its libraries
                  missing, no GPU, variant not exported) | "failed" (it started, then failed:
                  out of memory, a bad video...)
    reason        why not "ok" (one line), else null
    model_file    the ONNX file of the variant, or null
    session_provider  the ONNX Runtime provider that ran it (null if none did)
    io_binding    whether calls ran through an IO binding; pinned: staging buffer page-locked
    load_s        session load time (model dir + session, s), the same for a group's records
    calls         timed calls (warm-up excluded); seconds: their total time
    latency_ms    {"p50", "p90", "p99", "mean", "min", "max"} per call
    throughput    clips per second (batch x calls / seconds)
    peak_rss_mib  peak host RSS during the cell; rss_scope: "cell" or "process" (see measure)
    peak_device_mib   CUDA memory held after the cell (null off GPUs); device_memory_method
    stages_ms     e2e only: {"decode", "preprocess", "inference", "postprocess", "e2e"} ->
                  percentiles like latency_ms
    top1          e2e only: the top label of the last call
"""

from __future__ import annotations

from typing import Any

SCHEMA = "vidsort-bench"
SCHEMA_VERSION = 1
KINDS = ("model", "e2e")
STATUSES = ("ok", "unavailable", "failed")
#: keys every record has (measurements are null when the status is not "ok")
RECORD_KEYS = ("kind", "provider", "precision", "batch", "video", "status", "reason",
               "model_file", "session_provider", "io_binding", "pinned", "load_s", "calls",
               "seconds", "latency_ms", "throughput", "peak_rss_mib", "rss_scope",
               "peak_device_mib", "device_memory_method")
REPORT_KEYS = ("schema", "schema_version", "created", "command", "model_dir", "model",
               "settings", "hardware", "records")
#: e2e stages, in pipeline order
STAGES = ("decode", "preprocess", "inference", "postprocess", "e2e")


def record(kind: str, provider: str, precision: str, batch: int, video: str | None = None,
           **fields: Any) -> dict[str, Any]:
    """A record with every key of the schema (unset measurements null)."""
    out: dict[str, Any] = dict.fromkeys(RECORD_KEYS)
    out.update(kind=kind, provider=provider, precision=precision, batch=batch, video=video,
               status="ok")
    if kind == "e2e":
        out.update(stages_ms=None, top1=None)
    unknown = set(fields) - set(out)
    if unknown:
        raise KeyError(f"not in the bench record schema: {sorted(unknown)}")
    out.update(fields)
    return out


def not_run(kind: str, provider: str, precision: str, batch: int, video: str | None,
            status: str, reason: str, **fields: Any) -> dict[str, Any]:
    """A record for a combination that did not run (``unavailable``) or broke (``failed``)."""
    if status not in STATUSES[1:]:
        raise ValueError(f"status must be unavailable or failed, not {status!r}")
    return record(kind, provider, precision, batch, video, status=status, reason=reason,
                  **fields)


def problems(report: dict[str, Any]) -> list[str]:
    """What is wrong with a report against this schema (empty when it conforms)."""
    found = [f"missing key {k!r}" for k in REPORT_KEYS if k not in report]
    if report.get("schema") != SCHEMA or report.get("schema_version") != SCHEMA_VERSION:
        found.append(f"not {SCHEMA} version {SCHEMA_VERSION}")
    for i, rec in enumerate(report.get("records", [])):
        found += [f"record {i}: missing {k!r}" for k in RECORD_KEYS if k not in rec]
        if rec.get("kind") not in KINDS:
            found.append(f"record {i}: kind {rec.get('kind')!r}")
        if rec.get("status") not in STATUSES:
            found.append(f"record {i}: status {rec.get('status')!r}")
        if rec.get("status") == "ok":
            if not rec.get("calls") or not rec.get("latency_ms"):
                found.append(f"record {i}: ok without measurements")
        elif not rec.get("reason"):
            found.append(f"record {i}: {rec.get('status')} without a reason")
    return found
