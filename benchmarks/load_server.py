"""Load test of `vidsort serve` on loopback, bounded, with hostile traffic, checked end to end.

Starts ``vidsort serve`` on 127.0.0.1 (a free port, its own TMPDIR), then runs rounds of three
passes, interleaved so that a busy machine slows all of them alike:

A. **offline**: `VideoClassifier.classify_many` over the round's good clips (same decode workers
   and batch size as the server, in this process);
B. **server, good only**: the same clips uploaded by ``--clients`` concurrent async httpx
   clients; B's rate over A's is the throughput ratio;
C. **server, mixed**: the round's planned requests: good clips, ~10% uploads from the hostile
   corpus (`vidsort.testing.hostile`), ~2% over ``--max-upload-mb`` (half declared, half
   streamed chunked), ~2% cut off mid-upload (the client closes its socket).

Prints requests/s, p50/p90/p99 latency, status counts, peak server RSS (process and with its
decode workers), worker restarts, and checks: the server is alive and ``/readyz`` is 200 at the
end; every good upload got 200 with the offline predictions; hostile uploads got their
corpus verdict (200 or 400/504, never 500); no 500 at all; no temporary file left; RSS bounded
(the last round's peak within 25% + 64 MB of the first's); good-request throughput >= 85% of
offline; SIGTERM then exits 0. Results: ``benchmarks/results/load_server_<model>.json``.

Usage::

    python benchmarks/load_server.py                                  # tiny-motion, 2000 x 200
    python benchmarks/load_server.py --model base --requests 120 --clients 8 --rounds 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
SHARED_VIDEOS = HERE.parents[1] / "shared" / "videos"
#: the share of good-request throughput the server must keep vs offline classify_many
MIN_RATIO = 0.85


@dataclass
class Req:
    kind: str  # good | hostile | oversize | cutoff
    path: Path | None = None
    expect: str = "classify"  # hostile corpus verdict: classify | fail | any
    chunked: bool = False


# --------------------------------------------------------------------------- set-up


def build_model(kind: str, cache: Path) -> Path:
    """Export tiny-motion, or a VideoMAE-Base-shaped random model (int8 dynamic), once."""
    from vidsort.export import export_model

    out = cache / f"serve-{kind}"
    if (out / "vidsort.json").is_file():
        return out
    if kind == "tiny":
        export_model("tiny-motion", out, quantize="dynamic", overwrite=True, log=None)
        return out
    import psutil

    free_gib = psutil.virtual_memory().available / 2**30
    if free_gib < 8:
        raise SystemExit(f"only {free_gib:.1f} GiB free: a Base-size export needs 8; wait")
    from vidsort.testing.models import build_videomae_dir  # random weights

    source = build_videomae_dir(cache / "serve-base-src", base=True)
    export_model(source, out, quantize="dynamic", overwrite=True, log=print)
    return out


def build_clips(kind: str, out: Path) -> list[Path]:
    """Good clips: rendered tiny-motion clips (16), plus the shared real clips for Base."""
    from vidsort.export.demo.synthetic import render_dataset

    clips = [p for p, _ in render_dataset(out / "rendered", 2, seed=17)]
    if kind == "base" and SHARED_VIDEOS.is_dir():
        clips += sorted(p for p in SHARED_VIDEOS.iterdir() if p.suffix in (".mp4", ".avi"))
    return clips


def plan(n: int, good: list[Path], hostile: list[Any], seed: int) -> list[Req]:
    """``n`` requests: ~10% hostile, ~2% oversize, ~2% cut off, the rest good, shuffled."""
    rng = random.Random(seed)
    n_hostile, n_over, n_cut = round(n * 0.10), round(n * 0.02), round(n * 0.02)
    reqs = [Req("hostile", e.path, e.expect) for e in
            (hostile[i % len(hostile)] for i in range(n_hostile))]
    reqs += [Req("oversize", chunked=bool(i % 2)) for i in range(n_over)]
    reqs += [Req("cutoff", good[i % len(good)]) for i in range(n_cut)]
    reqs += [Req("good", good[i % len(good)]) for i in range(n - len(reqs))]
    rng.shuffle(reqs)
    return reqs


class Server:
    """`vidsort serve` in a subprocess; samples its RSS (alone and with its workers)."""

    def __init__(self, model: Path, tmp: Path, args: argparse.Namespace):
        cmd = [sys.executable, "-m", "vidsort", "serve", str(model), "--port", "0",
               "--decode-workers", str(args.decode_workers), "--max-batch", str(args.max_batch),
               "--max-wait-ms", str(args.max_wait_ms), "--max-queue", str(args.max_queue),
               "--max-upload-mb", str(args.max_upload_mb), "--timeout", str(args.timeout)]
        env = {**os.environ, "TMPDIR": str(tmp), "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env=env)
        self.lines: list[str] = []
        self.url = None
        for line in self.proc.stdout:
            self.lines.append(line)
            if m := re.search(r"listening on (http://\S+)", line):
                self.url = m.group(1)
                break
        if self.url is None:
            raise SystemExit("server did not start:\n" + "".join(self.lines))
        threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True).start()
        self.peak = {"server_mb": 0.0, "with_workers_mb": 0.0}
        self._stop = threading.Event()
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        import psutil

        proc = psutil.Process(self.proc.pid)
        while not self._stop.wait(0.2):
            try:
                own = proc.memory_info().rss
                total = own + sum(c.memory_info().rss for c in proc.children(recursive=True))
            except psutil.Error:
                continue
            self.peak["server_mb"] = max(self.peak["server_mb"], own / 2**20)
            self.peak["with_workers_mb"] = max(self.peak["with_workers_mb"], total / 2**20)

    def cpu_s(self) -> float:
        """CPU seconds the server process has used (all its threads, not its workers)."""
        import psutil

        times = psutil.Process(self.proc.pid).cpu_times()
        return times.user + times.system

    def reset_peak(self) -> dict[str, float]:
        old, self.peak = self.peak, {"server_mb": 0.0, "with_workers_mb": 0.0}
        return {k: round(v, 1) for k, v in old.items()}

    def stop(self) -> int:
        self._stop.set()
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(120)


# --------------------------------------------------------------------------- traffic


async def _cutoff(url: str, data: bytes) -> None:
    host, port = url.split("//")[1].rstrip("/").rsplit(":", 1)
    _, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"POST /v1/classify HTTP/1.1\r\nHost: {host}\r\nContent-Type: video/mp4\r\n"
                 f"Content-Length: {len(data)}\r\n\r\n".encode() + data[: len(data) // 2])
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.close()  # mid-upload: the server must drop the request and its temporary file


async def _one(client, url: str, req: Req, blobs: dict, oversize: bytes) -> dict[str, Any]:
    started = time.perf_counter()
    out: dict[str, Any] = {"kind": req.kind, "path": str(req.path or ""), "expect": req.expect}
    try:
        if req.kind == "cutoff":
            await _cutoff(url, blobs[req.path])
            out["status"] = "cut"
        elif req.kind == "oversize":
            async def chunks():
                for i in range(0, len(oversize), 65536):
                    yield oversize[i:i + 65536]
            r = await client.post(f"{url}v1/classify", content=chunks() if req.chunked
                                  else oversize, headers={"content-type": "video/mp4"})
            out["status"] = r.status_code
        else:
            r = await client.post(f"{url}v1/classify", files={
                "video": (req.path.name, blobs[req.path], "video/mp4")})
            out["status"] = r.status_code
            body = r.json()
            out["predictions"] = body.get("predictions")
            out["error"] = body.get("error")
            out["batch_size"] = body.get("batch_size")
    except Exception as exc:  # a transport error is a finding, not a crash of the test
        out["status"] = f"transport:{type(exc).__name__}"
    out["latency_s"] = time.perf_counter() - started
    return out


async def server_round(url: str, reqs: list[Req], clients: int, blobs: dict,
                       oversize: bytes) -> tuple[list[dict], float, float]:
    import httpx

    queue: asyncio.Queue[Req] = asyncio.Queue()
    for req in reqs:
        queue.put_nowait(req)
    results: list[dict] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:
        async def worker():
            while not queue.empty():
                results.append(await _one(client, url, queue.get_nowait(), blobs, oversize))

        cpu, started = time.process_time(), time.perf_counter()
        await asyncio.gather(*[worker() for _ in range(clients)])
        return results, time.perf_counter() - started, time.process_time() - cpu


def offline_round(clf, paths: list[Path], batch: int) -> float:
    started = time.perf_counter()
    out = list(clf.classify_many([str(p) for p in paths], batch_size=batch))
    assert all("predictions" in r for r in out), [r for r in out if "error" in r][:3]
    return time.perf_counter() - started


# --------------------------------------------------------------------------- checks


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 \
        else (values[0] if values else float("nan"))


def check(results: list[dict], reference: dict[str, list], tol: float) -> dict[str, Any]:
    """Verdicts on every request: good → 200 with the offline predictions; hostile → its
    corpus verdict; oversize → 413; no 500 anywhere."""
    failures: list[str] = []
    max_diff = 0.0
    for r in results:
        status, kind = r["status"], r["kind"]
        if status == 500 or str(status).startswith("transport"):
            failures.append(f"{kind} {r['path']}: {status}")
        elif kind == "good":
            if status != 200:
                failures.append(f"good {r['path']}: {status} {r.get('error')}")
                continue
            want = reference[r["path"]]
            if [p["label"] for p in r["predictions"]][:1] != [want[0]["label"]]:
                failures.append(f"good {r['path']}: top-1 {r['predictions'][0]} != {want[0]}")
            max_diff = max([max_diff] + [abs(a["score"] - b["score"]) for a, b in
                                         zip(r["predictions"], want, strict=False)])
        elif kind == "hostile":
            allowed = {"classify": {200}, "fail": {400}, "any": {200, 400, 504}}[r["expect"]]
            if status not in allowed:
                failures.append(f"hostile {Path(r['path']).name}: {status}, expected "
                                f"{sorted(allowed)} ({r.get('error')})")
        elif kind == "oversize" and status != 413:
            failures.append(f"oversize: {status}")
    if max_diff > tol:
        failures.append(f"scores differ from offline by {max_diff:.2e} > {tol:g}")
    return {"failures": failures, "max_score_diff": max_diff}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=["tiny", "base"], default="tiny")
    ap.add_argument("--model-dir", type=Path, help="serve this export instead of building one")
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=8, help="interleaved rounds (A, B, C each)")
    ap.add_argument("--decode-workers", type=int, default=2)
    ap.add_argument("--max-batch", type=int, default=8)
    ap.add_argument("--max-wait-ms", type=float, default=20)
    ap.add_argument("--max-queue", type=int, default=None, help="default: 2 x --clients (no 503)")
    ap.add_argument("--max-upload-mb", type=float, default=4)
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get(
        "VIDSORT_BENCH_CACHE", Path.home() / ".cache" / "vidsort-bench")))
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args()
    # headroom: a cut-off upload stays counted until the server notices its client is gone
    args.max_queue = args.max_queue or 2 * args.clients

    import _env
    from vidsort.classifier import VideoClassifier
    from vidsort.isolation import IsolatedPreparer, IsolationSettings
    from vidsort.serve.uploads import TMP_PREFIX
    from vidsort.testing.hostile import build_corpus

    machine = _env.machine()
    print(f"CPU: {machine.get('cpu_model')}, {machine.get('usable_cpus')} usable cores, flags "
          f"{' '.join(machine.get('flags', []))}; load average {os.getloadavg()}")
    model = args.model_dir or build_model(args.model, args.cache)
    work = Path(tempfile.mkdtemp(prefix="vidsort-load-"))
    good = build_clips(args.model, work)
    (work / "hostile").mkdir()
    hostile = build_corpus(work / "hostile")
    # SVT-AV1 (the corpus's AV1 clip) switches a root caller to SCHED_FIFO 99; the server and
    # decode workers would inherit it, and a busy-waiting thread then starves the machine.
    if os.sched_getscheduler(0) != os.SCHED_OTHER:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    blobs = {p: p.read_bytes() for p in good + [e.path for e in hostile]}
    oversize = random.Random(1).randbytes(int((args.max_upload_mb + 1) * 2**20))
    reqs = plan(args.requests, good, hostile, seed=3)
    tmp = work / "server-tmp"
    tmp.mkdir()

    server = Server(model, tmp, args)
    isolation = IsolationSettings(workers=args.decode_workers, timeout_s=args.timeout)
    with IsolatedPreparer(isolation) as preparer:
        clf = VideoClassifier(model, isolation=preparer)
        tol = 1e-4 if clf.precision == "fp32" else 0.05  # int8: activation scales per batch
        reference = {str(r["video"]): r["predictions"] for r in
                     clf.classify_many([str(p) for p in good], batch_size=1)}
        print(f"serving {model} ({clf.precision}) at {server.url}; {len(reqs)} requests, "
              f"{args.clients} clients, {args.rounds} rounds; {len(good)} good clips")
        asyncio.run(server_round(server.url, [Req("good", p) for p in good[:4]], 4, blobs,
                                 oversize))  # warm-up, not counted
        offline_round(clf, good[:4], args.max_batch)
        server.reset_peak()
        rounds, all_results = [], []
        per = -(-len(reqs) // args.rounds)
        for i in range(args.rounds):
            chunk = reqs[i * per:(i + 1) * per]
            paths = [r.path for r in chunk if r.kind == "good"]
            # A: offline over the round's good clips; B: the same clips as uploads alone (the
            # throughput comparison); C: the round's whole mix (the robustness checks: the
            # hostile 4K clip alone costs the decoders ~25x a good clip, so C's good-request
            # rate says more about the traffic than about the server)
            cpu = time.process_time()
            off_s = offline_round(clf, paths, args.max_batch)
            off_cpu, srv_cpu = time.process_time() - cpu, server.cpu_s()
            only, good_s, good_client_cpu = asyncio.run(server_round(
                server.url, [Req("good", p) for p in paths], args.clients, blobs, oversize))
            srv_cpu = server.cpu_s() - srv_cpu
            mixed, mix_s, client_cpu = asyncio.run(
                server_round(server.url, chunk, args.clients, blobs, oversize))
            ok = sum(r["status"] == 200 for r in only)
            ok_mixed = sum(r["kind"] == "good" and r["status"] == 200 for r in mixed)
            row = {"round": i, "requests": len(chunk), "good": len(paths),
                   "offline_s": round(off_s, 2), "server_good_only_s": round(good_s, 2),
                   "server_mixed_s": round(mix_s, 2),
                   "offline_clips_per_s": round(len(paths) / off_s, 2),
                   "server_good_per_s": round(ok / good_s, 2),
                   "ratio": round((ok / good_s) / (len(paths) / off_s), 3),
                   "mixed_requests_per_s": round(len(chunk) / mix_s, 2),
                   "mixed_good_per_s": round(ok_mixed / mix_s, 2),
                   "cpu_s": {"offline_process": round(off_cpu, 1),
                             "server_process_good_only": round(srv_cpu, 1),
                             "client_good_only": round(good_client_cpu, 1),
                             "client_mixed": round(client_cpu, 1)},
                   "rss_peak": server.reset_peak(),
                   "load_average": [round(x, 2) for x in os.getloadavg()]}
            rounds.append(row)
            all_results += only + mixed
            print(f"round {i}: offline {row['offline_clips_per_s']} clips/s, server "
                  f"{row['server_good_per_s']} good req/s (ratio {row['ratio']}); mixed "
                  f"{row['mixed_requests_per_s']} req/s ({row['mixed_good_per_s']} good/s); "
                  f"CPU s {row['cpu_s']}; "
                  f"peak RSS {row['rss_peak']}, load {row['load_average']}", flush=True)

    import httpx

    ready = httpx.get(f"{server.url}readyz", timeout=30).status_code
    metrics = httpx.get(f"{server.url}metrics", timeout=30).text
    restarts = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                   if line.startswith("vidsort_decode_worker_restarts_total"))
    left_running = sorted(p.name for p in tmp.rglob(f"{TMP_PREFIX}*"))
    exit_code = server.stop()
    left_after = sorted(p.name for p in tmp.rglob(f"{TMP_PREFIX}*"))

    verdict = check(all_results, reference, tol)
    good_lat = [r["latency_s"] for r in all_results if r["kind"] == "good" and r["status"] == 200]
    statuses = Counter(f"{r['kind']}:{r['status']}" for r in all_results)
    ratio = statistics.median(r["ratio"] for r in rounds)
    first, last = rounds[0]["rss_peak"]["server_mb"], rounds[-1]["rss_peak"]["server_mb"]
    checks = {
        "alive_and_ready_at_end": ready == 200,
        "every_request_as_expected": not verdict["failures"],
        "no_500": not any(r["status"] == 500 for r in all_results),
        "no_temporary_file_left": not left_running and not left_after,
        "rss_bounded": last <= first * 1.25 + 64,
        f"throughput_ratio_at_least_{MIN_RATIO}": ratio >= MIN_RATIO,
        "sigterm_exit_0": exit_code == 0,
    }
    summary = {
        "good_only_requests_per_s_median": statistics.median(r["server_good_per_s"]
                                                             for r in rounds),
        "offline_clips_per_s_median": statistics.median(r["offline_clips_per_s"] for r in rounds),
        "throughput_ratio_median": ratio,
        "mixed_requests_per_s_median": statistics.median(r["mixed_requests_per_s"]
                                                         for r in rounds),
        "mixed_good_requests_per_s_median": statistics.median(r["mixed_good_per_s"]
                                                              for r in rounds),
        "latency_good_s": {f"p{q}": round(pct(good_lat, q), 3) for q in (50, 90, 99)},
        "latency_all_s": {f"p{q}": round(pct([r["latency_s"] for r in all_results], q), 3)
                          for q in (50, 90, 99)},
        "statuses": dict(sorted(statuses.items())),
        "batch_sizes": dict(sorted(Counter(r.get("batch_size") for r in all_results
                                           if r.get("batch_size")).items())),
        "peak_rss_mb": {"server": max(r["rss_peak"]["server_mb"] for r in rounds),
                        "with_workers": max(r["rss_peak"]["with_workers_mb"] for r in rounds)},
        "worker_restarts": restarts,
        "max_score_diff_vs_offline": verdict["max_score_diff"],
    }
    print(json.dumps(summary, indent=2))
    for name, ok in checks.items():
        print(f"  {'ok  ' if ok else 'FAIL'} {name}")
    for line in verdict["failures"][:20]:
        print("   ", line)
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"load_server_{args.model}.json"
    out.write_text(json.dumps({
        "machine": machine, "versions": _env.versions(), "model": str(model),
        "precision": clf.precision, "settings": {k: (str(v) if isinstance(v, Path) else v)
                                                 for k, v in vars(args).items()},
        "rounds": rounds, "summary": summary, "checks": checks,
        "failures": verdict["failures"][:200], "server_output_tail": server.lines[-20:],
    }, indent=2))
    print(f"wrote {out}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
