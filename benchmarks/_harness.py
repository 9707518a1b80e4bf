"""Driving configurations side by side: worker processes, interleaved rounds, statistics.

Each configuration lives in its own worker process (`_worker.py`), so its peak RSS is its own.
Only one worker runs at a time; rounds visit every configuration in turn, starting from a
different one each round, so slow drifts of a shared machine spread over all of them and the
ratios between configurations are taken side by side.
"""

from __future__ import annotations

import json
import os
import select
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

WORKER = Path(__file__).resolve().parent / "_worker.py"
STAGES = ("decode_s", "preprocess_s", "inference_s", "postprocess_s", "e2e_s")


class Worker:
    """A configuration's process; `request` sends a command and waits for its reply."""

    def __init__(self, config: dict[str, Any], timeout: float = 900):
        self.config, self.timeout = config, timeout
        env = dict(os.environ)
        threads = str(config.get("threads", 0))
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = threads
        env.setdefault("HF_HUB_OFFLINE", "1")
        env.setdefault("TRANSFORMERS_OFFLINE", "1")
        env.setdefault("TOKENIZERS_PARALLELISM", "false")
        self.stderr_path = Path(config["log_dir"]) / f"{config['id'].replace(' ', '_')}.log"
        self._stderr = open(self.stderr_path, "w")  # noqa: SIM115 (closed in close())
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), json.dumps(config)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self._stderr, text=True, bufsize=1, env=env)

    def request(self, cmd: str, **kw: Any) -> dict[str, Any]:
        """Send ``cmd`` and return the worker's reply (``{"ok": False, "error"}`` on failure)."""
        if self.proc.poll() is not None:
            return {"ok": False, "error": f"worker exited with {self.proc.returncode}"}
        self.proc.stdin.write(json.dumps({"cmd": cmd, **kw}) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], self.timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            self.kill()
            return {"ok": False, "error": f"worker gave no reply (exit {self.proc.poll()}); "
                                          f"see {self.stderr_path}"}
        return json.loads(line)

    def kill(self) -> None:
        """Stop the worker now."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def close(self) -> None:
        """Ask the worker to exit, then make sure it did."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write('{"cmd": "exit"}\n')
                self.proc.stdin.flush()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.kill()
        self._stderr.close()


def start_workers(configs: list[dict[str, Any]], log) -> dict[str, Worker]:
    """Start and load each configuration, one after another (load times do not overlap)."""
    workers = {}
    for config in configs:
        worker = Worker(config)
        t0 = time.perf_counter()
        reply = worker.request("load")
        reply["process_start_to_loaded_s"] = time.perf_counter() - t0
        config["load"] = reply
        if reply.get("ok"):
            workers[config["id"]] = worker
            log(f"  loaded {config['id']}: import {reply['import_s']:.2f} s, "
                f"load {reply['load_s']:.2f} s")
        else:
            log(f"  {config['id']}: could not load: {reply.get('error')}")
            worker.close()
    return workers


def _rotated(items: list, k: int) -> list:
    k %= max(1, len(items))
    return items[k:] + items[:k]


def latency_rounds(workers: dict[str, Worker], videos: list[str], runs: int, warmup: int,
                   log) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Interleaved latency runs: ``warmup + runs`` rounds over videos x configurations.

    Returns:
        ``{config_id: {video: [record per measured round]}}``; a configuration that fails on a
        video records the error once and is not asked again for that video.
    """
    out: dict[str, dict[str, list]] = {cid: {v: [] for v in videos} for cid in workers}
    failed: set[tuple[str, str]] = set()
    ids = list(workers)
    for r in range(warmup + runs):
        for video in videos:
            for cid in _rotated(ids, r):
                if (cid, video) in failed:
                    continue
                reply = workers[cid].request("latency", video=video)
                if not reply.get("ok"):
                    failed.add((cid, video))
                    out[cid][video] = [{"error": reply.get("error")}]
                    log(f"  {cid} on {Path(video).name}: {reply.get('error')}")
                    continue
                if r >= warmup:
                    reply["round"] = r - warmup
                    out[cid][video].append(reply)
        log(f"  latency round {r + 1}/{warmup + runs} done"
            + (" (warm-up)" if r < warmup else ""))
    return out


def throughput_rounds(workers: dict[str, Worker], ids: list[str], videos: list[str],
                      batch_sizes: list[int], passes: int, log) -> dict[str, dict[str, Any]]:
    """Clips/s over a folder with each batch size, ``passes`` interleaved passes each.

    Returns:
        ``{config_id: {str(batch_size): {"clips_per_s" (median), "passes": [...]}}}``.
    """
    out: dict[str, dict[str, Any]] = {cid: {} for cid in ids}
    for b in batch_sizes:
        for p in range(passes):
            for cid in _rotated(ids, p):
                reply = workers[cid].request("throughput", videos=videos, batch_size=b)
                slot = out[cid].setdefault(str(b), {"passes": []})
                if not reply.get("ok"):
                    slot["error"] = reply.get("error")
                    continue
                reply["clips_per_s"] = reply["clips"] / reply["seconds"]
                slot["passes"].append(reply)
        for cid in ids:
            slot = out[cid].get(str(b), {})
            rates = [x["clips_per_s"] for x in slot.get("passes", [])]
            if rates:
                slot["clips_per_s"] = round(statistics.median(rates), 4)
        log(f"  throughput batch {b} done")
    return out


def infer_only_rounds(workers: dict[str, Worker], ids: list[str], batch_sizes: list[int],
                      runs: int) -> dict[str, dict[str, Any]]:
    """The model alone on random input at each batch size (1 warm-up call each)."""
    out: dict[str, dict[str, Any]] = {cid: {} for cid in ids}
    for b in batch_sizes:
        for r in range(runs + 1):
            for cid in _rotated(ids, r):
                reply = workers[cid].request("infer_only", batch_size=b)
                slot = out[cid].setdefault(str(b), {"seconds": []})
                if not reply.get("ok"):
                    slot["error"] = reply.get("error")
                elif r > 0:
                    slot["seconds"].append(reply["seconds"])
        for cid in ids:
            slot = out[cid][str(b)]
            if slot["seconds"]:
                slot.update(p50_s=_pct(slot["seconds"], 50), p95_s=_pct(slot["seconds"], 95),
                            clips_per_s=round(b / _pct(slot["seconds"], 50), 3))
    return out


def _pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(values), q)), 5)


def stage_stats(records: list[dict[str, Any]]) -> dict[str, Any]:
    """p50 / p95 / mean / min of every stage over measured runs (linear-interpolated)."""
    good = [r for r in records if "error" not in r]
    if not good:
        return {"error": records[0]["error"] if records else "no runs"}
    out: dict[str, Any] = {"n": len(good), "top1": good[-1].get("top1"),
                           "frames": good[-1].get("frames")}
    for stage in STAGES:
        values = [r[stage] for r in good]
        out[stage] = {"p50": _pct(values, 50), "p95": _pct(values, 95),
                      "mean": round(statistics.fmean(values), 5), "min": round(min(values), 5)}
    return out


def paired_ratio(records: list[dict[str, Any]], reference: list[dict[str, Any]],
                 stage: str = "e2e_s") -> float | None:
    """Median over rounds of reference time / this time, pairing runs of the same round."""
    ref = {r["round"]: r[stage] for r in reference if "round" in r}
    ratios = [ref[r["round"]] / r[stage] for r in records
              if "round" in r and r["round"] in ref and r[stage] > 0]
    return round(statistics.median(ratios), 3) if ratios else None
