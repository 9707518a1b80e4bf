"""Turning a results dict into results.json, summary.md and chart.png."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

STAGE_NAMES = ("decode_s", "preprocess_s", "inference_s", "postprocess_s")
IMPL_NAMES = {"seed": "seed recipe: decord + VideoMAEImageProcessor + PyTorch eager",
              "pipeline": "transformers pipeline(\"video-classification\") (PyAV)",
              "vidsort": "vidsort (ONNX Runtime)"}


def _t(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _mib(value: float | None) -> str:
    return "–" if value is None else (f"{value / 1024:.2f} GiB" if value >= 1024
                                      else f"{value:.0f} MiB")


def _rate(slot: dict[str, Any]) -> str:
    if "clips_per_s" in slot:
        return f"{slot['clips_per_s']:.2f}"
    return f"failed: {slot.get('error', '?')[:60]}" if slot else "–"


def _peak(c: dict[str, Any]) -> float | None:
    return c.get("memory", {}).get("after_latency", {}).get("peak_rss_mib")


def hardware_line(results: dict[str, Any]) -> str:
    """One line naming the CPU, cores, SIMD flags, threads and library versions."""
    m, v = results["machine"], results["versions"]
    libs = ", ".join(f"{k} {v[k]}" for k in ("onnxruntime", "torch", "transformers", "numpy",
                                              "decord2", "av") if k in v)
    return (f"{m.get('cpu_model', '?')}, {m.get('usable_cpus')} cores "
            f"({' '.join(m.get('flags', []))}), {m.get('memory_gib', '?')} GiB, "
            f"{results['settings']['threads']} threads for every implementation; "
            f"Python {v['python']}, {libs}")


def readme_table(results: dict[str, Any], model: str = "base") -> str:
    """The faster-whisper-style table for the top README: implementation, precision, time,
    memory, for one 340x256 clip end to end on CPU."""
    data = results["models"].get(model)
    if not data:
        return ""
    video = "arm_wrestling_340x256.mp4"
    lines = [f"{data['source']['description']}; one 340×256 clip ({video}), decode → labels, "
             f"p50 of {data['plan']['runs']} runs after warm-up:", "",
             "| Implementation | Precision | Time (p50) | vs seed | Max. memory (peak RSS) |",
             "| --- | --- | --- | --- | --- |"]
    for c in data["configs"]:
        if c.get("gpu") or (c["impl"] == "vidsort" and c["backend"] != "decord"):
            continue
        stats = c.get("latency", {}).get(video, {})
        if "e2e_s" not in stats:
            continue
        ratio = c.get("ratio_vs_seed", {}).get(video, {}).get("e2e_s")
        name = IMPL_NAMES[c["impl"]] + (", decord" if c["impl"] == "vidsort" else "")
        lines.append(f"| {name} | {c['precision']} | {_t(stats['e2e_s']['p50'])} | "
                     f"{'–' if ratio is None else f'{ratio:.2f}×'} | {_mib(_peak(c))} |")
    lines += ["", f"*CPU: {hardware_line(results)}. GPU figures pending.*"]
    return "\n".join(lines)


def _model_section(name: str, data: dict[str, Any]) -> list[str]:
    out = [f"## {name}: {data['source']['description']}", ""]
    configs = [c for c in data["configs"] if "latency" in c]
    videos = sorted({v for c in configs for v in c["latency"]})
    head = " | ".join(f"e2e {v} p50 (p95)" for v in videos)
    out += [f"| Configuration | Precision | Provider | Decode | {head} | vs seed "
            f"({videos[0] if videos else ''}) | Peak RSS | Load |",
            "| --- " * (7 + len(videos)) + "|"]
    for c in configs:
        cells = []
        for v in videos:
            s = c["latency"].get(v, {})
            cells.append(f"{_t(s['e2e_s']['p50'])} ({_t(s['e2e_s']['p95'])})" if "e2e_s" in s
                         else f"failed: {s.get('error', '?')[:60]}")
        ratio = c.get("ratio_vs_seed", {}).get(videos[0], {}).get("e2e_s") if videos else None
        load = c.get("load", {})
        out.append(f"| {c['id']} | {c['precision']} | {c['provider']} | {c['backend']} | "
                   + " | ".join(cells) + f" | {'–' if ratio is None else f'{ratio:.2f}×'} | "
                   f"{_mib(_peak(c))} | {_t(load.get('load_s'))} |")
    for v in videos:
        out += ["", f"Stages on {v}, p50 / p95:", "",
                "| Configuration | frames | decode (open+sample+decode) | preprocess | "
                "inference | postprocess | e2e | inference vs seed |", "| --- " * 8 + "|"]
        for c in configs:
            s = c["latency"].get(v, {})
            if "e2e_s" not in s:
                continue
            ratio = c.get("ratio_vs_seed", {}).get(v, {}).get("inference_s")
            frames = "–".join(str(i) for i in s.get("frames") or [])
            out.append(f"| {c['id']} | {frames} | " + " | ".join(
                f"{_t(s[k]['p50'])} / {_t(s[k]['p95'])}" for k in (*STAGE_NAMES, "e2e_s"))
                + f" | {'–' if ratio is None else f'{ratio:.2f}×'} |")
    thr = [c for c in configs if c.get("throughput")]
    if thr:
        sizes = sorted({int(b) for c in thr for b in c["throughput"]})
        out += ["", f"Throughput over a folder of {data['plan']['folder']} SD clips, clips/s "
                f"(median of {data['plan']['passes']} pass(es)):", "",
                "| Configuration | " + " | ".join(f"batch {b}" for b in sizes)
                + " | Peak RSS after |", "| --- " * (len(sizes) + 2) + "|"]
        for c in thr:
            cells = [_rate(c["throughput"].get(str(b), {})) for b in sizes]
            peak = c.get("memory", {}).get("after_throughput", {}).get("peak_rss_mib")
            out.append(f"| {c['id']} | " + " | ".join(cells) + f" | {_mib(peak)} |")
    flops, ceiling = data["flops"], data.get("ceiling", {})
    peak = ceiling.get("ceiling", {})
    out += ["", f"Model cost: {flops['gflops_per_clip_config']} GFLOPs per clip from the config, "
            f"{flops['gflops_per_clip_graph']} from the ONNX graph (FLOPs = 2 × multiply-adds). "
            f"GEMM ceiling at this model's shapes ({ceiling.get('threads')} threads, median of "
            f"repeats): ORT fp32 {peak.get('ort_fp32')} GFLOP/s, NumPy sgemm "
            f"{peak.get('numpy_fp32')} GFLOP/s, ORT int8 MatMulInteger {peak.get('ort_int8')} "
            "GOP/s.", "", "| Configuration | achieved GFLOP/s (inference p50) | ceiling | "
            "efficiency |", "| --- | --- | --- | --- |"]
    for c in configs:
        e = c.get("efficiency")
        if e and e.get("efficiency") is not None:
            out.append(f"| {c['id']} | {e['achieved_gflops']} | {e['ceiling_gflops']} "
                       f"({e['ceiling_kind']}) | {e['efficiency'] * 100:.0f}% |")
    for variant, report in data.get("vidsort_bench", {}).items():
        from vidsort.bench import markdown as bench_markdown

        out += ["", f"vidsort model only ({variant} export; `vidsort.bench`, the code of "
                "`vidsort bench`):", "", bench_markdown(report)]
    gpu = [c for c in data["configs"] if c.get("gpu") and c.get("inference_only")]
    for c in gpu:
        io = c.get("inference_only", {})
        out.append(f"\nGPU {c['id']}: inference alone " + ", ".join(
            f"batch {b}: {_t(r.get('p50_s'))} ({r.get('clips_per_s')} clips/s)"
            for b, r in io.items()))
    return out + [""]


def markdown(results: dict[str, Any]) -> str:
    """summary.md: headline table, per-model tables, import times, sizes, skips."""
    out = [f"# vidsort benchmark ({results['created']})", "",
           f"`{results['command']}` — {results.get('wall_s', '?')} s", "",
           f"Hardware and versions: {hardware_line(results)}.", "",
           f"Load average at start {results['machine'].get('load_average_at_start')}, at end "
           f"{results['machine'].get('load_average_at_end')} (above ~0.5 the CPU was shared "
           "with other work: absolute times are inflated, side-by-side ratios less so).", ""]
    if "base" in results["models"]:
        out += ["## Headline (for the README)", "", readme_table(results), ""]
    for name, data in results["models"].items():
        out += _model_section(name, data)
    imports = results.get("import_times", {})
    if imports:
        out += ["## Import time (fresh interpreter, median)", "", "| Statement | median | min |",
                "| --- | --- | --- |"]
        out += [f"| `{k}` | {_t(v.get('median_s'))} | {_t(v.get('min_s'))} |"
                for k, v in imports.items()]
    sizes = results.get("installed_sizes")
    if sizes:
        out += ["", f"## Installed size ({sizes['method']})", "",
                f"- runtime only (`pip install vidsort`): {sizes['runtime_mb']} MB",
                f"- with the export extra (torch, transformers, optimum): "
                f"{sizes['with_torch_mb']} MB (torch alone {sizes['torch_mb']} MB)",
                f"- the seed recipe's stack (torch + transformers + decord2): "
                f"{sizes['seed_stack_mb']} MB"]
    out += ["", "## Skipped", ""]
    out += [f"- {s['what']}: {s['reason']}" for s in results.get("skipped", [])]
    if not any(c.get("gpu") for d in results["models"].values() for c in d["configs"]):
        out.append("- GPU figures pending (no GPU provider ran).")
    return "\n".join(out) + "\n"


def chart(results: dict[str, Any], path: Path) -> None:
    """PNG: per model, stacked p50 stages on each video, and throughput by batch size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(results["models"].items())
    videos = sorted({v for _, d in models for c in d["configs"] for v in c.get("latency", {})})
    fig, axes = plt.subplots(len(models), len(videos) + 1, squeeze=False,
                             figsize=(6 * (len(videos) + 1), 0.5 + 0.45 * max(
                                 len(d["configs"]) for _, d in models) * 1.0 + 2))
    colours = ("#4c72b0", "#dd8452", "#55a868", "#c44e52")
    for row, (name, data) in enumerate(models):
        configs = [c for c in data["configs"] if "latency" in c]
        for col, video in enumerate(videos):
            ax = axes[row][col]
            left = [0.0] * len(configs)
            for stage, colour in zip(STAGE_NAMES, colours, strict=True):
                values = [c["latency"].get(video, {}).get(stage, {}).get("p50", 0.0)
                          for c in configs]
                ax.barh([c["id"] for c in configs], values, left=left, color=colour,
                        label=stage[:-2])
                left = [a + b for a, b in zip(left, values, strict=True)]
            ax.invert_yaxis()
            ax.set_xlabel("seconds (p50)")
            ax.set_title(f"{name}: {video}", fontsize=9)
            ax.tick_params(labelsize=7)
            if row == 0 and col == 0:
                ax.legend(fontsize=7)
        ax = axes[row][-1]
        thr = [c for c in configs if c.get("throughput")]
        sizes = sorted({int(b) for c in thr for b in c["throughput"]})
        width = 0.8 / max(1, len(thr))
        for i, c in enumerate(thr):
            ax.bar([j + i * width for j in range(len(sizes))],
                   [c["throughput"].get(str(b), {}).get("clips_per_s", 0) for b in sizes],
                   width, label=c["id"])
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(sizes))])
        ax.set_xticklabels([f"batch {b}" for b in sizes])
        ax.set_ylabel("clips/s")
        ax.set_title(f"{name}: throughput over a folder", fontsize=9)
        ax.legend(fontsize=6)
    fig.suptitle(f"vidsort benchmark — {results['machine'].get('cpu_model')}, "
                 f"{results['settings']['threads']} threads", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_all(results: dict[str, Any], out_dir: Path) -> list[Path]:
    """Write results.json, summary.md and chart.png into ``out_dir``; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "results.json", out_dir / "summary.md", out_dir / "chart.png"]
    paths[0].write_text(json.dumps(results, indent=1, default=str) + "\n")
    paths[1].write_text(markdown(results))
    chart(results, paths[2])
    return paths
