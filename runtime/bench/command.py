"""``vidsort bench``: run the benchmark, print the table, write JSON / Markdown, pick the exit code.

Exit codes: 0 every runnable combination measured (rows that are unavailable here are reported,
not failures), 1 some combination failed while running, 2 nothing could run (e.g. ``--provider
cuda`` on a machine without a GPU) or a usage / model directory error.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from vidsort import bench

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2


def run_command(args: argparse.Namespace) -> int:
    """Run ``vidsort bench`` with parsed arguments; returns the exit code."""
    if min(args.batch) < 1 or args.seconds < 0:
        print("vidsort bench: --batch must be >= 1 and --seconds >= 0", file=sys.stderr)
        return EXIT_USAGE
    report = bench.run(args.model_dir, providers=args.provider, precisions=args.precision,
                       batches=args.batch, videos=args.video, seconds=args.seconds,
                       threads=args.threads,
                       log=lambda line: print(line, file=sys.stderr, flush=True),
                       command=shlex.join(["vidsort", *sys.argv[1:]]))
    print(bench.table(report))
    for path, text in ((args.json, json.dumps(report, indent=1)),
                       (args.markdown, bench.markdown(report))):
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(text + "\n", encoding="utf-8")
    statuses = [r["status"] for r in report["records"]]
    if "ok" not in statuses:
        reasons = sorted({r["reason"] for r in report["records"]})
        print(f"vidsort bench: error: nothing could run here: {reasons[0]}"
              + (f" (and {len(reasons) - 1} more reasons above)" if len(reasons) > 1 else ""),
              file=sys.stderr)
        return EXIT_USAGE
    return EXIT_SOME_FAILED if "failed" in statuses else EXIT_OK
