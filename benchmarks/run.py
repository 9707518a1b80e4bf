"""The vidsort benchmark: the seed recipe vs transformers' pipeline vs vidsort, side by side.

    python benchmarks/run.py [--quick] [--models base,tiny] [--providers cpu,cuda,tensorrt]
                             [--runs N] [--threads T] [--out benchmarks/results] [--cache DIR]

Writes ``results.json`` (everything), ``summary.md`` (tables) and ``chart.png`` under ``--out``
and prints the tables. See benchmarks/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _ceiling  # noqa: E402
import _env  # noqa: E402
import _flops  # noqa: E402
import _harness  # noqa: E402
import _models  # noqa: E402
import _report  # noqa: E402

#: precision name -> (export variant, vidsort precision)
PRECISIONS = {"fp32": ("dynamic", "fp32"), "int8-dynamic": ("dynamic", "int8"),
              "int8-static": ("static", "int8"), "fp16": ("fp16", "fp16")}
BACKENDS = ("decord", "pyav")
GPU_PROVIDERS = ("cuda", "tensorrt")
#: per model: measured runs, warm-up rounds, throughput passes, clips in the throughput folder,
#: batch sizes, and whether the full-HD clip is timed too
PLAN = {"base": {"runs": 5, "warmup": 1, "passes": 1, "folder": 8, "batch_sizes": [1, 4, 8],
                 "full_hd": True},
        "tiny": {"runs": 20, "warmup": 2, "passes": 3, "folder": 16, "batch_sizes": [1, 4, 8],
                 "full_hd": True}}
QUICK_PLAN = {"runs": 3, "warmup": 1, "passes": 1, "folder": 4, "batch_sizes": [1, 4],
              "full_hd": False}


def log(message: str) -> None:
    """Progress on stderr (stdout carries the tables)."""
    print(message, file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="seconds, tiny model only: few runs, fp32 + int8 dynamic, no pipeline")
    p.add_argument("--models", default=None, help="comma list of base,tiny (default: both; "
                                                   "--quick: tiny)")
    p.add_argument("--providers", default="cpu", help="comma list of cpu,cuda,tensorrt")
    p.add_argument("--runs", type=int, default=None, help="measured runs per configuration "
                                                          "and video (default: base 5, tiny 20)")
    p.add_argument("--threads", type=int, default=0,
                   help="threads for every implementation (0 = the CPUs this process may use)")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    p.add_argument("--cache", default=None, help="model/export cache (default: "
                                                 "$VIDSORT_BENCH_CACHE or ~/.cache/vidsort-bench)")
    p.add_argument("--import-runs", type=int, default=None,
                   help="fresh interpreters per import statement (default 5; --quick 1)")
    return p.parse_args(argv)


def _cuda_torch() -> bool:
    code = "import torch; print(torch.cuda.is_available())"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    return proc.stdout.strip().endswith("True")


def gpu_status(providers: list[str]) -> tuple[list[str], list[dict[str, str]]]:
    """Which requested GPU providers can run here, and why the others are skipped."""
    from vidsort.session import available_providers

    have = available_providers()
    usable, skipped = [], []
    for p in providers:
        if p not in GPU_PROVIDERS:
            continue
        if p in have:
            usable.append(p)
        else:
            skipped.append({"what": f"provider {p}", "reason": f"this onnxruntime build offers "
                            f"{', '.join(have)} only (install onnxruntime-gpu on a GPU machine)"})
    return usable, skipped


def configurations(model: str, dirs: dict[str, Path], hf_dir: Path, threads: int,
                   quick: bool, gpu: list[str], log_dir: Path) -> list[dict[str, Any]]:
    """The configurations to compare for one model (CPU ones, then GPU ones)."""
    base = {"threads": threads, "log_dir": str(log_dir), "model": model}
    configs = [{**base, "id": "seed", "impl": "seed", "precision": "fp32", "provider": "cpu",
                "backend": "decord", "model_dir": str(hf_dir), "label": "seed recipe (PyTorch)"}]
    if not quick:
        configs.append({**base, "id": "pipeline", "impl": "pipeline", "precision": "fp32",
                        "provider": "cpu", "backend": "pyav", "model_dir": str(hf_dir),
                        "label": "transformers pipeline (PyTorch)"})
    precisions = ["fp32", "int8-dynamic"] + ([] if quick else ["int8-static"])
    for precision in precisions:
        variant, vprec = PRECISIONS[precision]
        for backend in BACKENDS:
            configs.append({**base, "id": f"vidsort {precision} cpu {backend}", "impl": "vidsort",
                            "precision": precision, "vidsort_precision": vprec, "provider": "cpu",
                            "backend": backend, "model_dir": str(dirs[variant]),
                            "label": "vidsort (ONNX Runtime)"})
    for provider in gpu:
        for precision in ("fp16", "fp32"):
            variant, vprec = PRECISIONS[precision]
            configs.append({**base, "id": f"vidsort {precision} {provider} decord",
                            "impl": "vidsort", "precision": precision, "vidsort_precision": vprec,
                            "provider": provider, "backend": "decord", "gpu": True,
                            "model_dir": str(dirs[variant]), "label": "vidsort (ONNX Runtime)"})
    if "cuda" in gpu and _cuda_torch():
        configs.append({**base, "id": "seed cuda", "impl": "seed", "precision": "fp32",
                        "provider": "cuda", "device": "cuda", "backend": "decord", "gpu": True,
                        "model_dir": str(hf_dir), "label": "seed recipe (PyTorch)"})
    return configs


def measure_group(configs: list[dict[str, Any]], plan: dict[str, Any], videos: list[str],
                  folder: list[str], batch_sizes: list[int], infer_batches: list[int]) -> None:
    """Load, latency, memory, throughput (and inference alone) for one group; fills configs."""
    if not configs:
        return
    by_id = {c["id"]: c for c in configs}
    workers = _harness.start_workers(configs, log)
    try:
        latency = _harness.latency_rounds(workers, videos, plan["runs"], plan["warmup"], log)
        for cid, per_video in latency.items():
            by_id[cid]["runs"] = per_video
            by_id[cid]["latency"] = {Path(v).name: _harness.stage_stats(r)
                                     for v, r in per_video.items()}
            by_id[cid]["memory"] = {"after_latency": workers[cid].request("memory")}
        thr_ids = [cid for cid in workers if by_id[cid]["impl"] != "pipeline"
                   or by_id[cid]["model"] != "base"]
        # PyAV rows repeat the decord rows' inference; throughput keeps one backend per model file.
        thr_ids = [cid for cid in thr_ids if by_id[cid]["backend"] != "pyav"
                   or by_id[cid]["impl"] == "pipeline"]
        throughput = _harness.throughput_rounds(workers, thr_ids, folder, batch_sizes,
                                                plan["passes"], log)
        for cid, result in throughput.items():
            by_id[cid]["throughput"] = result
            by_id[cid]["memory"]["after_throughput"] = workers[cid].request("memory")
        if infer_batches:
            # PyTorch only: vidsort's model-only figures come from vidsort.bench (model_only)
            gpu_ids = [cid for cid in workers if by_id[cid].get("gpu")
                       and by_id[cid]["impl"] != "vidsort"]
            for cid, result in _harness.infer_only_rounds(workers, gpu_ids, infer_batches,
                                                          plan["runs"]).items():
                by_id[cid]["inference_only"] = result
    finally:
        for w in workers.values():
            w.close()


def vidsort_model_only(dirs: dict[str, Path], gpu: list[str], threads: int,
                       quick: bool) -> dict[str, Any]:
    """vidsort's model-only rows, measured by `vidsort.bench` (the code of ``vidsort bench``):
    CPU fp32 + int8 (dynamic, static) at batch 1; on each GPU provider fp16 + fp32 at 1, 8, 32.

    Returns:
        ``{variant dir name: vidsort.bench report}``.
    """
    from vidsort import bench

    seconds = 1.0 if quick else 5.0
    plans = {"dynamic": (["cpu"], ["fp32", "int8"], [1]), "static": (["cpu"], ["int8"], [1]),
             "fp16": (gpu, ["fp16", "fp32"], [1, 8, 32])}
    out = {}
    for variant, (providers, precisions, batches) in plans.items():
        if variant in dirs and providers:
            log(f"  vidsort bench: {variant} ({', '.join(providers)}; {precisions}; {batches})")
            out[variant] = bench.run(dirs[variant], providers=providers, precisions=precisions,
                                     batches=batches, seconds=seconds, threads=threads,
                                     command=f"vidsort.bench.run({variant} export)")
    return out


def derive(configs: list[dict[str, Any]], flops: dict[str, Any], ceiling: dict[str, Any]) -> None:
    """Ratios vs the seed recipe (paired by round) and efficiency vs the GEMM ceiling."""
    # GPU rows pair with the seed recipe on CUDA: their rounds ran in the GPU phase.
    seeds = {bool(c.get("gpu")): c for c in configs if c["impl"] == "seed"}
    gflop = 2 * flops["config"]["total"] / 1e9
    peak = ceiling.get("ceiling", {})
    for c in configs:
        c["ratio_vs_seed"] = {}
        seed = seeds.get(bool(c.get("gpu")))
        if seed is not None and "runs" in c and "runs" in seed:
            for video, records in c["runs"].items():
                ref = seed["runs"].get(video, [])
                c["ratio_vs_seed"][Path(video).name] = {
                    stage: _harness.paired_ratio(records, ref, stage)
                    for stage in ("e2e_s", "inference_s", "decode_s", "preprocess_s")}
        lat = next((s for s in c.get("latency", {}).values() if "inference_s" in s), None)
        if lat and peak:
            # int8 models against the int8 kernel; fp32 ones against the faster fp32 kernel.
            kinds = ["ort_int8"] if c["precision"].startswith("int8") else ["ort_fp32",
                                                                           "numpy_fp32"]
            kind = max(kinds, key=lambda k: peak.get(k) or 0.0)
            ceiling_g = peak.get(kind)
            achieved = gflop / lat["inference_s"]["p50"]
            c["efficiency"] = {"achieved_gflops": round(achieved, 2), "ceiling_kind": kind,
                               "ceiling_gflops": ceiling_g,
                               "efficiency": round(achieved / ceiling_g, 3) if ceiling_g and
                               not c.get("gpu") else None}


def run_model(name: str, args: argparse.Namespace, cache: Path, tmp: Path, gpu: list[str],
              threads: int) -> dict[str, Any]:
    """Everything for one model: build/export, measure every configuration, FLOPs, ceiling."""
    plan = dict(QUICK_PLAN if args.quick else PLAN[name])
    if args.runs:
        plan["runs"] = args.runs
    log(f"== model {name}: {plan}")
    source = _models.source_model(name, cache, log)
    variants = ["dynamic"] + ([] if args.quick else ["static"]) + (["fp16"] if gpu else [])
    dirs = {v: _models.export_variant(source, v, cache, log) for v in variants}
    configs = configurations(name, dirs, Path(source["hf_dir"]), threads, args.quick, gpu,
                             tmp / "logs")
    videos = _models.latency_videos(full_hd=plan["full_hd"])
    folder = _models.clips_folder(tmp / f"folder-{name}", plan["folder"])
    cpu = [c for c in configs if not c.get("gpu")]
    measure_group(cpu, plan, videos, folder, plan["batch_sizes"], [])
    gpu_folder = _models.clips_folder(tmp / f"folder-{name}-gpu", 32) if gpu else []
    measure_group([c for c in configs if c.get("gpu")], plan, videos, gpu_folder,
                  [1, 8, 32], [1, 32])

    model_only = vidsort_model_only(dirs, gpu, threads, args.quick)

    hf_config = json.loads((Path(source["hf_dir"]) / "config.json").read_text())
    cfg_macs = _flops.config_macs(hf_config)
    size = hf_config.get("image_size", 224)
    try:
        graph = _flops.graph_macs(dirs["dynamic"] / "model.onnx",
                                  [1, hf_config.get("num_frames", 16), 3, size, size])
    except Exception as exc:  # counting is a cross-check; its failure must not end the run
        graph = {"error": f"{type(exc).__name__}: {exc}"}
    flops = {"config": cfg_macs, "graph": graph, "unit": "MACs (1 multiply-add = 2 FLOPs)",
             "gflops_per_clip_config": round(2 * cfg_macs["total"] / 1e9, 2),
             "gflops_per_clip_graph": round(2 * graph["total"] / 1e9, 2)
             if "total" in graph else None}
    shapes = _ceiling.model_shapes(int(cfg_macs["tokens"]), hf_config.get("hidden_size", 768),
                                   hf_config.get("intermediate_size", 3072),
                                   hf_config.get("num_attention_heads", 12))
    log(f"  GEMM ceiling at {name}'s shapes")
    ceiling = _ceiling.run_subprocess(shapes, threads)
    derive(configs, flops, ceiling)
    skipped = [{"what": f"{name}: {c['id']}", "reason": c["load"].get("error", "?")}
               for c in configs if not c.get("load", {}).get("ok")]
    return {"source": {k: str(v) for k, v in source.items()}, "plan": plan, "skipped": skipped,
            "model_dirs": {k: str(v) for k, v in dirs.items()}, "flops": flops,
            "vidsort_bench": model_only,
            "ceiling": ceiling, "configs": configs}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit code."""
    args = parse_args(argv)
    started = time.perf_counter()
    threads = args.threads or len(os.sched_getaffinity(0))
    models = (args.models or ("tiny" if args.quick else "base,tiny")).split(",")
    providers = [p.strip() for p in args.providers.split(",") if p.strip()]
    cache = Path(args.cache) if args.cache else _models.default_cache()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    gpu, skipped = gpu_status(providers)
    results: dict[str, Any] = {
        "schema": 1, "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": "python benchmarks/run.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "quick": args.quick, "machine": _env.machine(), "versions": _env.versions(),
        "settings": {"threads": threads, "providers": providers, "models": models,
                     "top_k": 5, "decord_threads_seed": 1, "decode_threads_vidsort": 0,
                     "frame_sample_rate": 4, "cache": str(cache)},
        "skipped": skipped, "models": {}}
    with tempfile.TemporaryDirectory(prefix="vidsort-bench-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "logs").mkdir()
        for name in models:
            results["models"][name] = run_model(name, args, cache, tmp, gpu, threads)
            results["skipped"] += results["models"][name]["skipped"]
    log("== import times and installed sizes")
    statements = _env.QUICK_IMPORTS if args.quick else None
    results["import_times"] = _env.import_times(args.import_runs or (1 if args.quick else 5),
                                                statements)
    results["installed_sizes"] = _env.installed_sizes()
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["wall_s"] = round(time.perf_counter() - started, 1)
    paths = _report.write_all(results, out_dir)
    print(_report.markdown(results))
    log("wrote " + ", ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
