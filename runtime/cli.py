"""The `vidsort` command: export, classify, demo.

Bad input never shows a traceback: every `VidsortError` becomes one line (or a JSON error
object) and an exit code — 0 all classified, 1 some inputs failed, 2 usage or model errors.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence

from vidsort import __version__, options
from vidsort.errors import VidsortError, import_extra

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a Hugging Face video classifier to an ONNX model dir",
                       description="Export MODEL (a Hub id, a save_pretrained directory, or an "
                                   "embedded model such as tiny-motion) to OUT_DIR. Needs the "
                                   "export extra: pip install 'vidsort[export]'.")
    p.add_argument("model", help="Hub id, local save_pretrained directory, or embedded name")
    p.add_argument("out_dir", help="directory to write (refused if non-empty, see --overwrite)")
    p.add_argument("--quantize", choices=["dynamic", "static"],
                   help="also write model_quantized.onnx (int8)")
    p.add_argument("--calibration", nargs="+", metavar="PATH",
                   help="videos or folders of videos for --quantize static")
    p.add_argument("--fp16", action="store_true", help="also write model_fp16.onnx (for GPUs)")
    p.add_argument("--fp16-videos", nargs="+", metavar="PATH",
                   help="videos or folders whose clips the fp16 range scan and check also run "
                        "on (default: the --calibration videos)")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default: exporter's)")
    p.add_argument("--no-validate", dest="validate", action="store_false",
                   help="skip the PyTorch vs ONNX Runtime check")
    p.add_argument("--no-optimize", dest="optimize", action="store_false",
                   help="skip ONNX Runtime's transformer optimizer")
    p.add_argument("--frame-sample-rate", type=int, default=None,
                   help="sampling stride recorded in the manifest (default: the "
                        "architecture's training recipe, see vidsort.supported)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty OUT_DIR")


def _add_classify(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("classify", help="classify videos with an exported model dir (torch-free)")
    p.add_argument("model_dir", help="directory written by `vidsort export`")
    p.add_argument("videos", nargs="+", metavar="VIDEO", help="video files (see --recursive)")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--provider", default="auto", choices=options.PROVIDER_CHOICES)
    p.add_argument("--precision", default="auto", choices=options.PRECISION_CHOICES)
    p.add_argument("--backend", default=options.DEFAULT_BACKEND, choices=options.BACKENDS)
    p.add_argument("--strategy", default=None, choices=options.STRATEGIES,
                   help="frame sampling (default: the model's, usually centre)")
    p.add_argument("--clips", type=int, default=1, help="clips per video; logits are averaged")
    p.add_argument("--function", default=None, choices=options.FUNCTIONS)
    p.add_argument("--threads", type=int, default=0, help="inference threads (0 = all cores)")
    p.add_argument("--batch-size", type=int, default=1, help="videos per inference call")
    p.add_argument("--recursive", "-r", action="store_true",
                   help="expand directories into the videos they contain")
    p.add_argument("--json", action="store_true", help="one JSON line per input, in input order")
    g = p.add_argument_group("isolation and limits",
                             "Decoding runs in a worker process by default, so a file that hangs "
                             "or crashes the decoder costs only its own result.")
    g.add_argument("--isolate", action=argparse.BooleanOptionalAction, default=True,
                   help="decode in worker processes (default: on)")
    g.add_argument("--timeout", type=float, default=options.DECODE_TIMEOUT_S, metavar="S",
                   help="per-file decode timeout in seconds (isolated mode; default %(default)s)")
    g.add_argument("--max-memory-mb", type=int, default=options.DECODE_MEMORY_MB, metavar="MB",
                   help="memory cap per decode worker (0 = none; default %(default)s)")
    g.add_argument("--decode-workers", type=int, default=options.DECODE_WORKERS, metavar="N",
                   help="decode worker processes (default %(default)s)")
    g.add_argument("--max-file-mb", type=float, default=options.MAX_FILE_BYTES / 1024**2,
                   metavar="MB", help="refuse larger files (default %(default)s)")
    g.add_argument("--max-pixels", type=int, default=options.MAX_PIXELS, metavar="N",
                   help="pixels per frame above which frames are downscaled at decode")
    g.add_argument("--max-duration", type=float, default=options.MAX_DURATION_S, metavar="S",
                   help="refuse longer videos (seconds; default %(default)s)")
    g.add_argument("--max-frames", type=int, default=None, metavar="N",
                   help="frames decoded per clip at most (default: no limit)")
    _add_segments_options(p)
    _add_job_options(p)


def _add_job_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("archive jobs",
                             "Write one record per input file to --out, durably: a killed job "
                             "resumes where it stopped (see README: Archive jobs).")
    g.add_argument("--out", metavar="PATH",
                   help="results.jsonl, results.parquet, or a directory for Parquet part files; "
                        "inputs may also be @LIST files (one path per line)")
    g.add_argument("--resume", action="store_true",
                   help="continue the job in --out: skip files it holds (same path, size, mtime)")
    g.add_argument("--engine", default=options.ENGINES[0], choices=options.ENGINES,
                   help="run in this process or as a Ray Data pipeline (needs the ray extra)")
    g.add_argument("--ray-address", metavar="ADDR",
                   help="join a Ray cluster: auto or ray://host:port (default: start a local "
                        "Ray instance)")
    g.add_argument("--flush-every", type=int, default=None, metavar="N",
                   help="write --out every N records (default: by output kind; a batch is "
                        "also written once its first record has waited a while)")


def _add_segments_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("long videos: labels with timestamps",
                             "Windows over the whole video, decoded once, merged into labelled "
                             "segments (see README: Long videos).")
    g.add_argument("--segments", action="store_true",
                   help="label windows over each whole video and merge them into segments")
    g.add_argument("--stride-s", type=float, default=None, metavar="S",
                   help="seconds between window starts (default: half a window)")
    g.add_argument("--min-score", type=float, default=None, metavar="X",
                   help="leave stretches whose top score is below X unlabelled")
    g.add_argument("--window-batch", type=int, default=options.SEGMENT_BATCH_SIZE, metavar="N",
                   help="windows per inference call (default %(default)s)")
    g.add_argument("--vtt", metavar="DIR", help="write one WebVTT file of segments per video "
                                                "(implies --segments)")
    g.add_argument("--plot", metavar="DIR", help="write one PNG of scores over time per video "
                                                 "(implies --segments; needs the plot extra)")


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="offline demo: export the embedded tiny-motion model, "
                                    "render clips and classify them")
    p.add_argument("--out", default=None, help="model dir to write (default: a cache dir)")
    p.add_argument("--clips", type=int, default=8, help="sample clips to render")


def _add_serve(sub: argparse._SubParsersAction) -> None:
    from vidsort.serve import settings as serve

    p = sub.add_parser("serve", help="HTTP inference server (needs the serve extra)",
                       description="Serve MODEL_DIR over HTTP: POST /v1/classify, GET /v1/model, "
                                   "/healthz, /readyz, /metrics and a web page at /. Needs the "
                                   "serve extra: pip install 'vidsort[serve]'.")
    p.add_argument("model_dir", help="directory written by `vidsort export`")
    p.add_argument("--host", default=serve.HOST, help="address to listen on (default %(default)s)")
    p.add_argument("--port", type=int, default=serve.PORT, help="(default %(default)s)")
    p.add_argument("--provider", default="auto", choices=options.PROVIDER_CHOICES)
    p.add_argument("--precision", default="auto", choices=options.PRECISION_CHOICES)
    p.add_argument("--threads", type=int, default=0, help="inference threads (0 = all cores)")
    p.add_argument("--max-batch", type=int, default=serve.MAX_BATCH, metavar="N",
                   help="videos per inference call at most (default %(default)s)")
    p.add_argument("--max-wait-ms", type=float, default=serve.MAX_WAIT_MS, metavar="MS",
                   help="how long a decoded clip waits for a batch to fill (default %(default)s)")
    p.add_argument("--max-queue", type=int, default=serve.MAX_QUEUE, metavar="N",
                   help="requests in progress at once; more get 503 (default %(default)s)")
    p.add_argument("--decode-workers", type=int, default=options.DECODE_WORKERS, metavar="N",
                   help="decode worker processes (default %(default)s)")
    p.add_argument("--timeout", type=float, default=options.DECODE_TIMEOUT_S, metavar="S",
                   help="per-upload decode timeout, then 504 (default %(default)s)")
    p.add_argument("--max-memory-mb", type=int, default=options.DECODE_MEMORY_MB, metavar="MB",
                   help="memory cap per decode worker (0 = none; default %(default)s)")
    p.add_argument("--max-upload-mb", type=float, default=serve.MAX_UPLOAD_MB, metavar="MB",
                   help="largest upload; 413 beyond (default %(default)s)")


def _add_bench(sub: argparse._SubParsersAction) -> None:
    from vidsort import bench

    p = sub.add_parser("bench", help="latency, throughput and memory per provider x precision x "
                                     "batch (torch-free)",
                       description="Benchmark MODEL_DIR: model-only latency p50/p90/p99, "
                                   "throughput, session load time, peak host RSS (and device "
                                   "memory on GPU) for every provider x precision x batch; with "
                                   "--video, end to end per clip with the stage split. "
                                   "Combinations that cannot run are rows with the reason.")
    p.add_argument("model_dir", help="directory written by `vidsort export`")
    p.add_argument("--provider", nargs="+", default=list(bench.DEFAULT_PROVIDERS),
                   choices=bench.DEFAULT_PROVIDERS, metavar="PROVIDER",
                   help="%(choices)s (default: all)")
    p.add_argument("--precision", nargs="+", default=list(bench.DEFAULT_PRECISIONS),
                   choices=bench.DEFAULT_PRECISIONS, metavar="PRECISION",
                   help="%(choices)s (default: all)")
    p.add_argument("--batch", nargs="+", type=int, default=list(bench.DEFAULT_BATCHES),
                   metavar="N", help="clips per call (default: 1)")
    p.add_argument("--video", nargs="+", default=[], metavar="FILE",
                   help="also time these end to end, one clip per call")
    p.add_argument("--seconds", type=float, default=bench.DEFAULT_SECONDS, metavar="S",
                   help=f"timed seconds per cell, at least {bench.MIN_CALLS} calls "
                        "(default %(default)s)")
    p.add_argument("--threads", type=int, default=0, metavar="N",
                   help="inference threads (0 = one per physical core)")
    p.add_argument("--json", metavar="OUT.json", help="write the records (documented schema)")
    p.add_argument("--markdown", metavar="OUT.md", help="write Markdown tables")


def _add_verify(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify", help="check a model dir against its manifest (torch-free)",
                       description="Check MODEL_DIR: every file's size and sha256 against "
                                   "vidsort.json, its format version, that each variant loads "
                                   "in ONNX Runtime with the manifest's input/output shapes and "
                                   "labels; with --video, classify it with each variant and "
                                   "report top-1 agreement. Exit 0 all good, 1 a check failed "
                                   "(one line per failure, naming the file), 2 usage.")
    p.add_argument("model_dir", help="directory written by `vidsort export`")
    p.add_argument("--video", metavar="FILE", help="classify FILE with every variant")
    p.add_argument("--json", action="store_true", help="one JSON object instead of text")
    p.add_argument("--require-agreement", action="store_true",
                   help="with --video: a variant whose top-1 differs from fp32's fails")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also used by the docs)."""
    parser = argparse.ArgumentParser(prog="vidsort", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"vidsort {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_export(sub)
    _add_classify(sub)
    _add_demo(sub)
    _add_bench(sub)
    _add_serve(sub)
    _add_verify(sub)
    return parser


def _cmd_export(args: argparse.Namespace) -> int:
    export_model = import_extra("vidsort.export.exporter", "export").export_model
    if args.quantize == "static" and not args.calibration:
        print("vidsort export: --quantize static needs --calibration VIDEO_OR_DIR ...",
              file=sys.stderr)
        return EXIT_USAGE
    export_model(args.model, args.out_dir, quantize=args.quantize, calibration=args.calibration,
                 fp16=args.fp16, fp16_videos=args.fp16_videos, opset=args.opset,
                 validate=args.validate, overwrite=args.overwrite, optimize=args.optimize,
                 frame_sample_rate=args.frame_sample_rate, log=print)
    return EXIT_OK


def _print_table(result: dict) -> None:
    if "error" in result:
        error = result["error"]
        print(f"{result['video']}\n   error: {error['type']}: {error['message']}\n")
        return
    timings = result.get("timings", {})
    total = sum(v for v in timings.values() if isinstance(v, int | float))
    extra = f" (via {result['backend']}" + (", fallback" if result.get("fallback") else "")
    print(f"{result['video']}{extra}, {len(result.get('frames', []))} frames, {total:.2f} s)")
    for rank, pred in enumerate(result["predictions"], 1):
        print(f"  {rank:>2}. {pred['label']:<40} {pred['score']:.4f}")
    print()


def _cmd_segments(args: argparse.Namespace) -> int:
    from vidsort.segments.cli import run_segments

    return run_segments(args)


def decode_limits(args: argparse.Namespace):
    """The `vidsort.decode.DecodeLimits` of ``classify``'s limit options."""
    from vidsort.decode import DecodeLimits

    return DecodeLimits(max_file_bytes=int(args.max_file_mb * 1024**2),
                        max_pixels=args.max_pixels, max_duration_s=args.max_duration,
                        max_frames=args.max_frames)


def isolation_settings(args: argparse.Namespace):
    """``classify``'s decode isolation (`vidsort.isolation.IsolationSettings`), or None with
    ``--no-isolate``. Workers fork from this process: start them before the model loads."""
    if not args.isolate:
        return None
    from vidsort.isolation import IsolationSettings

    return IsolationSettings(workers=args.decode_workers, timeout_s=args.timeout,
                             memory_mb=args.max_memory_mb or None, start_method="fork")


def _cmd_classify_job(args: argparse.Namespace) -> int:
    from vidsort.jobs.command import run_job_command

    return run_job_command(args)


def _cmd_classify(args: argparse.Namespace) -> int:
    if args.out is not None:  # an archive job (vidsort.jobs)
        return _cmd_classify_job(args)
    if args.segments or args.vtt or args.plot:
        return _cmd_segments(args)
    from vidsort.classifier import VideoClassifier
    from vidsort.inputs import expand_inputs
    from vidsort.isolation import IsolatedPreparer

    if min(args.top_k, args.clips, args.batch_size, args.decode_workers) < 1 or args.timeout <= 0:
        print("vidsort classify: --top-k, --clips, --batch-size and --decode-workers must be "
              ">= 1 and --timeout > 0", file=sys.stderr)
        return EXIT_USAGE
    limits = decode_limits(args)
    preparer = None
    settings = isolation_settings(args)
    if settings is not None:
        # Fork the first worker now, before the model loads: it starts from a small process
        # with no inference threads, and its start overlaps the model load (+~30 ms a run).
        preparer = IsolatedPreparer(settings)
        preparer.start()
    try:
        clf = VideoClassifier(args.model_dir, provider=args.provider, precision=args.precision,
                              backend=args.backend, threads=args.threads,
                              strategy=args.strategy, num_clips=args.clips, limits=limits,
                              isolation=preparer)
        failed = 0
        videos = expand_inputs(args.videos, recursive=args.recursive)
        for result in clf.classify_many(videos, top_k=args.top_k, function=args.function,
                                        batch_size=args.batch_size):
            failed += "error" in result
            if args.json:
                result.setdefault("precision", clf.precision)
                result.setdefault("provider", clf.provider)
                print(json.dumps(result, ensure_ascii=False), flush=True)
            else:
                _print_table(result)
    finally:
        if preparer is not None:
            preparer.close()
    return EXIT_SOME_FAILED if failed else EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    run_demo = import_extra("vidsort.export.demo.run", "export").run_demo
    return run_demo(out_dir=args.out, num_clips=args.clips)


def _cmd_serve(args: argparse.Namespace) -> int:
    run_server = import_extra("vidsort.serve.server", "serve").run_server
    from vidsort.serve import ServeSettings

    return run_server(ServeSettings(
        model_dir=args.model_dir, host=args.host, port=args.port, provider=args.provider,
        precision=args.precision, threads=args.threads, max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms, max_queue=args.max_queue,
        decode_workers=args.decode_workers, timeout_s=args.timeout,
        memory_mb=args.max_memory_mb or None, max_upload_mb=args.max_upload_mb))


def _cmd_bench(args: argparse.Namespace) -> int:
    from vidsort.bench.command import run_command

    return run_command(args)


def _cmd_verify(args: argparse.Namespace) -> int:
    from vidsort.verify import run_command

    return run_command(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `vidsort` command; returns the exit code."""
    args = build_parser().parse_args(argv)
    handlers = {"export": _cmd_export, "classify": _cmd_classify, "demo": _cmd_demo,
                "serve": _cmd_serve, "bench": _cmd_bench, "verify": _cmd_verify}
    started = time.perf_counter()
    try:
        return handlers[args.command](args)
    except VidsortError as exc:
        print(f"vidsort {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code if exc.exit_code != EXIT_SOME_FAILED else EXIT_USAGE
    except KeyboardInterrupt:
        print(f"vidsort {args.command}: interrupted after {time.perf_counter() - started:.1f} s",
              file=sys.stderr)
        return 130
    except Exception as exc:  # last line of defence: one line, not a traceback
        if os.environ.get("VIDSORT_DEBUG"):
            raise
        print(f"vidsort {args.command}: internal error: {type(exc).__name__}: {exc} "
              "(set VIDSORT_DEBUG=1 for a traceback)", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
