"""Calibration data for static int8: clips from real videos through the runtime's preprocessing.

`VideoCalibrationReader` decodes and preprocesses the clips with the runtime's own code (so the
ranges ORT observes are the deployed ones), streaming them; `calibrate` feeds them to ORT's
calibrator one clip at a time, in a session that frees each calibrated tensor once measured
(`calibration_session`). With MinMax (the default) a static int8 export's memory therefore
depends on neither the number of clips nor the number of calibrated tensors; the histogram
methods still hold every calibrated tensor of one clip (ORT returns them whole).
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod
from onnxruntime.quantization.calibrate import TensorsData, create_calibrator
from vidsort.errors import ExportError, first_line
from vidsort.inputs import walk_videos
from vidsort.options import DEFAULT_BACKEND
from vidsort.sampling import sample_indices


def expand_videos(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Files as given, and the video files (by suffix) found under directories, sorted."""
    videos: list[Path] = []
    for item in paths:
        path = Path(item).expanduser()
        if path.is_dir():
            found = [Path(p) for p in walk_videos(path)]
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

    Clips are streamed (`iter_clips` decodes video by video), so memory does not grow with the
    calibration set; the first ``keep`` clips are kept (`kept`) for validating the result.
    `clips` decodes all of them into a list, for callers that want a few clips at hand.
    """

    def __init__(self, videos: Sequence[str | os.PathLike], model_dir: str | os.PathLike,
                 num_frames: int, input_name: str = "pixel_values", frame_sample_rate: int = 4,
                 clips_per_video: int = 2, max_clips: int = 32, keep: int = 0,
                 log: Callable[[str], None] | None = None):
        self._read_frames, preprocessor_cls = runtime_preprocessing()
        self.videos = expand_videos(videos)
        self.preprocessor = preprocessor_cls.from_pretrained(model_dir)
        self.input_name = input_name
        self.num_frames = int(num_frames)
        self.frame_sample_rate = int(frame_sample_rate)
        self.clips_per_video = int(clips_per_video)
        self.max_clips = int(max_clips)
        self.keep = int(keep)
        self.log = log
        self.kept: list[np.ndarray] = []
        self.used: list[str] = []
        self.skipped: dict[str, str] = {}
        self.count = 0
        self._all: list[np.ndarray] | None = None
        self._iter: Iterator[np.ndarray] | None = None

    def _video_clips(self, video: Path) -> list[np.ndarray]:
        def sampler(n: int) -> np.ndarray:
            return sample_indices(n, self.num_frames, self.frame_sample_rate, "centre",
                                  num_clips=self.clips_per_video).reshape(-1)

        frames = np.asarray(self._read_frames(video, sampler, backend=DEFAULT_BACKEND).frames)
        return [np.asarray(self.preprocessor(frames[start:start + self.num_frames]),
                           dtype=np.float32)
                for start in range(0, len(frames) - self.num_frames + 1, self.num_frames)]

    def iter_clips(self) -> Iterator[np.ndarray]:
        """Yield up to ``max_clips`` clips (each (1, T, C, H, W)), decoding one video at a time.

        Raises `ExportError` at the end if no clip could be decoded; a video that cannot be
        decoded is skipped (``skipped`` says why).
        """
        self.used, self.skipped, self.count = [], {}, 0
        for video in self.videos:
            if self.count >= self.max_clips:
                break
            try:
                clips = self._video_clips(video)
            except Exception as exc:  # one bad calibration file should not sink the export
                self.skipped[str(video)] = first_line(exc)
                if self.log:
                    self.log(f"calibration: skipping {video}: {self.skipped[str(video)]}")
                continue
            self.used.append(str(video))
            for clip in clips[:self.max_clips - self.count]:
                self.count += 1
                if len(self.kept) < self.keep:
                    self.kept.append(clip)
                yield clip
        if not self.count:
            raise ExportError(f"no calibration clip could be decoded from {len(self.videos)} "
                              f"video(s) (first: {self.videos[0]})")

    @property
    def clips(self) -> list[np.ndarray]:
        """Every clip, decoded once into memory (for a few clips; calibration streams them)."""
        if self._all is None:
            self._all = list(self.iter_clips())
        return self._all

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._iter is None:
            self._iter = self.iter_clips()
        clip = next(self._iter, None)
        return None if clip is None else {self.input_name: clip}

    def rewind(self) -> None:
        self._iter = None

    def summary(self) -> dict[str, Any]:
        """What calibrated the model, for the manifest (file names, not full paths)."""
        return {"videos": [Path(v).name for v in self.used], "clips": self.count,
                "skipped": {Path(k).name: v for k, v in self.skipped.items()}}


class _OneClip(CalibrationDataReader):
    def __init__(self, name: str, clip: np.ndarray):
        self.feeds = iter([{name: clip}])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.feeds, None)


def calibration_session_options():
    """ONNX Runtime session options for ORT's augmented calibration graph that free each
    calibrated tensor as soon as its statistics are taken.

    ORT's calibrator appends ReduceMin/ReduceMax nodes (MinMax) for every calibrated tensor. In
    ORT's default execution order they all run after the model's own nodes (profiled on
    VideoMAE-Base: the first reduction was node 443 of 1227), so every calibrated tensor stays
    alive to the end of the run, among them the (12 heads, 1568, 1568) attention scores and
    probabilities of all 12 layers: 4.2 GB per clip. The priority-based order runs each reduction
    right after its input is produced: 0.6 GB, the plain model's own peak. Graph optimizations
    stay off as in ORT's calibrator (a fusion would hide calibrated tensors), and so does the
    memory arena, which would keep the largest run's blocks for the next one.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.execution_order = ort.ExecutionOrder.PRIORITY_BASED
    options.enable_cpu_mem_arena = False
    options.log_severity_level = 3
    return options


def calibration_session(path: str | os.PathLike):
    """A CPU session for the augmented graph at ``path`` (`calibration_session_options`)."""
    import onnxruntime as ort

    return ort.InferenceSession(os.fspath(path), calibration_session_options(),
                                providers=["CPUExecutionProvider"])


def calibrate(model: Path, reader: VideoCalibrationReader, method: CalibrationMethod,
              op_types: Sequence[str], work: Path, external: bool = False,
              percentile: float = 99.999) -> TensorsData:
    """Activation ranges of ``model`` over ``reader``'s clips, fed one clip at a time.

    Args:
        model: the fp32 graph to be quantized.
        reader: calibration clips (streamed: one clip in memory at a time).
        method: ORT calibration method.
        op_types: the op types whose inputs and outputs are calibrated.
        work: a scratch directory (the augmented model goes there).
        external: save the augmented model with external data (models over 2 GiB).
        percentile: for ``Percentile``.

    Returns:
        ORT's `TensorsData` (tensor name -> range).
    """
    augmented = work / "augmented.onnx"
    calibrator = create_calibrator(
        model, op_types, augmented_model_path=str(augmented), calibrate_method=method,
        use_external_data_format=external,
        extra_options={"symmetric": False, "percentile": percentile})
    # ORT's calibrator keeps its (augmented) copy of the model after saving it; the ranges are
    # computed from the session's outputs alone, so the copy goes now (the model's size again)
    calibrator.model = None
    calibrator.infer_session = None  # ORT's own: replaced, see calibration_session_options
    calibrator.infer_session = calibration_session(augmented)
    # MinMax merges ranges and histogram methods merge histograms across collect_data calls, so
    # one clip per call keeps one clip's statistics in memory whatever the number of clips
    with contextlib.redirect_stdout(io.StringIO()):  # the histogram collector print()s per clip
        for clip in reader.iter_clips():
            calibrator.collect_data(_OneClip(reader.input_name, clip))
        ranges = calibrator.compute_data()
    del calibrator
    return ranges
