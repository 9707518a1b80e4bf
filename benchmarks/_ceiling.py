"""The hardware ceiling: achievable GEMM throughput on this machine at the model's shapes.

fp32 is measured two ways, ONNX Runtime's MatMul (MLAS, what vidsort runs) and NumPy's sgemm
(OpenBLAS), and int8 with ONNX Runtime's MatMulInteger (uint8 x int8 -> int32, the kernel family
behind dynamically quantized models). Every figure counts 2 FLOPs (or OPs) per multiply-add.

Run this in a subprocess (`python _ceiling.py THREADS SHAPES_JSON`) so that the BLAS thread
count, which OpenBLAS reads from the environment at import time, is the benchmark's.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any


def model_shapes(tokens: int, hidden: int, intermediate: int, heads: int,
                 batch: int = 1) -> dict[str, tuple[int, int, int, int]]:
    """The GEMMs of one ViT encoder layer as ``name -> (batch, M, K, N)``.

    Args:
        tokens: sequence length (VideoMAE-Base at 16x224: 1568).
        hidden, intermediate, heads: from the model config.
        batch: clips per inference call.

    Returns:
        Shapes in the order they run; attention GEMMs are batched over heads.
    """
    head_dim = hidden // heads
    m = batch * tokens
    return {
        "qkv/out proj": (1, m, hidden, hidden),
        "mlp up": (1, m, hidden, intermediate),
        "mlp down": (1, m, intermediate, hidden),
        "attn scores": (batch * heads, tokens, head_dim, tokens),
        "attn values": (batch * heads, tokens, tokens, head_dim),
    }


def _ort_matmul_session(b: int, m: int, k: int, n: int, threads: int, int8: bool):
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    a_shape = [b, m, k] if b > 1 else [m, k]
    w_shape = [b, k, n] if b > 1 else [k, n]
    if int8:
        weight = rng.integers(-127, 128, w_shape, dtype=np.int8)
        node = helper.make_node("MatMulInteger", ["A", "W"], ["Y"])
        a_type, y_type = TensorProto.UINT8, TensorProto.INT32
        feed = rng.integers(0, 256, a_shape, dtype=np.uint8)
    else:
        weight = rng.standard_normal(w_shape, dtype=np.float32)
        node = helper.make_node("MatMul", ["A", "W"], ["Y"])
        a_type, y_type = TensorProto.FLOAT, TensorProto.FLOAT
        feed = rng.standard_normal(a_shape, dtype=np.float32)
    graph = helper.make_graph(
        [node], "gemm", [helper.make_tensor_value_info("A", a_type, a_shape)],
        [helper.make_tensor_value_info("Y", y_type, None)],
        initializer=[numpy_helper.from_array(weight, "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return session, {"A": feed}


def _time(fn, min_reps: int = 3, min_seconds: float = 0.4) -> list[float]:
    fn()  # warm-up: packs weights, spins up the thread pool
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < min_reps or time.perf_counter() - started < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) >= 50:
            break
    return times


def measure(shapes: dict[str, tuple[int, int, int, int]], threads: int) -> dict[str, Any]:
    """GEMM GFLOP/s (best and median of repeats) for each shape and kernel.

    Args:
        shapes: ``name -> (batch, M, K, N)`` (see `model_shapes`).
        threads: ORT intra-op threads; NumPy's comes from OPENBLAS_NUM_THREADS.

    Returns:
        ``{"shapes": {name: {kernel: {"gflops_best", "gflops_median"}}},
        "ceiling": {kernel: best median GFLOP/s over shapes}}``.
    """
    import numpy as np

    out: dict[str, Any] = {"shapes": {}, "ceiling": {}}
    for name, (b, m, k, n) in shapes.items():
        flops = 2.0 * b * m * k * n
        row: dict[str, Any] = {"bmkn": [b, m, k, n], "gflop": round(flops / 1e9, 3)}
        for kernel in ("ort_fp32", "numpy_fp32", "ort_int8"):
            try:
                if kernel == "numpy_fp32":
                    rng = np.random.default_rng(0)
                    a = rng.standard_normal((b, m, k) if b > 1 else (m, k), dtype=np.float32)
                    w = rng.standard_normal((b, k, n) if b > 1 else (k, n), dtype=np.float32)
                    times = _time(lambda a=a, w=w: np.matmul(a, w))
                else:
                    session, feed = _ort_matmul_session(b, m, k, n, threads, kernel == "ort_int8")
                    times = _time(lambda s=session, f=feed: s.run(None, f))
            except Exception as exc:  # an int8 kernel may be missing from a build: say so
                row[kernel] = {"error": f"{type(exc).__name__}: {exc}"}
                continue
            times.sort()
            row[kernel] = {"gflops_best": round(flops / times[0] / 1e9, 1),
                           "gflops_median": round(flops / times[len(times) // 2] / 1e9, 1),
                           "reps": len(times)}
            # The ceiling uses medians: a lone fast repeat on a shared machine is not achievable.
            best = out["ceiling"].get(kernel, 0.0)
            out["ceiling"][kernel] = max(best, row[kernel]["gflops_median"])
        out["shapes"][name] = row
    out["threads"] = threads
    out["note"] = ("GFLOP/s = 2 x multiply-adds / s (GOP/s for int8); ceiling = median repeat "
                   "at the best shape; ort_* = onnxruntime MLAS, numpy_fp32 = OpenBLAS sgemm")
    return out


def run_subprocess(shapes: dict[str, tuple[int, int, int, int]], threads: int,
                   timeout: float = 600) -> dict[str, Any]:
    """`measure` in a fresh interpreter with BLAS/OpenMP threads set to ``threads``."""
    import subprocess

    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    proc = subprocess.run([sys.executable, __file__, str(threads), json.dumps(shapes)],
                          capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:] or ["failed"]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    _shapes = {k: tuple(v) for k, v in json.loads(sys.argv[2]).items()}
    print(json.dumps(measure(_shapes, int(sys.argv[1]))))
