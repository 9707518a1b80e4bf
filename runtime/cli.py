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
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default: exporter's)")
    p.add_argument("--no-validate", dest="validate", action="store_false",
                   help="skip the PyTorch vs ONNX Runtime check")
    p.add_argument("--no-optimize", dest="optimize", action="store_false",
                   help="skip ONNX Runtime's transformer optimizer")
    p.add_argument("--frame-sample-rate", type=int, default=4,
                   help="sampling stride recorded in the manifest (default 4)")
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


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="offline demo: export the embedded tiny-motion model, "
                                    "render clips and classify them")
    p.add_argument("--out", default=None, help="model dir to write (default: a cache dir)")
    p.add_argument("--clips", type=int, default=8, help="sample clips to render")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also used by the docs)."""
    parser = argparse.ArgumentParser(prog="vidsort", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"vidsort {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_export(sub)
    _add_classify(sub)
    _add_demo(sub)
    return parser


def _cmd_export(args: argparse.Namespace) -> int:
    export_model = import_extra("vidsort.export.exporter", "export").export_model
    if args.quantize == "static" and not args.calibration:
        print("vidsort export: --quantize static needs --calibration VIDEO_OR_DIR ...",
              file=sys.stderr)
        return EXIT_USAGE
    export_model(args.model, args.out_dir, quantize=args.quantize, calibration=args.calibration,
                 fp16=args.fp16, opset=args.opset, validate=args.validate,
                 overwrite=args.overwrite, optimize=args.optimize,
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


def _cmd_classify(args: argparse.Namespace) -> int:
    from vidsort.classifier import VideoClassifier
    from vidsort.decode import DecodeLimits
    from vidsort.inputs import expand_inputs
    from vidsort.isolation import IsolatedPreparer, IsolationSettings

    if min(args.top_k, args.clips, args.batch_size, args.decode_workers) < 1 or args.timeout <= 0:
        print("vidsort classify: --top-k, --clips, --batch-size and --decode-workers must be "
              ">= 1 and --timeout > 0", file=sys.stderr)
        return EXIT_USAGE
    limits = DecodeLimits(max_file_bytes=int(args.max_file_mb * 1024**2),
                          max_pixels=args.max_pixels, max_duration_s=args.max_duration,
                          max_frames=args.max_frames)
    preparer = None
    if args.isolate:
        settings = IsolationSettings(workers=args.decode_workers, timeout_s=args.timeout,
                                     memory_mb=args.max_memory_mb or None,
                                     start_method="fork")
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `vidsort` command; returns the exit code."""
    args = build_parser().parse_args(argv)
    handlers = {"export": _cmd_export, "classify": _cmd_classify, "demo": _cmd_demo}
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
