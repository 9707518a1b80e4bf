"""Calibration data for static int8: clips from real videos through the runtime's preprocessing.

`VideoCalibrationReader` decodes and preprocesses the clips with the runtime's own code (so the
ranges ORT observes are the deployed ones); `calibrate` feeds them to ORT's calibrator one clip
at a time.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable, Iterable, Sequence
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
                frames = np.asarray(read_frames(video, sampler, backend=DEFAULT_BACKEND).frames)
            except Exception as exc:  # one bad calibration file should not sink the export
                self.skipped[str(video)] = first_line(exc)
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


class _OneClip(CalibrationDataReader):
    def __init__(self, name: str, clip: np.ndarray):
        self.feeds = iter([{name: clip}])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.feeds, None)


def calibrate(model: Path, reader: VideoCalibrationReader, method: CalibrationMethod,
              op_types: Sequence[str], work: Path, external: bool = False,
              percentile: float = 99.999) -> TensorsData:
    """Activation ranges of ``model`` over ``reader``'s clips, fed one clip at a time.

    Args:
        model: the fp32 graph to be quantized.
        reader: calibration clips.
        method: ORT calibration method.
        op_types: the op types whose inputs and outputs are calibrated.
        work: a scratch directory (the augmented model goes there).
        external: save the augmented model with external data (models over 2 GiB).
        percentile: for ``Percentile``.

    Returns:
        ORT's `TensorsData` (tensor name -> range).
    """
    # Histogram methods merge histograms across collect_data calls and MinMax merges ranges, so
    # one clip per call bounds memory (a VideoMAE-Base clip's attention tensors alone are ~3 GB).
    calibrator = create_calibrator(
        model, op_types, augmented_model_path=str(work / "augmented.onnx"),
        calibrate_method=method, use_external_data_format=external,
        extra_options={"symmetric": False, "percentile": percentile})
    # the histogram collector print()s progress for every clip; the export reports its own
    with contextlib.redirect_stdout(io.StringIO()):
        for clip in reader.clips:
            calibrator.collect_data(_OneClip(reader.input_name, clip))
        return calibrator.compute_data()
