"""``vidsort classify MODEL_DIR VIDEO... --segments``: a timeline per video, JSON, WebVTT, PNG.

Called by `vidsort.cli` with the parsed classify arguments. One bad video costs its own result
(an error line, exit code 1); usage and model errors stop the command (exit code 2).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import Any

from vidsort.errors import VideoError, error_record, import_extra

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2


def _usage_problem(args: argparse.Namespace) -> str | None:
    if args.stride_s is not None and not (math.isfinite(args.stride_s) and args.stride_s > 0):
        return "--stride-s must be a number of seconds > 0"
    if args.min_score is not None and not math.isfinite(args.min_score):
        return "--min-score must be a number"
    if min(args.top_k, args.window_batch, args.decode_workers) < 1 or args.timeout <= 0:
        return "--top-k, --window-batch and --decode-workers must be >= 1 and --timeout > 0"
    return None


def run_segments(args: argparse.Namespace) -> int:
    """Run ``classify --segments`` (also reached through ``--vtt`` / ``--plot``).

    Args:
        args: the classify command's arguments.

    Returns:
        The exit code: 0 all videos done, 1 some failed, 2 usage errors.
    """
    problem = _usage_problem(args)
    if problem:
        print(f"vidsort classify: {problem}", file=sys.stderr)
        return EXIT_USAGE
    plot = import_extra("vidsort.segments.plot", "plot") if args.plot else None  # fail early
    for directory in (args.vtt, args.plot):
        if directory:
            try:
                os.makedirs(directory, exist_ok=True)
            except OSError as exc:
                print(f"vidsort classify: cannot create {directory}: {exc}", file=sys.stderr)
                return EXIT_USAGE
    if args.strategy is not None or args.clips != 1:
        print("vidsort classify: note: --strategy and --clips do not apply with --segments "
              "(windows tile the whole video)", file=sys.stderr)

    from vidsort.classifier import VideoClassifier
    from vidsort.decode import DecodeLimits
    from vidsort.inputs import expand_inputs
    from vidsort.isolation import IsolationSettings
    from vidsort.segments.run import segment_video
    from vidsort.segments.vtt import output_path, write_vtt

    limits = DecodeLimits(max_file_bytes=int(args.max_file_mb * 1024**2),
                          max_pixels=args.max_pixels, max_duration_s=args.max_duration,
                          max_frames=args.max_frames)
    # one worker process per video, forked from a fork server (never from this process once
    # it runs inference threads); --timeout is the longest the worker may go without progress
    isolation = IsolationSettings(timeout_s=args.timeout, memory_mb=args.max_memory_mb or None) \
        if args.isolate else None
    clf = VideoClassifier(args.model_dir, provider=args.provider, precision=args.precision,
                          backend=args.backend, threads=args.threads, limits=limits,
                          isolation=isolation)
    progress = sys.stderr.isatty()
    failed = 0
    taken: dict[str, set[str]] = {"vtt": set(), "png": set()}
    for video in expand_inputs(args.videos, recursive=args.recursive):
        try:
            run = segment_video(clf, video, stride_s=args.stride_s, top_k=args.top_k,
                                min_score=args.min_score, batch_size=args.window_batch,
                                function=args.function, progress=progress)
        except VideoError as exc:
            failed += 1
            _print_error({"video": os.fspath(video), "error": error_record(exc)}, args.json)
            continue
        result = run.result
        try:
            if args.vtt:
                write_vtt(result, output_path(args.vtt, result["video"], ".vtt", taken["vtt"]))
            if plot is not None:
                plot.plot_scores(result, run.scores, clf.labels,
                                 output_path(args.plot, result["video"], ".png", taken["png"]))
        except OSError as exc:
            failed += 1
            print(f"vidsort classify: {result['video']}: cannot write output: {exc}",
                  file=sys.stderr)
        if args.json:
            print(json.dumps(result, ensure_ascii=False), flush=True)
        else:
            print(timeline_text(result, args.min_score), flush=True)
    return EXIT_SOME_FAILED if failed else EXIT_OK


def _print_error(record: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(record, ensure_ascii=False), flush=True)
    else:
        error = record["error"]
        print(f"{record['video']}\n   error: {error['type']}: {error['message']}\n", flush=True)


def clock(seconds: float) -> str:
    """``m:ss.s`` (``h:mm:ss.s`` from an hour) for a timeline."""
    tenths = max(0, round(seconds * 10))
    hours, tenths = divmod(tenths, 36000)
    minutes, tenths = divmod(tenths, 600)
    text = f"{minutes:02d}:{tenths / 10:04.1f}"
    return f"{hours}:{text}" if hours else text


def timeline_text(result: dict[str, Any], min_score: float | None = None) -> str:
    """A readable timeline: the segments, then the whole video's labels.

    Args:
        result: a `vidsort.segments.segment_video` result.
        min_score: the threshold used, to explain gaps.

    Returns:
        The text (ends with an empty line).
    """
    windows = result["windows"]
    lines = [f"{result['video']}  ({result['duration_s']:.1f} s, {result['fps']:g} fps, "
             f"{len(windows)} window{'s' if len(windows) != 1 else ''})"]
    width = max([len(s["label"]) for s in result["segments"]] + [10])
    cursor = 0.0
    for seg in result["segments"]:
        if seg["start_s"] > cursor + 1e-6:
            lines.append(_gap(cursor, seg["start_s"], min_score))
        lines.append(f"  {clock(seg['start_s'])} - {clock(seg['end_s'])}  "
                     f"{seg['label']:<{width}}  {seg['score']:.2f}")
        cursor = seg["end_s"]
    if result["duration_s"] > cursor + 1e-6:
        lines.append(_gap(cursor, result["duration_s"], min_score))
    labels = ", ".join(f"{p['label']} {p['score']:.2f}" for p in result["labels"])
    lines += [f"  whole video: {labels}", ""]
    return "\n".join(lines)


def _gap(start: float, end: float, min_score: float | None) -> str:
    why = f"top score below {min_score:g}" if min_score is not None else "no label"
    return f"  {clock(start)} - {clock(end)}  ({why})"
