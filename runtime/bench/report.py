"""`vidsort bench` output: a plain table for the terminal and Markdown for READMEs.

Both name the hardware first (`vidsort.bench.hardware.summary`), list model-only rows, then the
end-to-end rows with their stage split, and give each distinct reason for a row that did not run
once, as a numbered note.
"""

from __future__ import annotations

from typing import Any

from vidsort.bench.hardware import summary
from vidsort.bench.records import STAGES

_MODEL_HEAD = ("provider", "precision", "batch", "p50 ms", "p90 ms", "p99 ms", "clips/s",
               "load s", "peak RSS MiB", "device MiB", "status")
_E2E_HEAD = ("provider", "precision", "video", "e2e p50 ms", *(f"{s} p50" for s in STAGES[:-1]),
             "clips/s", "top-1", "status")


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _rows(report: dict[str, Any]) -> tuple[list[tuple], list[tuple], list[str]]:
    notes: list[str] = []

    def status(rec: dict[str, Any]) -> str:
        if rec["status"] == "ok":
            return "ok"
        if rec["reason"] not in notes:
            notes.append(rec["reason"])
        return f"{rec['status']} [{notes.index(rec['reason']) + 1}]"

    model, e2e = [], []
    for rec in report["records"]:
        lat = rec.get("latency_ms") or {}
        if rec["kind"] == "model":
            model.append((rec["provider"], rec["precision"], str(rec["batch"]),
                          _num(lat.get("p50"), 2), _num(lat.get("p90"), 2),
                          _num(lat.get("p99"), 2), _num(rec.get("throughput"), 2),
                          _num(rec.get("load_s"), 2), _num(rec.get("peak_rss_mib"), 0),
                          _num(rec.get("peak_device_mib"), 0), status(rec)))
        else:
            stages = rec.get("stages_ms") or {}
            e2e.append((rec["provider"], rec["precision"], rec["video"],
                        _num(lat.get("p50")),
                        *(_num((stages.get(s) or {}).get("p50")) for s in STAGES[:-1]),
                        _num(rec.get("throughput"), 2), rec.get("top1") or "-", status(rec)))
    return model, e2e, notes


def _plain(head: tuple, rows: list[tuple]) -> str:
    widths = [max(len(str(r[i])) for r in (head, *rows)) for i in range(len(head))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in (head, *rows)]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _md(head: tuple, rows: list[tuple]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(" --- " for _ in head) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _header(report: dict[str, Any]) -> str:
    s = report["settings"]
    m = report["model"]
    return (f"model {report['model_dir']} ({m['model_type']}, {m['num_frames']} frames of "
            f"{m['image_size'][0]}x{m['image_size'][1]}, {m['labels']} labels); "
            f"{s['seconds']:g} s or >= {s['min_calls']} calls per cell after {s['warmup']} "
            f"warm-up calls")


def table(report: dict[str, Any]) -> str:
    """The report as plain-text tables (what ``vidsort bench`` prints)."""
    model, e2e, notes = _rows(report)
    parts = [f"hardware: {summary(report['hardware'])}", _header(report), "",
             "model only (seeded random input; ms per call):", _plain(_MODEL_HEAD, model)]
    if e2e:
        parts += ["", "end to end, one clip per call (decode -> labels; stage p50 in ms):",
                  _plain(_E2E_HEAD, e2e)]
    if notes:
        parts += [""] + [f"[{i}] {note}" for i, note in enumerate(notes, 1)]
    return "\n".join(parts)


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown tables, the hardware named under them."""
    model, e2e, notes = _rows(report)
    parts = [_md(_MODEL_HEAD, model)]
    if e2e:
        parts += ["", "End to end, one clip per call (stage p50 in ms):", "", _md(_E2E_HEAD, e2e)]
    if notes:
        parts += [""] + [f"{i}. {note}" for i, note in enumerate(notes, 1)]
    parts += ["", f"*{summary(report['hardware'])}. {_header(report)}; "
                  f"`{report['command']}`, {report['created']}.*"]
    return "\n".join(parts)
