"""``vidsort classify ... --out PATH``: the command-line face of a job.

`vidsort.cli` hands the parsed arguments here when ``--out`` is given; this builds the
`JobSpec`, runs it and prints the summary line. Exit codes as for ``classify``: 0 every input
classified, 1 some inputs have error records, 2 usage or model errors; 130 after Ctrl-C.
"""

from __future__ import annotations

import argparse
import math
import sys

from vidsort.cli import decode_limits, isolation_settings
from vidsort.jobs.job import JobSpec, run_job

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def spec_from_args(args: argparse.Namespace) -> JobSpec:
    """The job the ``classify`` arguments describe.

    Args:
        args: parsed ``vidsort classify`` arguments with ``--out``.

    Returns:
        The `JobSpec`.
    """
    limits, isolation = decode_limits(args), isolation_settings(args)
    classifier = dict(provider=args.provider, precision=args.precision, backend=args.backend,
                      threads=args.threads, strategy=args.strategy, num_clips=args.clips,
                      limits=limits)
    segments = None
    if args.segments:
        segments = dict(stride_s=args.stride_s, min_score=args.min_score,
                        batch_size=args.window_batch)
    return JobSpec(model_dir=args.model_dir, inputs=tuple(args.videos), out=args.out,
                   recursive=args.recursive, resume=args.resume, engine=args.engine,
                   ray_address=args.ray_address, classifier=classifier, isolation=isolation,
                   top_k=args.top_k, function=args.function, batch_size=args.batch_size,
                   segments=segments, flush_every=args.flush_every)


def usage_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the job's arguments, in one line, or None."""
    if min(args.top_k, args.clips, args.batch_size, args.decode_workers) < 1 or args.timeout <= 0:
        return ("--top-k, --clips, --batch-size and --decode-workers must be >= 1 and "
                "--timeout > 0")
    if args.flush_every is not None and args.flush_every < 1:
        return "--flush-every must be >= 1"
    if args.ray_address and args.engine != "ray":
        return "--ray-address needs --engine ray"
    if args.vtt or args.plot:
        return "--vtt and --plot do not work with --out (the records hold the segments)"
    if args.segments:
        if args.engine != "local":
            return "--segments runs on the local engine only (for now)"
        if args.stride_s is not None and not (math.isfinite(args.stride_s) and args.stride_s > 0):
            return "--stride-s must be a number of seconds > 0"
        if args.min_score is not None and not math.isfinite(args.min_score):
            return "--min-score must be a number"
        if args.window_batch < 1:
            return "--window-batch must be >= 1"
    return None


def run_job_command(args: argparse.Namespace) -> int:
    """Run the job, print its summary line on stderr and return the exit code."""
    problem = usage_problem(args)
    if problem:
        print(f"vidsort classify: {problem}", file=sys.stderr)
        return EXIT_USAGE
    summary = run_job(spec_from_args(args))
    print(f"vidsort classify: {summary.line()}", file=sys.stderr)
    if summary.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_SOME_FAILED if summary.any_failed else EXIT_OK
