"""gpu_check.md: the GPU check's results as Markdown tables (vidsort beside PyTorch)."""

from __future__ import annotations

from typing import Any

from vidsort.bench import markdown as bench_markdown
from vidsort.bench.hardware import summary


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def _speed_rows(results: dict[str, Any]) -> list[str]:
    """One row per implementation x precision x batch, with the ratio to PyTorch fp32."""
    rows: list[tuple[str, str, int, dict[str, Any]]] = []
    for rec in (results.get("vidsort") or {}).get("records", []):
        if rec["kind"] == "model":
            rows.append(("vidsort (ONNX Runtime)", rec["precision"], rec["batch"], rec))
    for dtype in ("fp32", "fp16"):
        for rec in results.get(f"pytorch {dtype}") or []:
            if isinstance(rec, dict) and "batch" in rec:
                rows.append(("PyTorch (transformers, SDPA)", dtype, rec["batch"], rec))
    torch32 = {b: r for impl, p, b, r in rows if impl.startswith("PyTorch") and p == "fp32"
               and r.get("status") == "ok"}
    out = ["| implementation | precision | batch | p50 ms | p90 ms | p99 ms | clips/s | "
           "device MiB | vs PyTorch fp32 (p50) | status |", "|" + " --- |" * 10]
    for impl, precision, batch, rec in sorted(rows, key=lambda r: (r[2], r[0], r[1])):
        lat = rec.get("latency_ms") or {}
        ref = torch32.get(batch)
        ratio = (f"{ref['latency_ms']['p50'] / lat['p50']:.2f}x"
                 if ref and lat.get("p50") else "-")
        status = rec.get("status", "?")
        if status != "ok":
            status += f": {rec.get('reason', '')[:80]}"
        out.append(f"| {impl} | {precision} | {batch} | {_ms(lat.get('p50'))} | "
                   f"{_ms(lat.get('p90'))} | {_ms(lat.get('p99'))} | "
                   f"{_ms(rec.get('throughput'))} | {_ms(rec.get('peak_device_mib'))} | {ratio} | "
                   f"{status} |")
    return out


def _variant_rows(results: dict[str, Any]) -> list[str]:
    out = ["| session settings (fp16) | batch | p50 ms | clips/s | status |",
           "|" + " --- |" * 5]
    for name, report in results.items():
        if not name.startswith("vidsort ") or not isinstance(report, dict):
            continue
        for rec in report.get("records", []):
            lat = rec.get("latency_ms") or {}
            out.append(f"| {name[len('vidsort '):]} | {rec['batch']} | {_ms(lat.get('p50'))} | "
                       f"{_ms(rec.get('throughput'))} | {rec['status']} "
                       f"{rec.get('reason') or ''} |")
        if "error" in report or "skipped" in report:
            out.append(f"| {name} | - | - | - | {report.get('error') or report['skipped']} |")
    return out


def _parity_rows(parity: dict[str, Any]) -> list[str]:
    out = [f"Parity on one seeded batch of {parity.get('batch')} vs {parity.get('reference')}:",
           "", "| logits of | cosine (lowest clip) | top-1 agreement | max abs diff | NaN/inf |",
           "|" + " --- |" * 5]
    for name, fig in parity.items():
        if not isinstance(fig, dict):
            continue
        if "error" in fig:
            out.append(f"| {name} | {fig['error'][:100]} | | | |")
            continue
        out.append(f"| {name} | {fig['cosine_min']:.6f} | {fig['top1_agreement']:.0%} | "
                   f"{fig['max_abs_diff']:.3g} | {fig['nonfinite']} |")
    return out


def markdown(results: dict[str, Any]) -> str:
    """The whole check as Markdown."""
    hw = results["hardware"]
    lines = ["# vidsort GPU check" + (" (DRY RUN on CPU: no GPU figures)"
                                      if results["dry_run"] else ""), "",
             f"*{summary(hw)}; load average at end {hw.get('load_average_at_end')}; "
             f"`{results['command']}`, {results['created']}, {results.get('wall_s')} s.*", ""]
    export = results.get("export", {})
    fp16 = (export.get("validation") or {}).get("fp16", {})
    lines += [f"Export ({export.get('seconds')} s): fp16 checked on "
              f"{fp16.get('provider', '?')}: cosine {fp16.get('cosine', float('nan')):.6f} to "
              f"PyTorch fp32 over {fp16.get('clips')} clips, {fp16.get('nonfinite')} with "
              f"NaN/inf; nodes kept fp32: {len((export.get('fp16') or {}).get('fp32_nodes', {}))}"
              f"; end-to-end clip: {results['video']['origin']}.", ""]
    lines += ["## Model only: vidsort vs PyTorch, same device, same seeded input", ""]
    lines += _speed_rows(results)
    lines += ["", "## Session settings against the defaults (separate runs)", ""]
    lines += _variant_rows(results)
    parity = results.get("parity") or {}
    lines += ["", "## Parity", ""] + (_parity_rows(parity) if "batch" in parity
                                      else [f"not measured: {parity}"])
    lines += ["", "## End to end", ""]
    if isinstance(results.get("vidsort"), dict) and "records" in results["vidsort"]:
        lines += ["`vidsort bench` rows (one clip per call, in-process decode):", "",
                  bench_markdown(results["vidsort"])]
    e2e = results.get("end_to_end") or {}
    if "clips_per_s" in e2e:
        lines += ["", f"`classify_many` over {e2e['clips']} copies of {e2e['video']}, batch "
                  f"{e2e['batch_size']}, {e2e['decode_workers']} decode workers, "
                  f"{e2e['precision']}: **{e2e['clips_per_s']} clips/s** ({e2e['errors']} "
                  "errors)."]
    else:
        lines += ["", f"classify_many: {e2e}"]
    return "\n".join(lines)
