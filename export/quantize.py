"""Smaller variants of the fp32 graph: int8 (ONNX Runtime dynamic or static QDQ) and fp16.

Defaults target an x86 AVX2 CPU without VNNI (ORT's own guidance): weights QInt8 with
``reduce_range`` (7-bit weights, so u8×s8 products cannot saturate the 16-bit intermediate of
the non-VNNI kernels), activations QUInt8. Every setting can be overridden by keyword.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)
from vidsort.errors import ExportError
from vidsort.sampling import sample_indices

#: ONNX protobufs cannot exceed 2 GiB; bigger models keep their tensors in a side file
EXTERNAL_DATA_THRESHOLD = 1_800_000_000
VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg",
                            ".wmv", ".flv", ".ts", ".3gp", ".ogv", ".gif"})

DYNAMIC_DEFAULTS: dict[str, Any] = {"weight_type": "QInt8", "per_channel": True,
                                    "reduce_range": True}
STATIC_DEFAULTS: dict[str, Any] = {
    "weight_type": "QInt8", "activation_type": "QUInt8", "per_channel": True,
    "reduce_range": True, "calibrate_method": "MinMax", "clips_per_video": 2, "max_clips": 32,
    # the ops with int8 CPU kernels; QDQ around LayerNorm/Softmax would only add conversions
    "op_types_to_quantize": ["Conv", "MatMul", "Gemm"],
}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextmanager
def quiet_logging(level: int = logging.WARNING) -> Iterator[None]:
    """Silence log records up to ``level`` while ORT's tools run.

    onnxruntime's optimizer and quantizer log every unmatched pattern and skipped tensor, under
    ad-hoc logger names (and via the root logger); none of it is actionable for a user, and the
    export reports its own outcome.
    """
    previous = logging.root.manager.disable
    logging.disable(max(level, previous))
    try:
        yield
    finally:
        logging.disable(previous)


def model_files(path: str | os.PathLike) -> list[Path]:
    """An ONNX file and the external-data files its tensors point to (names are relative)."""
    path = Path(path)
    model = onnx.load(str(path), load_external_data=False)
    side: set[str] = set()
    for tensor in onnx.external_data_helper._get_all_tensors(model):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            side.update(e.value for e in tensor.external_data if e.key == "location")
    return [path, *(path.parent / name for name in sorted(side))]


def needs_external_data(path: str | os.PathLike) -> bool:
    """True when a model (with its external data) is too big for one protobuf (2 GiB)."""
    return sum(p.stat().st_size for p in model_files(path)) > EXTERNAL_DATA_THRESHOLD


def _session_ok(path: Path) -> str | None:
    """None if ORT can load and run the model's graph on CPU, else why not."""
    try:
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises several unrelated types for unsupported graphs
        return _first_line(exc)
    return None


def preprocess(src: Path, dst: Path) -> str | None:
    """Run ORT's `quant_pre_process` (shape inference + basic fusions) from ``src`` into ``dst``.

    Returns:
        None when ``dst`` was written, else why not (quantize ``src`` directly then).
    """
    from onnxruntime.quantization.shape_inference import quant_pre_process

    external = needs_external_data(src)
    try:
        quant_pre_process(str(src), str(dst), save_as_external_data=external,
                          all_tensors_to_one_file=True,
                          external_data_location=dst.name + "_data" if external else None)
    except Exception as exc:  # symbolic shape inference refuses some graphs; quantizing still works
        return f"quant_pre_process failed: {_first_line(exc)}"
    return None


def _enum(kind, name: str):
    """``kind[name]`` for a quantization enum, or an ExportError listing the valid names."""
    try:
        return kind[name]
    except KeyError:
        raise ExportError(f"unknown {kind.__name__} {name!r} (choose from "
                          f"{', '.join(kind.__members__)})") from None


def quantize_dynamic_int8(src: Path, dst: Path, **options: Any) -> dict[str, Any]:
    """Dynamic int8: weights quantized offline, activations per inference.

    Args:
        src: fp32 ONNX model (preferably pre-processed).
        dst: output path.
        **options: ``weight_type`` (QInt8|QUInt8), ``per_channel``, ``reduce_range``; defaults in
            `DYNAMIC_DEFAULTS`. A per-channel graph ORT cannot run falls back to per-tensor.

    Returns:
        The settings used (for the manifest).
    """
    settings = {**DYNAMIC_DEFAULTS, **options}
    unknown = set(settings) - set(DYNAMIC_DEFAULTS)
    if unknown:
        raise ExportError(f"{src}: unknown dynamic quantization option(s) {sorted(unknown)}")
    attempts = [settings]
    if settings["per_channel"]:
        attempts.append({**settings, "per_channel": False})
    problems: list[str] = []
    for attempt in attempts:
        quantize_dynamic(
            str(src), str(dst), weight_type=_enum(QuantType, attempt["weight_type"]),
            per_channel=bool(attempt["per_channel"]), reduce_range=bool(attempt["reduce_range"]),
            use_external_data_format=needs_external_data(src),
        )
        problem = _session_ok(dst)
        if problem is None:
            note = {"fallback": f"per_channel graph failed: {problems[0]}"} if problems else {}
            return {"mode": "dynamic", "format": "QOperator", **attempt,
                    "activation_type": "QUInt8 (computed per inference)", **note}
        problems.append(problem)
    raise ExportError(f"{dst}: ONNX Runtime cannot run the dynamically quantized model "
                      f"({problems[-1]})")


def expand_videos(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Files as given, and the video files (by suffix) found under directories, sorted."""
    videos: list[Path] = []
    for item in paths:
        path = Path(item).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file()
                           and p.suffix.lower() in VIDEO_SUFFIXES)
            if not found:
                raise ExportError(f"{path}: no video files in this calibration directory")
            videos.extend(found)
        elif path.is_file():
            videos.append(path)
        else:
            raise ExportError(f"{path}: calibration video does not exist")
    if not videos:
        raise ExportError("static quantization needs --calibration VIDEO_OR_DIR ...")
    return videos


def runtime_preprocessing():
    """(read_frames, VideoPreprocessor) from the runtime, or a clear ExportError."""
    try:
        from vidsort.decode import read_frames
        from vidsort.preprocess import VideoPreprocessor
    except ImportError as exc:
        raise ExportError(f"static quantization needs the runtime's decoding and preprocessing "
                          f"(vidsort.decode, vidsort.preprocess), which are unavailable: {exc}"
                          ) from None
    return read_frames, VideoPreprocessor


class VideoCalibrationReader(CalibrationDataReader):
    """Calibration inputs: clips from real videos through the runtime's own preprocessing.

    Each video gives ``clips_per_video`` centre-spread clips of ``num_frames`` frames (the same
    sampler the runtime uses), preprocessed by `vidsort.preprocess.VideoPreprocessor` so the
    ranges ORT observes are the ranges the deployed model will see.
    """

    def __init__(self, videos: Sequence[str | os.PathLike], model_dir: str | os.PathLike,
                 num_frames: int, input_name: str = "pixel_values", frame_sample_rate: int = 4,
                 clips_per_video: int = 2, max_clips: int = 32,
                 log: Callable[[str], None] | None = None):
        read_frames, preprocessor_cls = runtime_preprocessing()
        self.videos = expand_videos(videos)
        preprocessor = preprocessor_cls.from_pretrained(model_dir)
        self.input_name = input_name
        self.used: list[str] = []
        self.skipped: dict[str, str] = {}
        clips: list[np.ndarray] = []
        for video in self.videos:
            if len(clips) >= max_clips:
                break

            def sampler(n: int, k: int = clips_per_video) -> np.ndarray:
                return sample_indices(n, num_frames, frame_sample_rate, "centre",
                                      num_clips=k).reshape(-1)

            try:
                frames = np.asarray(read_frames(video, sampler, backend="decord").frames)
            except Exception as exc:  # one bad calibration file should not sink the export
                self.skipped[str(video)] = _first_line(exc)
                if log:
                    log(f"calibration: skipping {video}: {self.skipped[str(video)]}")
                continue
            for start in range(0, len(frames) - num_frames + 1, num_frames):
                clips.append(np.asarray(preprocessor(frames[start:start + num_frames]),
                                        dtype=np.float32))
            self.used.append(str(video))
        if not clips:
            raise ExportError(f"no calibration clip could be decoded from {len(self.videos)} "
                              f"video(s) (first: {self.videos[0]})")
        self.clips = clips[:max_clips]
        self._iter = iter(self.clips)

    def get_next(self) -> dict[str, np.ndarray] | None:
        clip = next(self._iter, None)
        return None if clip is None else {self.input_name: clip}

    def rewind(self) -> None:
        self._iter = iter(self.clips)

    def summary(self) -> dict[str, Any]:
        """What calibrated the model, for the manifest (file names, not full paths)."""
        return {"videos": [Path(v).name for v in self.used], "clips": len(self.clips),
                "skipped": {Path(k).name: v for k, v in self.skipped.items()}}


def quantize_static_int8(src: Path, dst: Path, reader: VideoCalibrationReader,
                         **options: Any) -> dict[str, Any]:
    """Static int8 in QDQ format, calibrated on ``reader``'s clips.

    Args:
        src: fp32 ONNX model, unfused (QDQ has no rule for ORT's fused Attention op) and
            preferably pre-processed.
        dst: output path.
        reader: calibration clips.
        **options: ``weight_type``, ``activation_type``, ``per_channel``, ``reduce_range``,
            ``calibrate_method`` (MinMax|Entropy|Percentile|Distribution),
            ``op_types_to_quantize``; defaults in `STATIC_DEFAULTS`.

    Returns:
        The settings used (for the manifest).
    """
    settings = {**STATIC_DEFAULTS, **options}
    unknown = set(settings) - set(STATIC_DEFAULTS)
    if unknown:
        raise ExportError(f"{src}: unknown static quantization option(s) {sorted(unknown)}")
    quantize_static(
        str(src), str(dst), reader, quant_format=QuantFormat.QDQ,
        op_types_to_quantize=settings["op_types_to_quantize"],
        per_channel=bool(settings["per_channel"]), reduce_range=bool(settings["reduce_range"]),
        activation_type=_enum(QuantType, settings["activation_type"]),
        weight_type=_enum(QuantType, settings["weight_type"]),
        calibrate_method=_enum(CalibrationMethod, settings["calibrate_method"]),
        use_external_data_format=needs_external_data(src),
        # MatMul weights are (in, out): quantize per output channel. (MinMax keeps only per-clip
        # min/max, so calibration memory is one clip's activations; histogram methods keep more.)
        # CalibMaxIntermediateOutputs is avoided on purpose: onnxruntime 1.32 drops the data it
        # flushes ("No data is collected").
        extra_options={"QDQOpTypePerChannelSupportToAxis": {"MatMul": 1}},
    )
    problem = _session_ok(dst)
    if problem is not None:
        raise ExportError(f"{dst}: ONNX Runtime cannot run the statically quantized model "
                          f"({problem})")
    keep = ("weight_type", "activation_type", "per_channel", "reduce_range", "calibrate_method",
            "op_types_to_quantize")
    return {"mode": "static", "format": "QDQ", **{k: settings[k] for k in keep},
            "calibration": reader.summary()}


def convert_fp16(src: Path, dst: Path) -> dict[str, Any]:
    """fp16 weights and compute for GPUs; inputs and outputs stay float32 for the runtime.

    Returns:
        The settings used (for the manifest).
    """
    from onnxruntime.transformers.onnx_model import OnnxModel

    model = OnnxModel(onnx.load(str(src)))
    model.convert_float_to_float16(keep_io_types=True)
    model.save_model_to_file(str(dst), use_external_data_format=needs_external_data(src))
    return {"keep_io_types": True}
