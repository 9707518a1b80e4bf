#!/usr/bin/env python3
"""Two decode questions for vidsort, timed side by side (interleaved A/B rounds, one process).

Q1  Does H.264-in-AVI presentation order from slice-header POCs (`vidsort.decode.h264_order`)
    pay? ``read_frames(backend="pyav")`` as shipped vs with `packet_scan.PocReader` replaced
    by ``lambda extradata: None`` (the scan then falls back to "order" mode: decoded frames are
    counted from the keyframe and nothing is skipped). Frames must be bit-identical.
Q2  Which backend should be the default? ``read_frames(backend="decord")`` vs
    ``read_frames(backend="pyav")``; where decord hands the file to PyAV (``DecodedClip.fallback``)
    that is recorded, and for the files handed over only because "PyAV reads faster"
    (`decord_backend.pyav_reads_faster`) decord is also timed with that hand-over off.

Files: every video in --videos plus clips generated with PyAV/libx264 into --gen-dir (typical
B-frame MP4s at 720p and 360p, H.264-in-AVI at 720p with and without B-frames).
Sampler: ``sample_indices(n, 16, 4, "centre")`` (the default 16 x stride 4 window).

Rounds alternate the variants' order (A B, then B A, ...) after one untimed warm-up each; the
table gives the median and min wall time per read and the median process CPU time (decoder
threads included). The machine may be shared: compare within a row, not across runs.

    python benchmarks/bench_decode_choices.py --rounds 15 \
        --json benchmarks/results/decode_choices.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import vidsort.decode.packet_scan as packet_scan
import vidsort.decode.pyav_backend as decode_pyav
import vidsort.decode.read as decode
from vidsort.decode import read_frames
from vidsort.sampling import sample_indices

VIDEO_EXTS = (".mp4", ".avi", ".mkv", ".mov", ".webm")


def sampler(n: int) -> np.ndarray:
    return sample_indices(n, 16, 4, "centre")


# -- levers switched off ------------------------------------------------------------------------

@contextlib.contextmanager
def poc_off():
    """H.264-in-AVI order from POCs switched off: `scan_packets` builds no PocReader."""
    saved = packet_scan.PocReader
    packet_scan.PocReader = lambda extradata: None
    try:
        yield
    finally:
        packet_scan.PocReader = saved


@contextlib.contextmanager
def decord_where_right():
    """The decord backend no longer hands large B-frame streams to PyAV for speed."""
    saved = decode.pyav_reads_faster
    decode.pyav_reads_faster = lambda info: None
    try:
        yield
    finally:
        decode.pyav_reads_faster = saved


@contextlib.contextmanager
def nothing():
    yield


@contextlib.contextmanager
def record_scan(out: dict):
    """Record the PacketScan mode of the next PyAV read (untimed inspection passes only)."""
    saved = decode_pyav.scan_packets

    def wrapped(*args, **kwargs):
        scan = saved(*args, **kwargs)
        out["scan_mode"] = scan.mode
        out["poc_order"] = scan.order_scan is not None
        out["keyframes"] = len(scan.key_index)
        return scan

    decode_pyav.scan_packets = wrapped
    try:
        yield
    finally:
        decode_pyav.scan_packets = saved


# -- test clips -----------------------------------------------------------------------------------

def _frames(n: int, width: int, height: int, seed: int = 0):
    """Moving textured content (panning noise field + moving block), roughly camera-like."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (height // 8 + 2, width // 8 + 2, 3), dtype=np.uint8)
    base = np.kron(base, np.ones((8, 8, 1), dtype=np.uint8))  # 8x8 blocks of texture
    yy, xx = np.mgrid[0:height, 0:width]
    grad = ((xx * 255 // max(1, width - 1))[..., None] * np.array([1, 0, 0])
            + (yy * 255 // max(1, height - 1))[..., None] * np.array([0, 0, 1])).astype(np.uint16)
    for i in range(n):
        dx, dy = (2 * i) % 8, i % 8
        img = base[dy:dy + height, dx:dx + width].astype(np.uint16)
        img = ((img + grad) // 2).astype(np.uint8)
        x0 = (i * 7) % max(1, width - width // 5)
        y0 = (i * 3) % max(1, height - height // 5)
        img[y0:y0 + height // 5, x0:x0 + width // 5] = (255 - 3 * i % 256, 128, 3 * i % 256)
        img += rng.integers(0, 6, img.shape, dtype=np.uint8)  # a little sensor noise
        yield img


def write_clip(path: Path, width: int, height: int, seconds: float, fmt: str | None,
               options: dict[str, str], fps: int = 30) -> Path:
    if path.exists() and path.stat().st_size > 0:
        return path
    tmp = path.with_name(path.stem + ".part" + path.suffix)
    with av.open(str(tmp), "w", format=fmt) as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = options
        for img in _frames(int(seconds * fps), width, height):
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    tmp.rename(path)
    return path


def generated_clips(gen_dir: Path) -> list[Path]:
    gen_dir.mkdir(parents=True, exist_ok=True)
    typical = {"preset": "veryfast", "crf": "23", "bf": "3"}
    return [
        write_clip(gen_dir / "gen_720p_10s_bframes.mp4", 1280, 720, 10, None, typical),
        write_clip(gen_dir / "gen_360p_10s_bframes.mp4", 640, 360, 10, None, typical),
        write_clip(gen_dir / "gen_720p_10s_bframes.avi", 1280, 720, 10, "avi", typical),
        write_clip(gen_dir / "gen_720p_10s_nobframes.avi", 1280, 720, 10, "avi",
                   {**typical, "bf": "0"}),
    ]


def describe(path: Path) -> dict:
    """Container facts plus the picture types of every frame (one full decode, untimed)."""
    info = decode.probe(path)
    types: dict[str, int] = {}
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        for frame in c.decode(s):
            t = {1: "I", 2: "P", 3: "B"}.get(int(frame.pict_type), str(frame.pict_type))
            types[t] = types.get(t, 0) + 1
    return {"format": info.format.split(",")[0], "codec": info.codec,
            "size": f"{info.width}x{info.height}", "frames": info.frames,
            "has_b_frames": info.has_b_frames, "pict_types": types,
            "bytes": path.stat().st_size}


# -- timing ---------------------------------------------------------------------------------------

def timed(fn):
    w0, c0 = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - w0, time.process_time() - c0, result


def interleave(variants: dict, rounds: int) -> dict:
    """variants: name -> zero-arg callable returning a DecodedClip."""
    names = list(variants)
    for name in names:  # warm-up: page cache, lazy imports, decoder init
        variants[name]()
    wall = {n: [] for n in names}
    cpu = {n: [] for n in names}
    decoded = {n: set() for n in names}
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            w, c, clip = timed(variants[name])
            wall[name].append(w)
            cpu[name].append(c)
            decoded[name].add(clip.frames_decoded)
    out = {}
    for n in names:
        out[n] = {"wall_median_s": statistics.median(wall[n]), "wall_min_s": min(wall[n]),
                  "cpu_median_s": statistics.median(cpu[n]), "wall_s": wall[n], "cpu_s": cpu[n],
                  "frames_decoded": sorted(d for d in decoded[n] if d is not None) or None}
    return out


def scan_cost(path: Path, rounds: int) -> dict:
    """Open + `scan_packets` alone, POC reader on vs off (the price of parsing slice headers)."""
    def scan(ctx):
        def fn():
            with ctx():
                c = decode._open(str(path))
                try:
                    packet_scan.scan_packets(c, decode_pyav.video_stream(c), str(path))
                finally:
                    c.close()
        return fn

    class _Clip:  # interleave() reads frames_decoded
        frames_decoded = None

    fns = {"scan poc on": scan(nothing), "scan poc off": scan(poc_off)}
    timing = interleave({k: (lambda f=f: (f(), _Clip)[1]) for k, f in fns.items()}, rounds)
    return {k: {"wall_median_s": v["wall_median_s"], "wall_min_s": v["wall_min_s"],
                "cpu_median_s": v["cpu_median_s"]} for k, v in timing.items()}


def compare(a, b) -> dict:
    same_idx = bool(np.array_equal(a.indices, b.indices))
    diff = np.abs(a.frames.astype(np.int16) - b.frames.astype(np.int16)) \
        if a.frames.shape == b.frames.shape else None
    return {"identical": same_idx and diff is not None and not diff.any(),
            "same_indices": same_idx,
            "max_abs_diff": None if diff is None else int(diff.max()),
            "mean_abs_diff": None if diff is None else float(diff.mean())}


def read(path, backend, threads, copy, ctx=nothing):
    def fn():
        with ctx():
            return read_frames(path, sampler, backend=backend, num_threads=threads, copy=copy)
    return fn


# -- main -----------------------------------------------------------------------------------------

def cpu_facts() -> dict:
    flags = ""
    with contextlib.suppress(Exception):
        flags = subprocess.run("lscpu | grep -o 'avx512_vnni\\|avx2\\|avx512f' | sort -u",
                               shell=True, capture_output=True, text=True).stdout.split()
    model = ""
    with contextlib.suppress(Exception):
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                     if line.startswith("model name"))
    import decord
    return {"cpu": model, "cores": os.cpu_count(), "flags": flags,
            "python": platform.python_version(), "av": av.__version__,
            "decord": getattr(decord, "__version__", "?"), "numpy": np.__version__,
            "ffmpeg": {k: ".".join(map(str, v)) for k, v in av.library_versions.items()
                       if k in ("libavcodec", "libavformat")}}


def ms(s: float) -> str:
    return f"{s * 1000:7.1f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--videos", type=Path, default=Path("/work/shared/videos"),
                   help="folder of real clips (every video file in it is measured)")
    p.add_argument("--gen-dir", type=Path, default=Path("/tmp/vidsort-measure-clips"),
                   help="where generated clips are written (reused if present)")
    p.add_argument("--no-generate", action="store_true", help="only the --videos clips")
    p.add_argument("--rounds", type=int, default=9, help="timed rounds per variant (>= 7)")
    p.add_argument("--threads", type=int, default=0, help="decoder threads (0 = auto)")
    p.add_argument("--copy", action="store_true",
                   help="read_frames(copy=True); default copy=False as vidsort.pipeline does")
    p.add_argument("--questions", default="1,2", help="1, 2 or 1,2")
    p.add_argument("--json", type=Path, required=True, help="write all results here")
    args = p.parse_args()

    files = sorted(f for f in args.videos.iterdir() if f.suffix.lower() in VIDEO_EXTS)
    if not args.no_generate:
        files += generated_clips(args.gen_dir)
    qs = {q.strip() for q in args.questions.split(",")}
    out = {"command": " ".join([sys.executable] + sys.argv), "machine": cpu_facts(),
           "load_start": os.getloadavg(), "rounds": args.rounds, "threads": args.threads,
           "copy": args.copy, "sampler": "sample_indices(n, 16, 4, 'centre')", "files": {}}
    print(json.dumps(out["machine"]), "load", out["load_start"], flush=True)

    for f in files:
        res: dict = {"info": describe(f)}
        print(f"\n{f.name}: {res['info']}", flush=True)
        if "1" in qs:
            scan_on, scan_off = {}, {}
            with record_scan(scan_on):
                on = read(f, "pyav", args.threads, args.copy)()
            with record_scan(scan_off):
                off = read(f, "pyav", args.threads, args.copy, poc_off)()
            variants = {"poc on": read(f, "pyav", args.threads, args.copy),
                        "poc off": read(f, "pyav", args.threads, args.copy, poc_off)}
            res["q1"] = {"timing": interleave(variants, args.rounds),
                         "scan": {"poc on": scan_on, "poc off": scan_off},
                         "frames_decoded": {"poc on": on.frames_decoded,
                                            "poc off": off.frames_decoded},
                         "equal": compare(on, off)}
            if scan_on.get("poc_order"):
                res["q1"]["scan_cost"] = scan_cost(f, args.rounds)
            t = res["q1"]["timing"]
            print(f"  Q1 poc on {ms(t['poc on']['wall_median_s'])} ms  off "
                  f"{ms(t['poc off']['wall_median_s'])} ms  decoded {on.frames_decoded}/"
                  f"{off.frames_decoded}  scan {scan_on} / {scan_off}  "
                  f"identical={res['q1']['equal']['identical']}", flush=True)
        if "2" in qs:
            d = read(f, "decord", args.threads, args.copy)()
            y = read(f, "pyav", args.threads, args.copy)()
            variants = {"decord": read(f, "decord", args.threads, args.copy),
                        "pyav": read(f, "pyav", args.threads, args.copy)}
            forced = None
            if d.fallback and "faster" in d.fallback:
                variants["decord (no hand-over)"] = read(f, "decord", args.threads, args.copy,
                                                          decord_where_right)
                forced = variants["decord (no hand-over)"]()
            res["q2"] = {"timing": interleave(variants, args.rounds),
                         "decord_backend_used": d.backend, "fallback": d.fallback,
                         "equal_decord_pyav": compare(d, y),
                         "forced_backend_used": forced.backend if forced else None,
                         "equal_forced_pyav": compare(forced, y) if forced else None}
            t = res["q2"]["timing"]
            print("  Q2 " + "  ".join(f"{k} {ms(v['wall_median_s'])} ms" for k, v in t.items())
                  + f"  used={d.backend} fallback={d.fallback!r}", flush=True)
        out["files"][f.name] = res
        args.json.write_text(json.dumps(out, indent=1))
    out["load_end"] = os.getloadavg()
    args.json.write_text(json.dumps(out, indent=1))
    report(out)


def report(out: dict) -> None:
    rows = out["files"]
    if any("q1" in r for r in rows.values()):
        print("\nQ1  read_frames(backend='pyav'), POC order on vs off "
              "(median / min wall ms, median CPU ms)")
        print(f"{'file':32} {'B-fr':>4} {'scan on/off':>11} {'on med':>7} {'on min':>7} "
              f"{'off med':>7} {'off min':>7} {'saved ms':>8} {'saved%':>6} "
              f"{'cpu on':>7} {'cpu off':>7} {'decoded on/off':>14} same")
        for name, r in rows.items():
            if "q1" not in r:
                continue
            t, q = r["q1"]["timing"], r["q1"]
            a, b = t["poc on"], t["poc off"]
            saved = b["wall_median_s"] - a["wall_median_s"]
            print(f"{name:32} {('yes' if r['info']['has_b_frames'] else 'no'):>4} "
                  f"{q['scan']['poc on'].get('scan_mode', '?'):>5}/"
                  f"{q['scan']['poc off'].get('scan_mode', '?'):<5} "
                  f"{ms(a['wall_median_s'])} {ms(a['wall_min_s'])} {ms(b['wall_median_s'])} "
                  f"{ms(b['wall_min_s'])} {saved * 1000:8.1f} "
                  f"{100 * saved / b['wall_median_s']:5.1f}% {ms(a['cpu_median_s'])} "
                  f"{ms(b['cpu_median_s'])} "
                  f"{q['frames_decoded']['poc on']:>6}/{q['frames_decoded']['poc off']:<7} "
                  f"{'yes' if q['equal']['identical'] else 'NO'}")
        for name, r in rows.items():
            sc = r.get("q1", {}).get("scan_cost")
            if sc:
                on, off = sc["scan poc on"], sc["scan poc off"]
                print(f"  {name}: packet scan alone {ms(off['wall_median_s']).strip()} ms -> "
                      f"{ms(on['wall_median_s']).strip()} ms with POC parsing "
                      f"(+{(on['wall_median_s'] - off['wall_median_s']) * 1000:.1f} ms; min "
                      f"{ms(off['wall_min_s']).strip()} -> {ms(on['wall_min_s']).strip()})")
    if any("q2" in r for r in rows.values()):
        print("\nQ2  read_frames(backend=...) (median / min wall ms, median CPU ms)")
        print(f"{'file':32} {'size':>9} {'decord med':>10} {'min':>7} {'cpu':>7} "
              f"{'pyav med':>8} {'min':>7} {'cpu':>7} {'forced':>7} {'pyav/dcd':>8}  "
              f"decord backend hands to pyav?")
        for name, r in rows.items():
            if "q2" not in r:
                continue
            t, q = r["q2"]["timing"], r["q2"]
            d, y = t["decord"], t["pyav"]
            f = t.get("decord (no hand-over)")
            eq = q["equal_decord_pyav"]
            differ = (f"  [pixels differ: max {eq['max_abs_diff']}, "
                      f"mean {eq['mean_abs_diff'] or 0:.3f}]")
            print(f"{name:32} {r['info']['size']:>9} {ms(d['wall_median_s']):>10} "
                  f"{ms(d['wall_min_s'])} {ms(d['cpu_median_s'])} {ms(y['wall_median_s']):>8} "
                  f"{ms(y['wall_min_s'])} {ms(y['cpu_median_s'])} "
                  f"{ms(f['wall_median_s']) if f else '      -'} "
                  f"{y['wall_median_s'] / d['wall_median_s']:8.2f}  "
                  f"{q['fallback'] or 'no (decord reads it)'}"
                  f"{'' if eq['identical'] else differ}")
    print(f"\nload avg start {out['load_start']} end {out.get('load_end')}")


if __name__ == "__main__":
    main()
